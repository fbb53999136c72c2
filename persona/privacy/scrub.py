"""Scrubbing personal data out of text before anything is stored or sent.

Each kind of personal data is replaced by a typed placeholder (`<EMAIL>`, `<PHONE>`,
`<CARD>`, `<IP>`, `<IBAN>`, `<SSN>`, `<NATIONAL_ID>`, `<SECRET>`, `<PRIVATE_KEY>`); signed
query strings on attachment URLs are cut off. National ids (`_NATIONAL_IDS`) are
checked by python-stdnum's validators: ids with a strong check or a shape of their own
(Spain's DNI/NIE, France's NIR, Italy's codice fiscale, Brazil's formatted CPF) anywhere;
bare digit runs with a weak check (Portugal's NIF, Germany's Steuer-ID, Russia's INN,
the Netherlands' BSN, Poland's PESEL, an unformatted CPF) only when the line names them
("nif", "steuer-id", "инн"…): a random nine-digit number passes a mod-11 check one time
in eleven. Candidates that need a check beyond a pattern (Luhn for
cards, mod-97 for IBANs, a real address for IPv6, a digit count for phones, the number
ranges the US never issues for SSNs) are checked, so ordinary chat — times, versions,
scores, dates, ids in code — survives. Street addresses are not scrubbed: their shapes
("12 Oak Street") are too close to ordinary chat to catch without a gazetteer.

Cheap substring tests decide which patterns run at all: most chat lines contain no
`@`, no long digit run and no `=`, and skip most of the work.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable

import phonenumbers
from stdnum import iban, luhn
from stdnum.br import cpf
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.exceptions import ValidationError
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.pl import pesel
from stdnum.pt import nif
from stdnum.ru import inn

EMAIL = "<EMAIL>"
PHONE = "<PHONE>"
CARD = "<CARD>"
IP = "<IP>"
IBAN = "<IBAN>"
SECRET = "<SECRET>"  # noqa: S105 - the placeholder that replaces secrets
SSN = "<SSN>"
NATIONAL_ID = "<NATIONAL_ID>"
PRIVATE_KEY = "<PRIVATE_KEY>"

_PEM = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)", re.S
)
# Shapes of well-known credentials. Discord tokens: base64 user id, timestamp, HMAC.
_TOKENS = re.compile(
    r"""(?x)
    (?<![\w-])(?:
        [MNO][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,40}   # Discord bot/user token
      | mfa\.[A-Za-z\d_-]{40,100}                                        # Discord MFA token
      | eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}    # JWT
      | sk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}                # OpenAI / Anthropic
      | (?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}                      # Stripe
      | gh[pousr]_[A-Za-z0-9]{30,}                                        # GitHub
      | github_pat_[A-Za-z0-9_]{40,}
      | glpat-[A-Za-z0-9_-]{20,}                                          # GitLab
      | xox[abposr]-[A-Za-z0-9-]{10,}                                     # Slack
      | (?:AKIA|ASIA)[0-9A-Z]{16}                                         # AWS access key id
      | AIza[0-9A-Za-z_-]{35}                                             # Google API key
      | hf_[A-Za-z]{30,}                                                  # Hugging Face
      | npm_[A-Za-z0-9]{36}
      | SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}                          # SendGrid
    )(?![\w-])
    """
)
# `password = hunter2`, `API_KEY: abc`, `token=...` → keep the name, hide the value.
# `password=…`, `api_key: …`, `the password is …`. Linear in the input: the keyword may
# start only where a word starts (the look-behind), with at most three prefix parts
# (`my_db_password`), so a long run like `a-a-a-…=` is tried once, not at every dash.
_ASSIGNMENT = re.compile(
    r"""(?ix)
    (?<![a-z0-9_-])((?:[a-z0-9]+[_-]){0,3}(?:password|passwd|passphrase|pwd|secret|api[_-]?key|apikey|access[_-]?key|
        auth[_-]?token|access[_-]?token|token|client[_-]?secret)\b\s*([:=]|\bis\b)\s*)
    (["']?)(?!<)([^\s"',;]{3,})\3
    """
)
_PASSWORD_WORDS = re.compile(r"(?i)(?:password|passwd|passphrase|pwd)\b")
# Words that follow "password is" / "token:" in ordinary chat; never a secret on their own.
_CHAT_WORDS = frozenset(["a", "an", "the", "this", "that", "these", "those", "it", "its", "my", "your", "our", "their", "his", "her", "same", "new", "old",
                         "wrong", "right", "correct", "incorrect", "invalid", "expired", "required", "optional", "written", "saved", "stored", "stuck",
                         "taped", "somewhere", "here", "there", "on", "in", "at", "of", "for", "to", "from", "with", "by", "about", "still", "just",
                         "also", "really", "very", "too", "so", "not", "never", "always", "probably", "definitely", "literally", "actually", "basically",
                         "like", "what", "which", "who", "why", "how", "when", "where", "weak", "strong", "long", "short", "easy", "hard", "simple",
                         "obvious", "public", "private", "changed", "reset", "lost", "gone", "missing", "case", "sensitive", "please", "thanks", "thank",
                         "lol", "lmao", "haha", "ok", "okay", "yes", "no", "maybe", "fine", "good", "bad"])
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b")
# Discord's CDN signs attachment links with ?ex=&is=&hm=; other signed links carry
# well-known signature parameters. The query string goes, the link stays. A link starts
# after a separator (not inside a run like `http://ahttp://a…`, which would be tried at
# every `http` and take quadratic time).
_SIGNED_QUERY = re.compile(
    r"(?<![\w/.:-])(https?://[^\s?#<>]+)\?(?=[^\s#<>]*\b(?:ex|is|hm|X-Amz-Signature|X-Goog-Signature|Signature|sig|se|token|Expires)=)[^\s#<>]*",
    re.I,
)
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,4})?\b")
# An AWS secret access key is 40 characters of base64 with nothing to recognise it by;
# caught only within a few words after "aws" (`aws secret wJalr…`, `AWS_SECRET_ACCESS_KEY …`).
_AWS_SECRET = re.compile(r"(?i)(\baws\b[\w \t:=\"'-]{0,40}?)(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_CARD = re.compile(r"(?<![\d.,:/-])(?:\d[ -]?){12,18}\d(?![\d.,:/-]\d)")
_IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?::\d{1,5})?(?![\d.]*\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3}|:)(?![\w:])")
_PHONE = re.compile(
    r"""(?x)
    (?<![\w+.:/-])(?:
        \+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,5}){1,4}           # +44 20 7946 0958, +1 (555) 010-9999
      | 00\d{1,3}[\s.-]?\d{1,4}(?:[\s.-]?\d{2,5}){1,4}                # 0049 30 1234567 (00 for +)
      | \(\d{3}\)\s?\d{3}[\s.-]\d{4}                                  # (555) 010-9999
      | \(0\d\)\s?\d{4}\s?\d{4}                                        # (02) 9876 5432 (Australia)
      | (?:1[\s.-])?\d{3}[.-]\d{3}[.-]\d{4}                            # 555-010-9999, 1-800-555-0199
      | 0[1-9](?:[\s.-]\d{2}){4}                                        # 01 42 68 53 00 (France)
      | 0\d{1,4}[\s/-]\d{3,4}[\s-]?\d{3,5}                            # 030 1234567, 07700 900123
      | 0[1-9]\d{8,10}                                                # 07700900123
    )(?![\w-]|\.\d)
    """
)
_LONG_DIGITS = re.compile(r"\d[\d .()/+-]{5,}\d")

# (pattern, validator, words the line must hold — empty: none needed). Checked before cards
# and phones, which would otherwise take some of these digit runs for themselves.
_NATIONAL_IDS: tuple[tuple[re.Pattern[str], Callable[[str], bool], re.Pattern[str] | None], ...] = (
    (re.compile(r"(?<![\w-])\d{8}[- ]?[A-HJ-NP-TV-Za-hj-np-tv-z](?![\w-])"), dni.is_valid, None),  # ES DNI 12345678Z
    (re.compile(r"(?<![\w-])[XYZxyz][- ]?\d{7}[- ]?[A-Za-z](?![\w-])"), nie.is_valid, None),  # ES NIE X1234567L
    (re.compile(r"(?<![\w.-])\d{3}\.\d{3}\.\d{3}-\d{2}(?![\w.-])"), cpf.is_valid, None),  # BR CPF 390.533.447-05
    (re.compile(r"(?<!\w)[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[ABab]) ?\d{3} ?\d{3} ?\d{2}(?!\w)"), nir.is_valid, None),  # FR NIR
    (re.compile(r"(?<!\w)[A-Za-z]{6}\d{2}[A-Za-z]\d{2}[A-Za-z]\d{3}[A-Za-z](?!\w)"), codicefiscale.is_valid, None),  # IT codice fiscale
    (re.compile(r"(?<![\w.-])\d{3} ?\d{3} ?\d{3}(?![\w.-])"), nif.is_valid, re.compile(r"(?i)\b(?:nif|contribuinte)\b")),  # PT NIF
    (re.compile(r"(?<![\w.-])\d{2} ?\d{3} ?\d{3} ?\d{3}(?![\w.-])"), idnr.is_valid,
     re.compile(r"(?i)\b(?:steuer[- ]?id|steuer-?identifikationsnummer|identifikationsnummer|idnr|tin)\b")),  # DE Steuer-ID
    (re.compile(r"(?<![\w.-])\d{10}(?:\d{2})?(?![\w.-])"), inn.is_valid, re.compile(r"(?i)(?:\bинн|\binn\b)")),  # RU INN
    (re.compile(r"(?<![\w.-])\d{9}(?![\w.-])"), bsn.is_valid, re.compile(r"(?i)\b(?:bsn|burgerservicenummer)\b")),  # NL BSN
    (re.compile(r"(?<![\w.-])\d{11}(?![\w.-])"), pesel.is_valid, re.compile(r"(?i)\bpesel\b")),  # PL PESEL
    (re.compile(r"(?<![\w.-])\d{11}(?![\w.-])"), cpf.is_valid, re.compile(r"(?i)\bcpf\b")),  # BR CPF, digits only
)


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies (python-stdnum)."""
    return luhn.is_valid(digits)


def iban_ok(candidate: str) -> bool:
    """ISO 13616 mod-97 check (python-stdnum), without the per-country length table:
    a mistyped country layout is still someone's account number."""
    text = candidate.replace(" ", "").upper()
    if not 15 <= len(text) <= 34 or sum(ch.isdigit() for ch in text) < 10:  # account numbers are mostly digits; words are not
        return False
    try:
        iban.validate(text, check_country=False)
    except ValidationError:
        return False
    return True


class Scrubber:
    """Replace personal data with typed placeholders; `counts` totals what was found."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, text: str) -> str:
        return self.scrub(text)

    def scrub(self, text: str) -> str:
        if not text:
            return text
        found = self.counts
        if "PRIVATE KEY" in text:
            text = _sub(_PEM, PRIVATE_KEY, text, found, "private_key")
        if "http" in text and "?" in text:
            text = _sub(_SIGNED_QUERY, r"\1", text, found, "signed_query")
        if len(text) >= 16:
            text = _sub(_TOKENS, SECRET, text, found, "secret")
            if "aws" in text.lower():
                text = _sub(_AWS_SECRET, rf"\1{SECRET}", text, found, "secret")
        if "=" in text or ":" in text or " is " in text:
            text = _ASSIGNMENT.sub(lambda m: _assigned_secret(m, found), text)
        if "@" in text:
            text = _sub(_EMAIL, EMAIL, text, found, "email")
        if not _has_digit_run(text):
            return text
        if ":" in text:
            text = _sub_checked(_IPV6, IP, text, found, "ip", _is_ipv6)
        text = _sub_checked(_IBAN, IBAN, text, found, "iban", iban_ok)
        if "-" in text:
            text = _sub(_SSN, SSN, text, found, "ssn")
        if _ID_SHAPES.search(text) or _ID_NAMES.search(text):  # one pass decides whether any of the eleven patterns runs
            for pattern, valid, named in _NATIONAL_IDS:
                if named is None or named.search(text):
                    text = _sub_checked(pattern, NATIONAL_ID, text, found, "national_id", _CHECKS[valid])
        text = _sub_checked(_CARD, CARD, text, found, "card", _is_card)
        if "." in text:
            text = _sub(_IPV4, IP, text, found, "ip")
        if _LONG_DIGITS.search(text):
            text = _sub_checked(_PHONE, PHONE, text, found, "phone", _is_phone)
            if _NINE_DIGITS.search(text):
                text = _national_phones(text, found)
        return text


# Numbers as they are dialled at home in the countries of persona's languages, which the
# patterns above do not know ("612 34 56 78", "(11) 91234-5678", "8 912 345 67 89"):
# Google's libphonenumber (the phonenumbers package) knows every country's numbering plan.
# It runs only on a line with nine digits left after the patterns, on each run of digits
# written like a number — in at most six groups of at most five digits, or as one bare run
# when the line speaks of calling (order numbers and ids, "pedido 123456789",
# "bestellnummer 12345678901", are valid numbers somewhere too) — and takes it when it is a
# valid number in one of these countries. bench/scrub.py measures it on the test corpus.
_PHONE_REGIONS = ("ES", "MX", "AR", "BR", "PT", "DE", "AT", "CH", "FR", "BE", "RU", "IT", "NL", "PL", "TR")
_NINE_DIGITS = re.compile(r"\d(?:[\s().-]{0,2}\d){8}")
_DIALLED = re.compile(r"(?<![\w+.:/<-])\(?\d[\d\s()/-]{7,22}\d(?![\w.:/>-])")
_CALLING = re.compile(r"(?i)(?<!\w)(?:call|phone|cell|mobile|number|tel|text me|whatsapp|llama|llámame|llamame|móvil|movil|teléfono|telefono|"
                      r"número|numero|celular|ligue|liga|zap|telefone|telemóvel|handy|nummer|ruf|anrufen|appelle|portable|numéro|"
                      r"звони|позвони|номер|телефон|мобильный)(?!\w)")


def _national_phones(text: str, found: Counter[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        raw = match.group(0).strip()
        groups = re.findall(r"\d+", raw)
        digits = sum(len(g) for g in groups)
        if not 9 <= digits <= 15:
            return match.group(0)
        if len(groups) == 1 and not calling:
            return match.group(0)
        if len(groups) > 6 or (len(groups) > 1 and max(len(g) for g in groups) > 5):
            return match.group(0)
        for region in _PHONE_REGIONS:
            try:
                if phonenumbers.is_valid_number(phonenumbers.parse(raw, region)):
                    found["phone"] += 1
                    return match.group(0).replace(raw, PHONE)
            except phonenumbers.NumberParseException:
                return match.group(0)
        return match.group(0)

    calling = _CALLING.search(text) is not None
    return _DIALLED.sub(replace, text)


def _assigned_secret(match: re.Match[str], found: Counter[str]) -> str:
    """The value of `keyword = value` goes, unless it reads as chat: "the password is on
    the fridge", "my secret is chocolate lol", "token: of thanks"."""
    head, operator, value = match.group(1), match.group(2), match.group(4)
    if operator != "=":
        if value.lower().strip(".!?") in _CHAT_WORDS:
            return match.group(0)
        if operator.lower() == "is" and not _PASSWORD_WORDS.search(head):
            return match.group(0)  # "X is Y" is a secret only when X is a password
    found["secret"] += 1
    return f"{head}{SECRET}"


_FOUR_DIGITS = re.compile(r"\d(?:\D*\d){3}")


def _has_digit_run(text: str) -> bool:
    """True if the text has 4+ digits in total (fewer cannot be card, phone, IP or IBAN)."""
    return _FOUR_DIGITS.search(text) is not None


def _sub(pattern: re.Pattern[str], repl: str | Callable[[re.Match[str]], str], text: str, found: Counter[str], kind: str) -> str:
    new, n = pattern.subn(repl, text)
    if n:
        found[kind] += n
    return new


def _sub_checked(pattern: re.Pattern[str], placeholder: str, text: str, found: Counter[str], kind: str, check: Callable[[str], bool]) -> str:
    def replace(match: re.Match[str]) -> str:
        if check(match.group(0)):
            found[kind] += 1
            return placeholder
        return match.group(0)

    return pattern.sub(replace, text)


# What any id in `_NATIONAL_IDS` needs somewhere in the line: seven digits in a row (DNI, NIE,
# and the bare runs), a dotted CPF, a spaced NIR, a codice fiscale's head — or the id's name.
_ID_SHAPES = re.compile(r"\d{7}|\d{3}\.\d{3}\.\d{3}|[12] \d{2} \d{2} |[A-Za-z]{6}\d{2}[A-Za-z]\d{2}")
_ID_NAMES = re.compile(r"(?i)nif|contribuinte|steuer|idnr|identifikationsnummer|\btin\b|инн|\binn\b|bsn|burgerservicenummer|pesel|cpf")


def _no_raise(valid: Callable[[str], bool]) -> Callable[[str], bool]:
    """A stdnum validator that says False, never raises, on odd input."""
    def check(candidate: str) -> bool:
        try:
            return bool(valid(candidate))
        except Exception:  # noqa: BLE001 - a validator's surprise is "not an id", never a failed import
            return False
    return check


def _is_card(candidate: str) -> bool:
    digits = candidate.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_ok(digits)


def _is_phone(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    return 7 <= digits <= 15


def _is_ipv6(candidate: str) -> bool:
    if candidate.count(":") < 2 or sum(1 for part in candidate.split(":") if part) < 3:
        return False
    try:
        return isinstance(ipaddress.ip_address(candidate), ipaddress.IPv6Address)
    except ValueError:
        return False


def scrub(text: str) -> str:
    """Scrub one text with a throwaway Scrubber."""
    return Scrubber().scrub(text)


_CHECKS = {valid: _no_raise(valid) for _, valid, _ in _NATIONAL_IDS}
