"""Saying "I don't know" when memory has nothing: the persona does not invent facts about its owner.

Measured before this existed: asked 10 questions whose answers are nowhere in the
history ("what car do you drive?"), the adapter answered every one with something made
up, and none said it did not know. Small models invent fluently; what they cannot do is
notice that nothing in the prompt answers the question. So the reply pipeline decides:

1. `asks_about_owner`: the message asks a factual question about the owner ("what's
   your…", "where do you…", "do you have…", "how old are you?"; "¿dónde vives?", "wo
   wohnst du?", "tu habites où ?", "onde você mora?", "где ты живёшь?") — rules over the
   question's form per language (`RULES`: en, es, pt, de, fr, ru); greetings ("how are
   you?"), requests ("can you…") and opinions ("what do you think…") are not facts and
   pass untouched.
2. Grounding found no evidence: none of the owner's remembered sentences the asker may
   read answers it (persona/runtime/grounding.py, the same threshold).

Then the reply says it does not know, in the owner's voice: one of the owner's own
short "not sure"-type lines from places the asker may read (`HEDGES`, in those six
languages), else the model's own words after a forced "not sure" in the question's
language (`OPENINGS`), as long as they are filler ("yet", "tbh", an
emoji): at most 8 tokens, cut at the first clause end or content word.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from persona.history import messages as history


@dataclass(frozen=True)
class Rules:
    """One language's rules for "a factual question about you" (see `asks_about_owner`)."""

    second_person: re.Pattern[str]  # "you", "du", "tu", "ты" — or a verb form that can only mean you ("vives")
    fact_question: re.Pattern[str]  # how such a question starts
    not_a_fact: re.Pattern[str]  # greetings, opinions, invitations
    request: re.Pattern[str]  # "can you…", "kannst du…": asks for something, not about you
    openers: re.Pattern[str]  # "ok so", "oye", "слушай": taken off the front first
    asked_anywhere: re.Pattern[str] | None = None  # question words that may come late ("tu habites où ?", "где ты живёшь?")


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


def _openers(words: str) -> re.Pattern[str]:
    return _rx(rf"^(?:(?:{words})[,!.]?\s+)+")


RULES: dict[str, Rules] = {
    "en": Rules(
        _rx(r"\b(?:you|your|yours|yourself|u|ur|you'?re|you'?ve|you'?d)\b"),
        _rx(r"^(?:what|what'?s|whats|where|where'?s|when|when'?s|who|who'?s|whose|which|why|"
            r"how (?:old|long|many|much|often|tall|far|big)|do|did|does|have|has|had|are|were|is|was|r)\b"),
        _rx(r"\b(?:how (?:are|r) (?:you|u)|how'?s it going|how have you been|what'?s up|whats up|sup|wyd|what are you up to|"
            r"what (?:do|did) (?:you|u) think|do (?:you|u) think|thoughts on|would (?:you|u) rather|"
            r"(?:do|did) (?:you|u) (?:want|wanna)|are (?:you|u) (?:ok|okay|there|around|free|coming|up for)|you (?:ok|okay|there)|"
            r"what should|should i|can i|could i)\b"),
        _rx(r"^(?:can|could|would|will|wanna|pls|please|let'?s|tell me)\b"),
        _openers(r"ok|okay|so|but|wait|lol|hey|hi|btw|also|and|omg|ngl|oh|ya|yo|hm+|um+|actually|random question"),
    ),
    "es": Rules(
        _rx(r"\b(?:tú|tu|tus|te|ti|contigo|usted|vos|tienes|tenés|eres|sos|estás|vives|vivís|trabajas|estudias|estudiaste|naciste|"
            r"conduces|manejas|llamas|cumples|viviste|fuiste|usas|juegas|tocas|hablas)\b"
            r"|\b[a-záéíóúñ]{2,}(?:as|es)\s*\?$"),  # a question that ends on a verb of "tú" ("¿qué número calzas?")
        _rx(r"^¿?(?:qué|que|cuál|cual|cuáles|cuales|dónde|donde|de dónde|cuándo|cuando|quién|quien|cuántos|cuantos|cuántas|cuantas|"
            r"cuánto|cuanto|cómo se llama|como se llama|cómo te llamas|como te llamas|tienes|eres|vives|trabajas|has)\b"),
        _rx(r"(?:qué tal|que tal|cómo estás|como estas|cómo va|qué pasa|que pasa|qué haces|que haces|qué opinas|que opinas|qué piensas|"
            r"que piensas|crees que|quieres|vienes|te apuntas|puedes|podrías|estás ahí|estas ahi)"),
        _rx(r"^¿?(?:puedes|podrías|podrias|pásame|pasame|mándame|mandame|dime|vamos|por favor)\b"),
        _openers(r"oye|eh|bueno|pues|jaja+|hola|che|ok|y"),
        _rx(r"\b(?:dónde|cuál|cuándo|cuántos|cuántas|qué|cómo se llama|como se llama)\b"),
    ),
    "pt": Rules(
        # Brazilian Portuguese says "your" with seu/sua (European: teu/tua) and "you" with você/vc/cê.
        _rx(r"(?<!\w)(?:você|voce|vc|cê|tu|teu|tua|teus|tuas|seu|sua|seus|suas|te|ti|contigo|tens|és|moras|mora|trabalhas|estudaste|"
            r"nasceste|conduzes|dirige|chamas|fazes anos)(?!\w)|\b[a-záéíóúãõç]{2,}(?:as|es)\s*\?$"),
        _rx(r"^(?:o que|que|qual|quais|onde|de onde|pra onde|para onde|quando|quem|quantos|quantas|quanto|como se chama|como te chamas|"
            r"tens|tem|és|moras|trabalhas|(?:você|voce|vc|cê) (?:tem|é|mora|trabalha|estudou|nasceu|já|toca|fala|dirige))(?!\w)"),
        _rx(r"(?:tudo bem|tudo bom|como vai|como está|como estás|e aí|e ai|o que achas|que achas|o que você acha|acha que|achas que|"
            r"queres|quer ir|vens|vem hoje|podes|pode me|bora|(?:você|voce|vc|cê) (?:pode|poderia|quer|vem|topa|acha))"),
        _rx(r"^(?:podes|pode|manda|me passa|diz|diga|vamos|por favor)\b"),
        _openers(r"ei|olha|então|entao|kkk+|haha+|oi|olá|ola|ok|e"),
        _rx(r"\b(?:onde|qual|quando|quantos|quantas|quem)\b"),
    ),
    "de": Rules(
        _rx(r"\b(?:du|dein|deine|deinen|deinem|deiner|deines|dich|dir|ihr|euer|eure|euch)\b"),
        _rx(r"^(?:was|wo|woher|wann|wer|wessen|welche|welcher|welches|welchen|wie alt|wie lange|wie viele|wie viel|wie heißt|wie heisst|"
            r"hast|bist|warst|hattest|wohnst|arbeitest|fährst|faehrst|spielst)\b"),
        _rx(r"(?:wie geht|wie gehts|was geht|was machst du|was denkst du|was hältst du|was haeltst du|was meinst du|findest du|"
            r"willst du|kommst du|hast du lust|kannst du|könntest du|koenntest du|bist du da|bist du dabei)"),
        _rx(r"^(?:kannst|könntest|koenntest|schick|sag mir|lass uns|bitte)\b"),
        _openers(r"hey|hi|hallo|also|ok|na|ähm|äh|haha+|übrigens|und"),
    ),
    "fr": Rules(
        _rx(r"(?:\b(?:tu|toi|ton|ta|tes|vous|votre|vos)\b|\bt['’])"),
        _rx(r"^(?:qu['’]est-ce que|que|quel|quelle|quels|quelles|où|d['’]où|quand|qui|combien|comment s['’]appelle|as-tu|t['’]as|"
            r"es-tu|t['’]es|tu as|tu es|tu habites|tu travailles|tu conduis|tu viens d['’]où)\b"),
        _rx(r"(?:ça va|ca va|comment vas|comment ça va|quoi de neuf|tu fais quoi|qu['’]est-ce que tu fais|tu en penses|t['’]en penses|"
            r"tu penses|tu veux|tu viens ce|tu viens ce soir|tu peux|vous pouvez|on y va|t['’]es là|tu es là)"),
        _rx(r"^(?:tu peux|peux-tu|pourrais|envoie|dis-moi|allez|stp|s['’]il te pla[iî]t)\b"),
        _openers(r"salut|coucou|bon|alors|ok|mdr|ptdr|haha+|au fait|dis|et"),
        _rx(r"(?:\boù\b|\bquel(?:le)?s?\b|\bquand\b|\bcombien\b|\bqui\b|\bc['’]est quoi\b)"),
    ),
    "ru": Rules(
        _rx(r"(?<![а-яё])(?:ты|тебя|тебе|тобой|твой|твоя|твоё|твое|твои|твоего|твоей|твою|вы|вас|вам|ваш|ваша|ваши|вашу)(?![а-яё])"),
        _rx(r"^(?:что|где|откуда|когда|кто|какой|какая|какое|какие|какую|сколько|как зовут|чем)(?![а-яё])"),
        _rx(r"(?:как дела|как ты|что делаешь|чё делаешь|че делаешь|что думаешь|как думаешь|хочешь|пойдёшь|пойдешь|можешь|сможешь|"
            r"ты тут|ты здесь)"),
        _rx(r"^(?:можешь|сможешь|скинь|пришли|скажи|давай|пожалуйста)(?![а-яё])"),
        _openers(r"слушай|эй|привет|ну|кстати|ахах+|хаха+|ок|а"),
        _rx(r"(?<![а-яё])(?:где|откуда|когда|какой|какая|какое|какие|какую|сколько|как зовут)(?![а-яё])"),
    ),
}
# The owner's own "don't know" lines, in any of these languages; and the forced opening per language.
HEDGES: dict[str, tuple[str, ...]] = {
    "en": ("not sure", "idk", "don't know", "dont know", "dunno", "no idea", "can't remember", "cant remember", "forgot", "who knows"),
    "es": ("no sé", "no se", "ni idea", "no me acuerdo", "quién sabe", "quien sabe", "no lo sé"),
    "pt": ("não sei", "nao sei", "sei lá", "sei la", "não faço ideia", "nao faco ideia", "não me lembro", "nem ideia"),
    "de": ("weiß nicht", "weiss nicht", "keine ahnung", "kein plan", "keinen plan", "weiß ich nicht", "weiss ich nicht", "vergessen"),
    "fr": ("je sais pas", "je ne sais pas", "j'sais pas", "chais pas", "aucune idée", "aucune idee", "je sais plus", "jsp", "sais pas"),
    "ru": ("не знаю", "хз", "без понятия", "понятия не имею", "не помню", "фиг знает"),
}
OPENINGS = {"en": "not sure", "es": "ni idea", "pt": "não sei", "de": "keine ahnung", "fr": "aucune idée", "ru": "не знаю"}
HEDGE_PHRASES = tuple(phrase for phrases in HEDGES.values() for phrase in phrases)
HEDGE = re.compile(r"(?<!\w)(?:i don'?t know|never told|" + "|".join(re.escape(p) for p in sorted(HEDGE_PHRASES, key=len, reverse=True))
                   + r")(?!\w)", re.I)
OPENING = OPENINGS["en"]  # the forced opening when the owner never wrote such a line (and the question's language is not known)
MAX_WORDS = 6  # a hedge line longer than this says more than "I don't know"

_MENTION = re.compile(r"<[@#][!&]?\d+>")
_QUESTION_SPLIT = re.compile(r"(?<=[?.!])\s+|\n+")


def asks_about_owner(text: str) -> bool:
    """Whether `text` asks a factual question about the person it is addressed to, in any
    of the languages in `RULES` (each sentence is read by each language's rules: they
    hardly overlap, and a message too short to tell its language by is read all the same)."""
    for sentence in _QUESTION_SPLIT.split(_MENTION.sub("", text)):
        sentence = sentence.strip(" ,").lower()
        if sentence and any(_asks(rules, sentence) for rules in RULES.values()):
            return True
    return False


def _asks(rules: Rules, sentence: str) -> bool:
    sentence = rules.openers.sub("", sentence)
    starts = rules.fact_question.match(sentence)
    if not sentence or not (sentence.endswith("?") or starts):
        return False
    if rules.not_a_fact.search(sentence) or rules.request.match(sentence):
        return False
    asked = starts or (sentence.endswith("?") and rules.asked_anywhere is not None and rules.asked_anywhere.search(sentence))
    return bool(asked and rules.second_person.search(sentence))


def opening_for(question: str) -> str:
    """The forced "not sure" in the question's language (English when it cannot be told)."""
    from persona.languages import configured

    return OPENINGS.get(configured().detect(question) or "", OPENING)


def owner_hedges(conn: psycopg.Connection, owner_id: int, scopes: list[str] | None) -> list[str]:
    """The owner's own short "don't know" lines in `scopes` (None: all), most used first."""
    lines = history.owner_lines_containing(conn, owner_id, HEDGE_PHRASES, scopes, max_chars=60)
    return [line for line in lines if HEDGE.search(line) and "?" not in line and len(line.split()) <= MAX_WORDS]


def pick(lines: Sequence[str], question: str) -> str:
    """One of `lines`, the same one for the same question (a stable hash, not Python's salted one)."""
    digest = int.from_bytes(hashlib.blake2b(question.encode(), digest_size=4).digest(), "big")
    return lines[digest % len(lines)]


_CLAUSE_END = re.compile(r"[\n.!?,;:]")
_TAIL_WORDS = frozenset(["yet", "either", "tho", "rn", "atm", "sorry", "tbh", "tbf", "fr", "ngl", "honestly", "lowkey", "lol", "lmao", "haha", "hehe", "omg",
                         "idk", "hmm", "hm", "ya", "yeah", "ok", "okay",
                         # the same filler in the other languages' "not sure"s
                         "jaja", "jajaja", "xd", "la", "lá", "kkk", "kkkk", "rs", "mdr", "ptdr", "lol", "halt", "echt", "ehrlich", "gerade",
                         "encore", "ahah", "хз", "ещё", "еще", "пока", "честно", "лол", "aún", "ainda", "noch"])


def first_clause(opening: str, continuation: str) -> str:
    """The forced opening and what the model added (decoded without its leading space), up
    to the continuation's first clause end or first word that is not filler: "not sure
    yet tbh 🥲" stays, "not sure but she loves…" becomes "not sure" (measured: the model
    went on "but he's a good kid" — a claim — within its 8 tokens)."""
    cut = _CLAUSE_END.search(continuation)
    kept = []
    for word in (continuation[: cut.start()] if cut else continuation).split():
        bare = word.strip("!?.,~*").lower()
        if bare and any(ch.isalnum() for ch in bare) and bare not in _TAIL_WORDS:
            break
        kept.append(word)
    return " ".join([opening, *kept]).strip()
