"""Test session: one real embedded PostgreSQL 18 + pgvector, a fresh database per test.

The server starts once in a temporary folder. A template database is migrated once;
each test that asks for `database` gets `CREATE DATABASE ... TEMPLATE` of it (a file
copy, tens of milliseconds) and it is dropped afterwards.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from persona.config import Settings
from persona.memory.embeddings import Embedder, resolve_embed_model
from persona.runtime.model import BaseModelSpec, resolve_base_model
from persona.storage.db import Database
from persona.storage.embedded import start_embedded
from persona.storage.store import Store
from tests.fixtures.tiny_model import build_tiny_model

TEMPLATE = "persona_template"
SETTINGS_ENV = ("DISCORD_TOKEN", "DATABASE_URL")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's PERSONA_* variables or .env file leak into a test."""
    for name in list(os.environ):
        if name.startswith("PERSONA_") or name in SETTINGS_ENV:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of the `postgres` database on the session's embedded server."""
    data_dir = tmp_path_factory.mktemp("embedded") / "pg"
    url = start_embedded(data_dir)  # also creates the `persona` database
    return make_conninfo(url, dbname="postgres")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The bundled MiniLM, loaded once for the session (read-only: tests share it)."""
    return Embedder(resolve_embed_model(""))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> BaseModelSpec:
    """The default tiny Llama of tests/fixtures/tiny_model.py, built once; each test module
    makes its own TransformersGenerator from it (a generator holds state: its adapter)."""
    return resolve_base_model(str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")))


@pytest.fixture(scope="session")
def template_url(pg_admin_url: str) -> str:
    from persona.storage import migrate

    _create_database(pg_admin_url, TEMPLATE)
    url = make_conninfo(pg_admin_url, dbname=TEMPLATE)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate.upgrade(conn)
    return url


def _create_database(admin_url: str, name: str, template: str = "template0") -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return make_conninfo(admin_url, dbname=name)


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def database(pg_admin_url: str, template_url: str) -> Iterator[Database]:
    """A fresh, fully migrated database for this test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = _create_database(pg_admin_url, name, TEMPLATE)
    yield Database(url=url)
    _drop_database(pg_admin_url, name)


@pytest.fixture
def blank_database(pg_admin_url: str) -> Iterator[Database]:
    """A fresh database with nothing in it (pgvector available, not created)."""
    name = f"b_{uuid.uuid4().hex[:12]}"
    url = _create_database(pg_admin_url, name)
    yield Database(url=url)
    _drop_database(pg_admin_url, name)


@pytest.fixture
def store(database: Database) -> Store:
    """This test's database, checked and migrated, as the code under test uses it."""
    return Store(database)


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    """Settings pointing at this test's database and a private PERSONA_HOME."""
    return Settings(_env_file=None, database_url=database.url, home=tmp_path / "home")


@pytest.fixture
def persona_exe() -> Path:
    """The installed `persona` console script of this environment."""
    exe = Path(sys.executable).parent / "persona"
    assert exe.exists(), f"persona is not installed in {exe.parent}: run `make test`"
    return exe


@pytest.fixture
def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
