"""Small helpers shared by the tests."""

from __future__ import annotations

from persona.storage.store import Store


def rows(store: Store, query: str, *args: object) -> list[tuple]:
    with store.connect() as conn:
        return conn.execute(query, args).fetchall()
