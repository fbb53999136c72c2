"""Progress for imports: a rich bar (files, messages) on a terminal, silence otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Task(Protocol):
    def advance(self, *, files: int = 0, messages: int = 0) -> None: ...


class _QuietTask:
    def advance(self, *, files: int = 0, messages: int = 0) -> None:
        pass


class _RichTask:
    def __init__(self, progress: object, task_id: object) -> None:
        self._progress = progress
        self._task_id = task_id
        self.messages = 0

    def advance(self, *, files: int = 0, messages: int = 0) -> None:
        self.messages += messages
        self._progress.update(self._task_id, advance=files, messages=self.messages)  # type: ignore[attr-defined]


class ImportProgress:
    """`with progress.task(total_files) as task: task.advance(files=1, messages=n)`."""

    def __init__(self, enabled: bool, label: str = "importing") -> None:
        self.enabled = enabled
        self.label = label

    @classmethod
    def for_terminal(cls, label: str = "importing") -> ImportProgress:
        return cls(enabled=sys.stderr.isatty(), label=label)

    @classmethod
    def quiet(cls) -> ImportProgress:
        return cls(enabled=False)

    @contextmanager
    def task(self, total_files: int | None) -> Iterator[Task]:
        if not self.enabled:
            yield _QuietTask()
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files · {task.fields[messages]:,} messages"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, transient=True, console=Console(stderr=True)) as progress:
            task_id = progress.add_task(self.label, total=total_files, messages=0)
            yield _RichTask(progress, task_id)
