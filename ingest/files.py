"""Reading input files the same way from a folder or a `.zip`, with one-line errors."""

from __future__ import annotations

import ast
import contextlib
import io
import itertools
import json
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import ijson

from ingest.loader import IngestError
from persona.errors import first_line

# Zip members: what a genuine export never needs, and a small archive that unpacks to
# gigabytes (a "zip bomb") always does. JSON and CSV compress 5-20x; refusing above
# 100x (for members over 8 MiB) leaves a wide margin.
MAX_MEMBER_BYTES = 16 * 1024**3
MAX_RATIO = 100
RATIO_CHECKED_ABOVE = 8 * 1024**2
# channel.json, user.json, index.json and the like are read whole: they are small.
MAX_SMALL_JSON_BYTES = 64 * 1024**2
MAX_JSON_DEPTH = 64  # a DiscordChatExporter message nests about 6 levels
# The C parser turns a whole read buffer into events (with their prefixes, whose length
# grows with depth) before the depth check sees any: a 64 KB buffer of `[[[[…` costs
# about 700 MB, 2 KB costs nothing measurable.
PARSE_BUFFER = 2048


class FileTree:
    """The files of a folder or of a zip archive, named by `/`-separated relative paths."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        if not path.exists():
            raise IngestError(f"{path} does not exist")
        if path.is_dir():
            try:
                self.names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
            except OSError as exc:
                raise IngestError(f"cannot read the folder {path}: {exc.strerror}") from None
            return
        try:
            self._zip = zipfile.ZipFile(path)
            members = [info for info in self._zip.infolist() if not info.is_dir()]
            self.names = sorted(info.filename for info in members)
        except zipfile.BadZipFile:
            raise IngestError(f"{path} is not a zip archive or is damaged (truncated download?): re-download it or unpack it and pass the folder") from None
        except OSError as exc:
            raise IngestError(f"cannot read {path}: {exc.strerror}") from None
        for info in members:
            _check_member(path, info)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> FileTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self, name: str) -> str:
        return f"{self.path}:{name}" if self._zip is not None else str(self.path / name)

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        try:
            if self._zip is not None:
                with self._zip.open(name) as stream:
                    yield stream
            else:
                with open(self.path / name, "rb") as stream:
                    yield stream
        except zipfile.BadZipFile as exc:
            raise IngestError(f"{self.describe(name)} is damaged inside the zip ({exc}): re-download the archive") from None
        except OSError as exc:
            raise IngestError(f"cannot read {self.describe(name)}: {exc.strerror or exc}") from None

    def read_bytes(self, name: str) -> bytes:
        with self.open(name) as stream:
            try:
                return stream.read()
            except (zipfile.BadZipFile, EOFError) as exc:
                raise IngestError(f"{self.describe(name)} is damaged inside the zip ({exc}): re-download the archive") from None

    def iter_json_array(self, name: str) -> Iterator[Any]:
        """The items of a top-level JSON array, parsed streaming (memory flat in the file size)."""
        where = self.describe(name)
        with self.open(name) as stream:
            try:
                events = json_events(stream, where)
                first = next(events, None)
                if first is None:
                    raise IngestError(f"{where} is empty (incomplete download or copy?)")
                if first[1] != "start_array":
                    raise IngestError(f"{where} should hold a list of messages, but holds a JSON {first[1].removeprefix('start_')}")
                yield from ijson.items(itertools.chain([first], events), "item")
            except (ijson.JSONError, UnicodeDecodeError) as exc:
                raise json_error(where, exc) from None
            except (zipfile.BadZipFile, EOFError) as exc:
                raise IngestError(f"{where} is damaged inside the zip ({exc}): re-download the archive") from None

    @contextmanager
    def open_text(self, name: str) -> Iterator[io.TextIOWrapper]:
        """The file as streaming UTF-8 text (newline="" as the csv module wants)."""
        with self.open(name) as stream:
            yield io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")

    def read_json(self, name: str) -> Any:
        """A small JSON file (channel.json, user.json), read whole."""
        size = self._zip.getinfo(name).file_size if self._zip is not None else (self.path / name).stat().st_size
        if size > MAX_SMALL_JSON_BYTES:
            raise IngestError(f"{self.describe(name)} is {size / 1024**2:,.0f} MB; a file like it is a few KB in a real export: refusing it")
        return parse_json(self.read_bytes(name), self.describe(name))

    def read_text(self, name: str) -> str:
        return decode_utf8(self.read_bytes(name), self.describe(name))


def _check_member(path: Path, info: zipfile.ZipInfo) -> None:
    """Refuse a member that would unpack to more than any export holds, or that is
    compressed far better than text ever is. (zipfile stops at the declared size, so a
    member that lies about its size cannot unpack to more.)"""
    where = f"{path}:{info.filename}"
    if info.file_size > MAX_MEMBER_BYTES:
        raise IngestError(f"{where} unpacks to {info.file_size / 1024**3:,.1f} GB, more than any export holds: refusing it")
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > RATIO_CHECKED_ABOVE and ratio > MAX_RATIO:
        raise IngestError(
            f"{where} unpacks {ratio:,.0f} times larger than it is stored ({info.compress_size:,} bytes → {info.file_size:,}): "
            "refusing a possible zip bomb; if the file is genuine, unpack the archive yourself and pass the folder"
        )


def find_files(paths: Iterable[Path], suffixes: tuple[str, ...], what: str) -> list[Path]:
    """Files named directly, plus those with `suffixes` inside folders named, in a stable order."""
    paths = list(paths)
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file()))
        elif path.exists():
            files.append(path)
        else:
            raise IngestError(f"{path} does not exist")
    if not files:
        raise IngestError(f"no {' or '.join(suffixes)} files in {', '.join(map(str, paths))}: pass {what}")
    return files


def json_events(stream: IO[bytes], where: str) -> Iterator[tuple[str, str, Any]]:
    """Streaming parser events of `stream`, with nesting bounded (see bounded_events)."""
    return bounded_events(ijson.parse(stream, use_float=True, buf_size=PARSE_BUFFER), where)


def bounded_events(events: Iterable[tuple[str, str, Any]], where: str, max_depth: int = MAX_JSON_DEPTH) -> Iterator[tuple[str, str, Any]]:
    """Streaming parser events, refused past `max_depth` levels of nesting.

    ijson builds each item of an array whole: an item nested 100,000 levels deep in a
    600-byte zip member grows to gigabytes before anything can look at it. No export
    nests deeper than a dozen levels, so the parse stops long before that."""
    depth = 0
    for event in events:
        kind = event[1]
        if kind in ("start_map", "start_array"):
            depth += 1
            if depth > max_depth:
                raise IngestError(f"{where} is nested more than {max_depth} levels deep, which no export is: refusing it")
        elif kind in ("end_map", "end_array"):
            depth -= 1
        yield event


def json_error(where: str, exc: Exception) -> IngestError:
    """One line for a streaming-parser failure: truncated, not UTF-8, or not JSON."""
    raw = str(exc).strip()
    if raw[:2] in ("b'", 'b"'):  # yajl's message is the repr of bytes that quote the bad input
        with contextlib.suppress(ValueError, SyntaxError):  # not a bytes repr after all: keep the message as it is
            raw = ast.literal_eval(raw).decode("utf-8", "replace").strip()
    text = first_line(raw or exc, limit=10_000)
    text = "".join(ch if ch.isprintable() else "?" for ch in text)[:120]  # never raw bytes on the terminal
    if isinstance(exc, UnicodeDecodeError) or "UTF8" in text or "UTF-8" in text:
        return IngestError(f"{where} is not UTF-8 text: re-export it or convert it to UTF-8")
    if isinstance(exc, ijson.IncompleteJSONError) and ("premature EOF" in text or "Incomplete" in text or "parse error: premature" in text):
        return IngestError(f"{where} is truncated (incomplete download or copy?)")
    return IngestError(f"{where} is not valid JSON ({text})")


def decode_utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{where} is not UTF-8 text (bad byte at offset {exc.start}): re-export it or convert it to UTF-8") from None


def parse_json(data: bytes, where: str) -> Any:
    text = decode_utf8(data, where)
    try:
        return json.loads(text)
    except RecursionError:
        raise IngestError(f"{where} is nested thousands of levels deep, which no export is: refusing it") from None
    except json.JSONDecodeError as exc:
        ends_early = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        problem = "is truncated (incomplete download or copy?)" if ends_early else "is not valid JSON"
        raise IngestError(f"{where} {problem} (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
