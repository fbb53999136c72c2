"""Which of a channel's recent messages a prompt starts from.

Taking the last N messages moves the prompt's start with every new message, so no two
prompts in a channel share more than their system text and nothing read before can be
reused (persona/runtime/prefix_cache.py). A sticky window keeps the same first message
while the conversation grows from `shortest` to `longest` lines, then jumps forward to
the newest `shortest`: one reply in (longest - shortest) / 2 reads its prompt from the
start, the others only what is new, and no prompt holds more lines than `longest`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence


class StickyWindow:
    """Start positions by place (the newest `places` kept)."""

    def __init__(self, shortest: int, longest: int, places: int = 4096) -> None:
        if not 0 < shortest <= longest:
            raise ValueError("need 0 < shortest <= longest")
        self.shortest = shortest
        self.longest = longest
        self.places = places
        self._starts: OrderedDict[Hashable, Hashable] = OrderedDict()

    def start(self, place: Hashable, ids: Sequence[Hashable]) -> int:
        """The index in `ids` (a place's recent message ids, oldest first) the prompt starts at."""
        previous = self._starts.pop(place, None)
        if previous is not None and previous in ids:
            index = list(ids).index(previous)
            if len(ids) - index <= self.longest:
                self._starts[place] = previous
                return index
        index = max(0, len(ids) - self.shortest)
        if ids:
            self._starts[place] = ids[index]
            while len(self._starts) > self.places:
                self._starts.popitem(last=False)
        return index
