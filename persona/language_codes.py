"""The languages persona knows by their ISO 639-1 codes, with PostgreSQL's text-search
configuration for each: a table of its own, so that the settings can check
PERSONA_LANGUAGES without importing the language identifier (persona/languages.py)."""

# ISO 639-1 code → PostgreSQL's text-search configuration (None: PostgreSQL has none; `simple` is used).
TEXT_SEARCH: dict[str, str | None] = {
    "en": "english", "es": "spanish", "pt": "portuguese", "de": "german", "fr": "french", "ru": "russian", "it": "italian",
    "nl": "dutch", "sv": "swedish", "da": "danish", "fi": "finnish", "nb": "norwegian", "hu": "hungarian", "ro": "romanian",
    "tr": "turkish", "el": "greek", "ca": "catalan", "id": "indonesian", "lt": "lithuanian", "ga": "irish", "hy": "armenian",
    "eu": "basque", "ar": "arabic", "hi": "hindi", "ta": "tamil", "sr": "serbian",
    "pl": None, "uk": None, "cs": None, "sk": None, "bg": None, "hr": None, "sl": None, "et": None, "lv": None, "he": None,
    "fa": None, "vi": None, "th": None, "ja": None, "zh": None, "ko": None,
}
