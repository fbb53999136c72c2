"""Language identification of chat lines: py3langid (langid.py's maintained fork, what
import uses: persona/languages.py) vs lingua-language-detector, on chat lines written
for this bench in English, Spanish, Portuguese, German, French and Russian (ten words or
so, and two to four), plus lines too short to tell ("lol", "ok 👍"), which persona's own
rule leaves undecided for both. Accuracy, the lines each got wrong, the time per line.
One JSON line.

    python bench/language_id.py
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LINES: dict[str, list[str]] = {
    "en": ["hey what are you up to tonight", "omg that crag was so good lol", "can't make it, work ran late again", "did you see the game last night",
           "i'll bring snacks if you bring the rope", "my sourdough starter died again", "honestly the new album slaps", "running late, save me a seat",
           "who's coming to the climbing gym tomorrow", "that's hilarious, send the video"],
    "es": ["oye qué haces esta noche", "no puedo ir, salgo tarde del trabajo", "viste el partido de anoche?", "jajaja qué fuerte tío",
           "mañana vamos a escalar o qué", "se me murió otra vez la masa madre", "llevo los bocadillos si traes la cuerda", "llego tarde, guárdame sitio",
           "el nuevo disco está buenísimo", "quién viene mañana al rocódromo"],
    "pt": ["ei o que você vai fazer hoje à noite", "não posso ir, saí tarde do trabalho", "viste o jogo ontem à noite?", "kkkkk que engraçado",
           "amanhã vamos escalar ou não", "o meu fermento morreu outra vez", "eu levo os lanches se trouxeres a corda",
           "vou chegar atrasado, guarda-me um lugar",
           "o álbum novo é muito bom", "quem vem amanhã ao ginásio de escalada"],
    "de": ["hey was machst du heute abend", "kann nicht, die arbeit ging wieder länger", "hast du gestern das spiel gesehen?", "haha wie geil ist das denn",
           "gehen wir morgen klettern oder nicht", "mein sauerteig ist schon wieder gestorben", "ich bring snacks mit wenn du das seil mitbringst",
           "bin spät dran, halt mir einen platz frei", "das neue album ist echt gut", "wer kommt morgen mit in die kletterhalle"],
    "fr": ["salut tu fais quoi ce soir", "je peux pas, j'ai fini tard au boulot", "t'as vu le match hier soir ?", "mdr c'est trop drôle",
           "on va grimper demain ou pas", "mon levain est encore mort", "j'apporte les snacks si tu prends la corde", "je suis en retard, garde-moi une place",
           "le nouvel album est trop bien", "qui vient demain à la salle d'escalade"],
    "ru": ["привет что делаешь вечером", "не могу, опять задержался на работе", "видел вчера матч?", "ахаха это слишком смешно",
           "завтра идём на скалодром или нет", "моя закваска опять умерла", "я принесу перекус если ты возьмёшь верёвку", "опаздываю, займи мне место",
           "новый альбом просто огонь", "кто завтра идёт лазать"],
}
# Two to four words: where identifiers differ most.
SHORT: dict[str, list[str]] = {
    "en": ["see you tomorrow", "that was great", "where are you", "good morning everyone", "no worries at all"],
    "es": ["nos vemos mañana", "qué pasa tío", "dónde estás", "buenos días a todos", "no pasa nada"],
    "pt": ["até amanhã então", "tudo bem contigo", "onde você está", "bom dia pessoal", "não faz mal"],
    "de": ["bis morgen dann", "wo bist du", "guten morgen zusammen", "alles gut bei dir", "kein problem"],
    "fr": ["à demain alors", "où es-tu", "bonjour tout le monde", "pas de souci", "ça va bien"],
    "ru": ["до завтра", "где ты", "всем доброе утро", "без проблем", "всё хорошо"],
}
TOO_SHORT = ["lol", "ok 👍", "haha", "xd", "👍👍", "k", "ja", "si", "??", "100%"]


def main() -> None:
    import py3langid
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    from persona.languages import DEFAULT_LANGUAGES, LanguageDetector, says_enough

    detector = LanguageDetector(DEFAULT_LANGUAGES)  # what import uses by default: py3langid among ten languages
    codes = [getattr(IsoCode639_1, code.upper()) for code in DEFAULT_LANGUAGES]
    lingua_models = {"high": LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build(),
                     "low": LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_low_accuracy_mode().build()}
    sets = {"chat": [(lang, line) for lang, lines in LINES.items() for line in lines],
            "short": [(lang, line) for lang, lines in SHORT.items() for line in lines]}
    results: dict[str, object] = {"bench": "language_id", "languages_to_choose_among": len(DEFAULT_LANGUAGES),
                                  **{f"{name}_lines": len(rows) for name, rows in sets.items()}, "too_short_lines": len(TOO_SHORT)}

    def lingua(mode: str) -> Callable[[list[str]], list[str | None]]:
        def detect(texts: list[str]) -> list[str | None]:
            found = lingua_models[mode].detect_languages_in_parallel_of([t if says_enough(t) else "" for t in texts])
            return [lang.iso_code_639_1.name.lower() if lang is not None and says_enough(t) else None for t, lang in zip(texts, found)]
        return detect

    def langid_all(texts: list[str]) -> list[str | None]:
        return [py3langid.classify(t)[0] if says_enough(t) else None for t in texts]

    identifiers: dict[str, Callable[[list[str]], list[str | None]]] = {
        "py3langid among the ten (persona)": detector.detect_many, "py3langid (all 97 languages)": langid_all,
        "lingua high accuracy among the ten": lingua("high"), "lingua low accuracy among the ten": lingua("low")}
    for name, detect in identifiers.items():
        started = time.perf_counter()
        detect(["warming up the models with a sentence"])
        figures: dict[str, object] = {"load_s": round(time.perf_counter() - started, 2)}
        for set_name, rows in sets.items():
            started = time.perf_counter()
            found = detect([line for _, line in rows])
            seconds = time.perf_counter() - started
            figures[f"{set_name}_right"] = f"{sum(f == want for (want, _), f in zip(rows, found))}/{len(rows)}"
            figures[f"{set_name}_wrong"] = [f"{line} → {f}" for (want, line), f in zip(rows, found) if f != want]
            figures[f"{set_name}_ms_per_line"] = round(1000 * seconds / len(rows), 3)
        figures["too_short_undecided"] = sum(s is None for s in detect(TOO_SHORT))
        results[name] = figures
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
