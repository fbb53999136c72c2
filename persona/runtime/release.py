"""What of a model's words may leave, and when: cleaned text, whole sentences at a time.

`clean` is the last step of every reply (control characters out, personal data
scrubbed). `SentenceRelease` applies it to a reply while it is being generated and
hands on the text up to its last finished sentence: a phone number or an e-mail address
is only ever shown whole — and so scrubbed — because the scrubber sees whole sentences,
never a half-written one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from persona.privacy.scrub import Scrubber

# Control characters a model can emit (byte-level tokens): PostgreSQL rejects NUL,
# Discord shows the rest as garbage.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SENTENCE_END = re.compile(r"(?:[.!?…]+[\"')\]]*\s|\n)")


def clean(generated: str) -> str:
    """A model's words as they may leave and be stored: no control characters, personal
    data scrubbed — before the consistency check too, since its verdict quotes them."""
    return Scrubber().scrub(CONTROL.sub("", generated)).strip()


class SentenceRelease:
    """Takes a reply piece by piece; calls `release` with the cleaned text up to the last
    finished sentence each time one more sentence is finished — until `hold` objects to
    the text so far (an identity claim the check has yet to see): from then on nothing
    more is released, and the whole reply waits for its checks."""

    def __init__(self, release: Callable[[str], None], hold: Callable[[str], bool] | None = None) -> None:
        self._release = release
        self._hold = hold
        self._raw = ""
        self.released = ""  # what was shown so far
        self.holding = False

    def __call__(self, piece: str) -> None:
        self._raw += piece
        if self.holding:
            return
        ends = [m.end() for m in _SENTENCE_END.finditer(self._raw)]
        if not ends:
            return
        text = clean(self._raw[:ends[-1]])
        if not text or text == self.released:
            return
        if self._hold is not None and self._hold(text):
            self.holding = True
            return
        self.released = text
        self._release(text)
