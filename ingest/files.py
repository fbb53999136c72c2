"""Reading input files the same way from a folder or a `.zip`, with one-line errors."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ingest.loader import IngestError


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
            self.names = sorted(info.filename for info in self._zip.infolist() if not info.is_dir())
        except zipfile.BadZipFile:
            raise IngestError(f"{path} is not a zip archive or is damaged (truncated download?): re-download it or unpack it and pass the folder") from None
        except OSError as exc:
            raise IngestError(f"cannot read {path}: {exc.strerror}") from None

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

    def read_json(self, name: str) -> Any:
        return parse_json(self.read_bytes(name), self.describe(name))

    def read_text(self, name: str) -> str:
        return decode_utf8(self.read_bytes(name), self.describe(name))


def decode_utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{where} is not UTF-8 text (bad byte at offset {exc.start}): re-export it or convert it to UTF-8") from None


def parse_json(data: bytes, where: str) -> Any:
    text = decode_utf8(data, where)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        ends_early = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        problem = "is truncated (incomplete download or copy?)" if ends_early else "is not valid JSON"
        raise IngestError(f"{where} {problem} (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
