"""One-time dashboard login links made from the shell (`persona web login-link`): the
`web_login_links` table's one home.

The link printed when `persona web` starts lives in that process's memory; these are
for a dashboard already running (a lost link, a lockout by someone else's failed
logins): whoever can run persona's CLI on this machine is the owner. Only a token's
sha256 is stored; a link is spent on first use and expires after `TTL_MINUTES`.
"""

from __future__ import annotations

import hashlib
import secrets

import psycopg

TTL_MINUTES = 15
PREFIX = "link-"  # tells these tokens from the start-up link's


def make(conn: psycopg.Connection, ttl_minutes: int = TTL_MINUTES) -> str:
    conn.execute("DELETE FROM web_login_links WHERE expires_at < now() OR used_at IS NOT NULL")
    token = PREFIX + secrets.token_urlsafe(32)
    conn.execute("INSERT INTO web_login_links (token_sha256, expires_at) VALUES (%s, now() + make_interval(mins => %s))",
                 (_digest(token), ttl_minutes))
    return token


def use(conn: psycopg.Connection, token: str) -> bool:
    """True once for a live link (spent in the same statement: two tabs cannot both use it)."""
    if not token.startswith(PREFIX):
        return False
    row = conn.execute("UPDATE web_login_links SET used_at = now() WHERE token_sha256 = %s AND used_at IS NULL AND expires_at > now() "
                       "RETURNING 1", (_digest(token),)).fetchone()
    return row is not None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()
