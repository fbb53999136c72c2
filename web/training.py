"""A retrain started from the dashboard: the same `trainer.pipeline.run` as `persona retrain`
(its own training process, evaluation, promotion gate), in a thread of the dashboard,
with the training process's last lines kept for the page to show live."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field

from persona.config import Settings
from persona.errors import PersonaError
from persona.storage.store import Store

log = logging.getLogger(__name__)


@dataclass
class Retrain:
    done: bool = False
    outcome: str = ""
    failed: bool = False
    _output: deque[str] = field(default_factory=lambda: deque(maxlen=12))
    _partial: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def running(self) -> bool:
        return not self.done

    def lines(self) -> list[str]:
        with self._lock:
            return [*self._output, *([self._partial] if self._partial.strip() else [])]

    def feed(self, chunk: bytes) -> None:
        """The child's raw output: progress bars redraw with \\r, so the last redraw of a line wins."""
        text = chunk.decode("utf-8", "replace")
        with self._lock:
            for piece in text.split("\n")[:-1]:
                self._output.append((self._partial + piece).split("\r")[-1].strip())
                self._partial = ""
            self._partial = (self._partial + text.split("\n")[-1]).split("\r")[-1]


def start_retrain(store: Store, settings: Settings, *, max_steps: int | None = None) -> Retrain:
    job = Retrain()

    def work() -> None:
        from trainer.pipeline import run

        try:
            overrides = {"max_steps": max_steps} if max_steps else {}
            job.outcome = run(store, settings, incremental=True, trigger="dashboard", quiet=job.feed, **overrides).line()
        except PersonaError as exc:
            job.outcome, job.failed = exc.message, True
        except Exception as exc:
            log.exception("the retrain started from the dashboard failed")
            job.outcome, job.failed = f"the retrain failed: {exc}", True
        finally:
            job.done = True

    threading.Thread(target=work, name="dashboard-retrain", daemon=True).start()
    return job
