"""Language identification of chat lines: lingua-language-detector (what import uses,
persona/languages.py) vs py3langid (langid.py's maintained fork), on short chat lines
written for this bench in English, Spanish, Portuguese, German, French and Russian —
plus lines too short to tell ("lol", "ok 👍"), which should come back undecided. Accuracy
per language on the decided lines, the share decided, and the time per line. One JSON line.

    python bench/language_id.py
"""

from __future__ import annotations

import json
import sys
import time
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
TOO_SHORT = ["lol", "ok 👍", "haha", "xd", "👍👍", "k", "ja", "si", "??", "100%"]


def main() -> None:
    import py3langid

    from persona.languages import LanguageDetector

    detector = LanguageDetector(tuple(LINES))
    rows = [(lang, line) for lang, lines in LINES.items() for line in lines]
    results: dict[str, object] = {"bench": "language_id", "lines": len(rows), "too_short_lines": len(TOO_SHORT)}
    identifier = py3langid.classify
    restricted = py3langid.langid.LanguageIdentifier.from_pickled_model(py3langid.langid.MODEL_FILE, norm_probs=True)
    restricted.set_languages(list(LINES))

    def lingua(texts: list[str]) -> list[str | None]:
        return detector.detect_many(texts)

    def langid_all(texts: list[str]) -> list[str | None]:
        return [identifier(t)[0] for t in texts]

    def langid_six(texts: list[str]) -> list[str | None]:
        return [lang if p >= 0.9 else None for lang, p in (restricted.classify(t) for t in texts)]

    for name, detect in (("lingua", lingua), ("py3langid (all languages)", langid_all), ("py3langid (the six, p ≥ 0.9)", langid_six)):
        detect(["warm up"])
        started = time.perf_counter()
        found = detect([line for _, line in rows])
        short = detect(TOO_SHORT)
        seconds = time.perf_counter() - started
        per_language = {}
        for lang in LINES:
            mine = [f for (want, _), f in zip(rows, found) if want == lang]
            decided = [f for f in mine if f is not None]
            per_language[lang] = round(sum(f == lang for f in decided) / len(mine), 2)
        results[name] = {"accuracy": round(sum(f == want for (want, _), f in zip(rows, found)) / len(rows), 3), "per_language": per_language,
                         "undecided": sum(f is None for f in found), "too_short_undecided": sum(s is None for s in short),
                         "ms_per_line": round(1000 * seconds / (len(rows) + len(TOO_SHORT)), 3)}
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
