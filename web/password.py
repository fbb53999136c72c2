"""The dashboard's password: the `web_login` table's one home.

Argon2id through argon2-cffi (its defaults follow RFC 9106's second recommended
profile); a hash made with weaker parameters is replaced at the next good login.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from persona.errors import ConfigError

MIN_LENGTH = 10
_hasher = PasswordHasher()


def set_password(conn: psycopg.Connection, password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise ConfigError(f"the dashboard password needs at least {MIN_LENGTH} characters")
    conn.execute(
        "INSERT INTO web_login (id, password_hash) VALUES (1, %s) "
        "ON CONFLICT (id) DO UPDATE SET password_hash = EXCLUDED.password_hash, set_at = now()",
        (_hasher.hash(password),),
    )


def read_file(path: Path) -> str:
    """The password in the first line of `path` (PERSONA_WEB_PASSWORD_FILE, a container's secret)."""
    try:
        first = path.expanduser().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"PERSONA_WEB_PASSWORD_FILE {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    if not first or not first[0].strip():
        raise ConfigError(f"PERSONA_WEB_PASSWORD_FILE {path} is empty: put the password on its first line")
    return first[0].strip()


def clear_password(conn: psycopg.Connection) -> bool:
    return conn.execute("DELETE FROM web_login").rowcount > 0


def is_set(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM web_login)").fetchone()[0]


def verify(conn: psycopg.Connection, password: str) -> bool:
    row = conn.execute("SELECT password_hash FROM web_login WHERE id = 1").fetchone()
    if row is None:
        return False
    try:
        _hasher.verify(row[0], password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(row[0]):
        conn.execute("UPDATE web_login SET password_hash = %s WHERE id = 1", (_hasher.hash(password),))
    return True
