"""Identity claims: who the owner is, as a reply says it — checked in every reply.

The small offline models invent an identity in ordinary chat ("hey what's up" → "my name
is ellyn moseleo"): a name, an age, a home, a wife or a dog the owner never had. The
consistency check (consistency.py) replaces only answers to factual questions about the
owner and flags the rest; a claim of who the owner *is* must not go out in any reply
unless the owner's settings or memory back it.

1. `claims(text)`: first-person identity claims, found by rules over their form — name
   ("my name is…", "call me…", "hi i'm…"), age ("i'm 34", "i turned 40", "i was born in
   1990"), home ("i live in…", "i'm from…", "i grew up in…"), work ("i work at/for/as…"),
   relations and pets ("my wife…", "my brother tom", "my dog is called rex", "i have two
   kids", "i'm married") — and the same in Spanish, Portuguese, German, French and Russian
   (`_OTHER_RULES`: naming, age, home, work, "my <relation> [is called <name>]"). Rules, not a model: they run in microseconds on every reply, and
   a claim they miss is one the consistency check still flags.
2. What backs a claim (`Known`): the owner's names (PERSONA_OWNER_NAME and the names they
   have in the imported data, as "my name is …"), PERSONA_OWNER_FACTS, and the owner's own
   sentences the asker may read that bear on it (`memory.recall` with the claim: scoped in
   SQL, so a fact said only in a DM backs nothing in a server).
3. A claim is *backed* when one of those sentences holds its key words: the name, in the
   owner's own claim of it ("my name is…", "call me…"); the age with an age word ("old", "birthday", "born"…); the
   place or workplace; the relation after "my"/"our" ("my wife", "our dog"), and its
   name, if the reply gave one, said by the owner anywhere.

What becomes of a reply with a claim nothing backs (`repair`, PERSONA_IDENTITY_CHECK):
`regenerate` — a second, sampled reply, sent if it passes; else, and under `drop`, the
reply without the failing clauses, if anything is left; else nothing is sent
(`withheld`): the bot hands the reply to the owner as a draft with the reason, the API
answers "…". A reply already partly shown while it was streamed is only ever cut (a
second reply would not continue what the reader saw).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import get_args

import psycopg

from persona import memory
from persona.config import IdentityPolicy
from persona.memory.embeddings import Embedder
from persona.privacy.scopes import Place
from persona.runtime import consistency
from persona.words import WORD, stem, stop_words

log = logging.getLogger(__name__)

POLICIES = get_args(IdentityPolicy)  # PERSONA_IDENTITY_CHECK
KINDS = ("name", "age", "home", "work", "relation")
RECALL_K = 8

# Relations and pets, each with the words that say it (one canonical word per group).
RELATIONS: dict[str, frozenset[str]] = {
    "wife": frozenset({"wife", "wifey"}), "husband": frozenset({"husband", "hubby"}), "partner": frozenset({"partner", "spouse"}),
    "boyfriend": frozenset({"boyfriend", "bf"}), "girlfriend": frozenset({"girlfriend", "gf"}),
    "fiance": frozenset({"fiance", "fiancee", "fiancé", "fiancée"}),
    "brother": frozenset({"brother", "brothers"}), "sister": frozenset({"sister", "sisters", "sis"}),
    "mother": frozenset({"mom", "mum", "mother", "mama", "mommy", "mummy"}), "father": frozenset({"dad", "father", "papa", "daddy"}),
    "son": frozenset({"son", "sons"}), "daughter": frozenset({"daughter", "daughters"}),
    "child": frozenset({"kid", "kids", "child", "children", "baby"}),
    "grandparent": frozenset({"grandma", "grandpa", "grandmother", "grandfather", "granny", "nan", "nana", "grandparents"}),
    "aunt": frozenset({"aunt", "auntie"}), "uncle": frozenset({"uncle"}), "cousin": frozenset({"cousin", "cousins"}),
    "niece": frozenset({"niece"}), "nephew": frozenset({"nephew"}), "roommate": frozenset({"roommate", "flatmate", "housemate"}),
    "dog": frozenset({"dog", "dogs", "puppy", "pup", "doggo"}), "cat": frozenset({"cat", "cats", "kitten", "kitty"}),
    "pet": frozenset({"pet", "pets", "rabbit", "bunny", "hamster", "parrot", "horse"}),
    "married": frozenset({"married", "wife", "husband", "spouse", "wedding", "engaged", "fiance", "fiancee", "fiancé", "fiancée",
                          "verheiratet", "casado", "casada", "marié", "mariée", "женат", "замужем"}),
}
# The same relations in Spanish, Portuguese, German, French and Russian (ISSUE 32: identity claims in the owner's languages).
_TRANSLATED = {
    "wife": "esposa mujer frau ehefrau femme жена жену жены", "husband": "marido esposo mann ehemann mari муж мужа",
    "boyfriend": "novio namorado freund copain парень", "girlfriend": "novia namorada freundin copine девушка",
    "brother": "hermano hermanos irmão irmao irmãos bruder brüder frère frere frères брат братья брата",
    "sister": "hermana hermanas irmã irma irmãs schwester schwestern sœur soeur sœurs сестра сёстры сестры сестру",
    "mother": "madre mamá mama mãe mae mutter mère mere maman мама мать маму мамы", "father": "padre papá papa pai vater père pere отец папа отца папу",
    "son": "hijo filho sohn fils сын сына", "daughter": "hija filha tochter fille дочь дочка дочку",
    "child": "hijos niños filhos kinder kind enfants enfant дети ребёнок ребенок",
    "dog": "perro perra cão cao cachorro hund chien собака собаку собаки пёс пес пса", "cat": "gato gata katze kater chat chatte кошка кошку кошки кот кота",
}
RELATIONS = {name: words | frozenset(_TRANSLATED.get(name, "").split()) for name, words in RELATIONS.items()}
_RELATION_WORDS = {word: canonical for canonical, words in RELATIONS.items() if canonical != "married" for word in words}
_REL = "(?P<relation>" + "|".join(sorted(map(re.escape, _RELATION_WORDS), key=len, reverse=True)) + ")"
_I_AM = r"(?:i'?m|i’m|i am)"
_NAME = r"(?P<value>[^\W\d_][\w'’-]*(?:\s+[^\W\d_][\w'’-]*)?)"
_ONE_NAME = r"(?P<value>[^\W\d_][\w'’-]*)"
_PLACE = r"(?P<value>[^\W\d_][\w'’.-]*(?:\s+[^\W\d_][\w'’.-]*){0,4})"
# Grammar words that join the words of one place ("the north of england", "in der nähe von münchen",
# "cerca del mar"): a place goes on across them; any other grammar word ("with", "and", "weil") ends it.
_PLACE_JOINS = frozenset({"the", "of", "near", "de", "del", "la", "las", "los", "el", "da", "do", "das", "dos", "von", "vom", "der", "die", "den",
                          "dem", "des", "am", "an", "bei", "nähe", "du", "le", "les", "cerca", "perto", "près", "около", "под", "возле"})
_NOT_A_DURATION = r"(?!\s*(?:min|mins|minutes|hours?|hrs?|h\b|secs?|seconds|days?|weeks?|months?|%|k\b|am\b|pm\b|:|/|\.\d|mi\b|km\b|miles|x\b))"
_CLAUSE_END = r"(?=\s*(?:$|[.!?,;:)]|\n|now\b|lol\b|haha\b|btw\b|and\b|but\b|so\b|tho\b|lmao\b))"

# (kind, pattern): earlier patterns are more specific; a clause keeps its first claim of each kind.
_ENGLISH_RULES: tuple[tuple[str, str], ...] = (
    ("relation", rf"\b(?:my|our) {_REL}(?:'s|’s)? name(?:'s|’s| is| was)\s+{_NAME}"),
    ("relation", rf"\b(?:my|our) {_REL}(?:\s+(?:is|was)|'s|’s)?\s+(?:called|named)\s+{_NAME}"),
    ("relation", rf"\b(?:my|our) {_REL}\s+{_ONE_NAME}(?=\s*(?:$|[.!?,;]|\n|is\b|was\b|and\b|has\b|had\b|just\b|said\b|says\b|lol\b|haha\b))"),
    ("relation", rf"\b(?:my|our) {_REL}\b"),
    ("relation", rf"\bi (?:have|got|'ve got|’ve got|ve got|had) (?:a|an|one|two|three|four|five|six|\d+) (?:little |big |older |younger |baby )?{_REL}\b"),
    ("relation", rf"\b(?:{_I_AM}|we(?:'re| are)) (?:happily )?(?P<relation>married|engaged)\b"),
    ("name", rf"\bmy name(?:'s|’s| is| was)\s+{_NAME}"),
    ("name", rf"\b(?:{_I_AM} (?:called|named)|call me|i go by|people call me)\s+{_NAME}"),
    ("name", rf"(?:^|[.!?,]\s*)(?:hi|hey|hello|heya|yo|hiya)(?:\s+there)?[,!.]*\s+(?:{_I_AM}|this is|it'?s)\s+{_NAME}"),
    ("age", rf"\b{_I_AM} (?:only |almost |nearly |like )?(?P<value>\d{{1,3}})\s*(?:years? old|yrs? old|yo\b|y/o|years? of age)"),
    ("age", rf"\b{_I_AM} (?:only |almost |nearly )?(?P<value>\d{{1,3}}){_NOT_A_DURATION}{_CLAUSE_END}"),
    ("age", rf"\bi (?:just )?turned (?P<value>\d{{1,3}}){_NOT_A_DURATION}"),
    ("age", rf"\bi(?:'ll|’ll| will|ll) be (?P<value>\d{{1,3}}){_NOT_A_DURATION}(?:\s*(?:years? old|next|this|in|on|soon)|{_CLAUSE_END})"),
    ("age", r"\bmy age is (?P<value>\d{1,3})\b"),
    ("age", r"\bi was born in (?P<value>(?:19|20)\d\d)\b"),
    ("home", rf"\bi (?:live|lived|grew up|was born|was raised|reside|stay) in {_PLACE}"),
    ("home", rf"\b{_I_AM} (?:originally )?(?:from|based in|living in) {_PLACE}"),
    ("home", rf"\bmy (?:home ?town|city|country) is {_PLACE}"),
    ("work", rf"\bi work (?:at|for|in) {_PLACE}"),
    ("work", rf"\bi work as (?:an? )?{_PLACE}"),
    ("work", rf"\bmy job is (?:an? )?{_PLACE}"),
)
_MY = {"es": r"(?:mi|mis|nuestro|nuestra|nuestros|nuestras)", "pt": r"(?:o meu|a minha|os meus|as minhas|meu|minha|meus|minhas|nosso|nossa)",
       "de": r"(?:mein|meine|meinen|meinem|meiner|unser|unsere|unseren)", "fr": r"(?:mon|ma|mes|notre|nos)",
       "ru": r"(?:мой|моя|моё|мое|мои|моего|мою|моей|наш|наша|наши)"}
_CALLED = {"es": r"(?:se llama|se llaman)", "pt": r"(?:se chama|chama-se|chama se)", "de": r"(?:heißt|heisst|heißen)",
           "fr": r"(?:s['’]appelle|s['’]appellent)", "ru": r"(?:зовут)"}
_OTHER_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    language: (
        ("relation", rf"\b{_MY[language]} {_REL}\s+{_CALLED[language]}\s+{_NAME}"),
        ("relation", rf"\b{_MY[language]} {_REL}\b"),
        *rules,
    ) for language, rules in {
        "es": (("name", rf"\b(?:me llamo|mi nombre es)\s+{_NAME}"),
               ("age", r"\btengo (?P<value>\d{1,3}) años\b"), ("age", r"\bcumpl[íi] (?P<value>\d{1,3})\b"),
               ("home", rf"\b(?:vivo en|soy de|nací en|naci en|crecí en|creci en) {_PLACE}"), ("work", rf"\btrabajo (?:en|para|de) {_PLACE}")),
        "pt": (("name", rf"\b(?:me chamo|chamo-me|(?:o )?meu nome é|meu nome e)\s+{_NAME}"),
               ("age", r"\btenho (?P<value>\d{1,3}) anos\b"), ("age", r"\bfiz (?P<value>\d{1,3}) anos\b"),
               ("home", rf"\b(?:moro (?:em|no|na)|vivo (?:em|no|na)|sou d[eoa]|nasci (?:em|no|na)|cresci (?:em|no|na)) {_PLACE}"),
               ("work", rf"\btrabalho (?:em|na|no|para|como) {_PLACE}")),
        "de": (("name", rf"\b(?:ich heiße|ich heisse|mein name ist)\s+{_NAME}"),
               ("age", r"\bich bin (?P<value>\d{1,3}) jahre\b"), ("age", r"\bich (?:bin|werde|wurde) (?P<value>\d{1,3})(?=\s*(?:$|[.!?,;]))"),
               ("home", rf"\b(?:ich wohne in|ich lebe in|ich komme aus|ich bin aus) {_PLACE}"),
               ("home", rf"\bich bin in {_PLACE} (?:aufgewachsen|geboren)"),
               ("work", rf"\bich arbeite (?:bei|für|fuer|als) {_PLACE}")),
        "fr": (("name", rf"\b(?:je m['’]appelle|mon nom est|moi c['’]est)\s+{_NAME}"),
               ("age", r"\bj['’]ai (?P<value>\d{1,3}) ans\b"),
               ("home", rf"\b(?:j['’]habite (?:à|a|en|au|aux)|je vis (?:à|a|en|au)|je viens (?:de|du|d['’])|je suis (?:né|née) (?:à|a|en)) ?{_PLACE}"),
               ("work", rf"\bje travaille (?:chez|pour|comme|à|a) {_PLACE}")),
        "ru": (("name", rf"(?<![а-яё])(?:меня зовут|моё имя|мое имя)\s+{_NAME}"),
               ("age", r"(?<![а-яё])мне (?P<value>\d{1,3}) (?:лет|год|года)(?![а-яё])"),
               ("home", rf"(?<![а-яё])(?:я живу в|я из|я родился в|я родилась в|я вырос в|я выросла в) {_PLACE}"),
               ("work", rf"(?<![а-яё])я работаю (?:в|на) {_PLACE}")),
    }.items()
}
_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    *((kind, re.compile(pattern, re.I), "en") for kind, pattern in _ENGLISH_RULES),
    *((kind, re.compile(pattern, re.I), language) for language, rules in _OTHER_RULES.items() for kind, pattern in rules),
)
# Words that follow "i'm" or "my brother" without being a name ("hi i'm back", "my dog just…").
_NOT_NAMES = frozenset({
    "back", "here", "there", "home", "fine", "good", "great", "ok", "okay", "alright", "sorry", "so", "not", "just", "still", "also", "really",
    "very", "too", "tired", "busy", "bored", "sick", "free", "done", "new", "late", "early", "out", "in", "on", "off", "up", "down", "at", "with",
    "doing", "going", "gonna", "trying", "thinking", "well", "alive", "awake", "around", "online", "sure", "glad", "happy", "sad",
    "excited", "hungry", "literally", "actually", "finally", "currently", "kinda", "kind", "sort", "lowkey", "honestly", "rn", "now", "lol",
    "haha", "is", "was", "has", "had", "says", "said", "and", "but", "lmao", "omg", "the", "a", "an", "gone", "having", "getting", "coming",
    "being", "always", "never", "who", "what", "im", "i'm", "totally", "sooo", "soo", "such", "pretty", "tho", "tomorrow", "later",
    "tonight", "today", "asap", "sometime", "anytime", "whenever", "maybe", "if", "when", "crazy", "anything", "whatever", "babe",
})
_JOINTS = frozenset({"and", "but", "so", "or", "also", "then", "because", "cause", "cuz", "bc", "which", "who", "that", "plus"})
_AGE_WORDS = frozenset({"old", "age", "aged", "year", "years", "yo", "birthday", "bday", "born", "turned", "turn", "turning",
                        "años", "cumpleaños", "cumplí", "anos", "aniversário", "fiz", "jahre", "jahr", "alt", "geburtstag", "geboren",
                        "ans", "anniversaire", "né", "née", "лет", "год", "года", "родился", "родилась"})
_CLAUSE = re.compile(r"(?<=[.!?…])\s+|\n+|(?<=[,;])\s+")


@dataclass(frozen=True)
class Claim:
    kind: str  # one of KINDS
    text: str  # the clause that says it (what `drop` takes out)
    value: tuple[str, ...] = ()  # the words it hangs on: a name, a number, a place (lowercase)
    relation: str = ""  # for kind "relation": the canonical relation (RELATIONS)

    def describe(self) -> str:
        return f"{self.kind} «{self.text}»"


def claims(text: str) -> list[Claim]:
    """The first-person identity claims in `text`, one per clause and kind."""
    found: list[Claim] = []
    for clause in _CLAUSE.split(text):
        clause = clause.strip(" ,;")
        if not clause:
            continue
        kinds: set[str] = set()
        for kind, rule, language in _RULES:
            if kind in kinds:
                continue
            for match in rule.finditer(clause):
                claim = _claim(kind, clause, match, language)
                if claim is not None:
                    found.append(claim)
                    kinds.add(kind)
                    break
    return found


def states_identity(text: str) -> bool:
    """Whether `text` makes any identity claim (the streaming guard: nothing from such a
    sentence on is shown before the whole reply is checked)."""
    return bool(claims(text))


def _claim(kind: str, clause: str, match: re.Match[str], language: str = "en") -> Claim | None:
    stop = stop_words(frozenset({language}))
    groups = match.groupdict()
    relation = _RELATION_WORDS.get((groups.get("relation") or "").lower(), (groups.get("relation") or "").lower())
    raw = groups.get("value") or ""
    if kind == "age":
        return Claim(kind, clause, (raw,))
    words = [w.lower() for w in WORD.findall(raw)]
    if kind in ("name", "relation"):
        name = []
        for word in words:
            if word in _NOT_NAMES or word in stop or word in _RELATION_WORDS:
                break
            name.append(word)
        if kind == "name" and not name:
            return None
        return Claim(kind, clause, tuple(name), relation)
    place: list[str] = []
    for word in words:
        if word in stop or word in _PLACE_JOINS:
            if place and word not in _PLACE_JOINS:
                break
            continue
        place.append(word)
    return Claim(kind, clause, tuple(place)) if place else None


@dataclass(frozen=True)
class Known:
    """The sentences that may back a claim: the owner's settings and their own remembered
    sentences, each with the memories it is in (none for a setting)."""

    sentences: tuple[str, ...]
    sources: tuple[tuple[int, ...], ...] = ()

    @classmethod
    def of(cls, names: Iterable[str], facts: str, remembered: Iterable[str | tuple[str, tuple[int, ...]]]) -> Known:
        held: dict[str, tuple[int, ...]] = {}
        for name in names:
            if name.strip():
                held.setdefault(f"my name is {name}", ())
        for sentence in _CLAUSE.split(facts):
            if sentence.strip():
                held.setdefault(sentence, ())
        for entry in remembered:
            sentence, ids = (entry, ()) if isinstance(entry, str) else entry
            held[sentence] = tuple(dict.fromkeys([*held.get(sentence, ()), *ids]))
        return cls(tuple(held), tuple(held.values()))

    def backs(self, claim: Claim) -> bool:
        return self.backing(claim) is not None

    def backing(self, claim: Claim) -> tuple[int, ...] | None:
        """The memories whose sentences back `claim` (() for the owner's settings); None: nothing backs it."""
        words = [_words(s) for s in self.sentences]
        value = {_fold(v) for v in claim.value}
        if claim.kind == "name":  # only the owner saying it of themselves: "my cat is called miso" names the cat
            hits = [i for i, s in enumerate(self.sentences) if any(c.kind == "name" and value <= {_fold(v) for v in c.value} for c in claims(s))]
        elif claim.kind == "age":
            hits = [i for i, w in enumerate(words) if value <= w and w & _AGE_WORDS]
        elif claim.kind in ("home", "work"):
            hits = [i for i, w in enumerate(words) if value <= w]
        else:
            synonyms = {_fold(s) for s in RELATIONS.get(claim.relation, frozenset({claim.relation}))}
            related = [i for i, s in enumerate(self.sentences) if _says_relation(s, synonyms)]
            named = [i for i, w in enumerate(words) if value <= w] if value else []
            hits = related + named if related and (named or not value) else []
        if not hits:
            return None
        sources = self.sources or tuple(() for _ in self.sentences)
        return tuple(dict.fromkeys(i for hit in hits for i in sources[hit]))


def _fold(word: str) -> str:
    return stem(word.lower().replace("’", "'"))


def _words(sentence: str) -> set[str]:
    return {_fold(w) for w in WORD.findall(sentence)}


_POSSESSIVE = frozenset(_fold(w) for w in {"my", "our", "i'm", "im", "have", "we're", "am", "mi", "mis", "nuestro", "nuestra", "tengo", "meu", "minha", "meus",
                         "minhas", "nosso", "nossa", "tenho", "mein", "meine", "meinen", "meinem", "meiner", "unser", "unsere", "habe",
                         "mon", "ma", "mes", "notre", "nos", "j'ai", "мой", "моя", "моё", "мое", "мои", "моего", "мою", "моей", "наш",
                         "наша", "наши", "меня"})
_MARRIED = frozenset({"married", "verheiratet", "casado", "casada", "marié", "mariée", "женат", "замужем"})


def _says_relation(sentence: str, synonyms: set[str]) -> bool:
    """The owner speaks of their own relation: "my"/"our" (or "i'm"/"i have") shortly before it."""
    words = [_fold(w) for w in WORD.findall(sentence)]
    return any(word in synonyms and (_POSSESSIVE & set(words[max(0, i - 3):i]) or word in _MARRIED) for i, word in enumerate(words))


@dataclass(frozen=True)
class Checked:
    """The identity claims of a reply nothing backs, and the memories that back the rest
    (they count among the reply's memories: forgetting one forgets the reply)."""

    failed: list[Claim]
    memory_ids: tuple[int, ...] = ()


def check(conn: psycopg.Connection, embedder: Embedder, text: str, recalled: Sequence[memory.Memory], *, names: Iterable[str],
          facts: str, asker_id: int | None, place: Place, owner_id: int | None) -> Checked:
    """`text`'s identity claims against what the asker may read (memory.recall with each
    claim, scoped in SQL) and the owner's settings."""
    stated = claims(text)
    if not stated:
        return Checked([])
    remembered: list[tuple[str, tuple[int, ...]]] = []
    if owner_id is not None:
        queries = [" ".join([*c.value, *(sorted(RELATIONS.get(c.relation, ())) if c.relation else ()), c.text]) for c in stated]
        said = consistency.gather(conn, embedder, queries, recalled, asker_id=asker_id, place=place, owner_id=owner_id, k=RECALL_K)
        remembered = list(zip(said.texts, said.memory_ids))
    known = Known.of(names, facts, remembered)
    backing = [(claim, known.backing(claim)) for claim in stated]
    return Checked([claim for claim, ids in backing if ids is None], tuple(dict.fromkeys(i for _, ids in backing for i in ids or ())))


def unbacked(conn: psycopg.Connection, embedder: Embedder, text: str, recalled: Sequence[memory.Memory], *, names: Iterable[str],
             facts: str, asker_id: int | None, place: Place, owner_id: int | None) -> list[Claim]:
    """The identity claims of `text` that nothing the asker may read backs (none: [])."""
    return check(conn, embedder, text, recalled, names=names, facts=facts, asker_id=asker_id, place=place, owner_id=owner_id).failed


@dataclass(frozen=True)
class Kept:
    """A reply as it may go out after the identity check."""

    text: str
    new_tokens: int
    action: str = "none"  # none | regenerated | dropped | withheld
    failed: tuple[Claim, ...] = field(default_factory=tuple)  # the unbacked claims of the first reply
    memory_ids: tuple[int, ...] = ()  # the memories that back the claims of the text as sent

    @property
    def withheld(self) -> str:
        """Why nothing may be sent (empty when something may)."""
        if self.action != "withheld":
            return ""
        return "it said who you are without your memory or settings backing it: " + "; ".join(c.describe() for c in self.failed)


def repair(text: str, new_tokens: int, failed: Sequence[Claim], policy: str, *, recheck: Callable[[str], list[Claim]],
           regenerate: Callable[[], tuple[str, int]]) -> Kept:
    """A reply whose claims in `failed` nothing backs, made safe to send (module docstring):
    regenerated (under `regenerate`), else cut, else withheld."""
    if policy not in POLICIES:
        raise ValueError(f"identity policy must be one of {POLICIES}, not {policy!r}")
    if not failed:
        return Kept(text, new_tokens)
    if policy == "regenerate":
        second, second_tokens = regenerate()
        if second.strip() and not recheck(second):
            return Kept(second, second_tokens, "regenerated", tuple(failed))
    kept = _without(text, failed)
    if kept and not recheck(kept):
        return Kept(kept, new_tokens, "dropped", tuple(failed))
    return Kept("", new_tokens, "withheld", tuple(failed))


def _without(text: str, failed: Sequence[Claim]) -> str:
    """`text` without the clauses of `failed`; "" when what is left is only joints ("and", "but")."""
    lines = consistency.cut(text, [claim.text for claim in failed])
    said = [w.lower() for line in lines for w in WORD.findall(line)]
    return "\n".join(lines) if any(w not in _JOINTS for w in said) else ""
