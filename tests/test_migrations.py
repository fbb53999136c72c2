"""The migration runner against a real PostgreSQL: exact schema, idempotence, locking, failure."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from persona.errors import DatabaseError, MigrationError
from persona.storage import migrate
from persona.storage.db import Database, connect

EXPECTED_COLUMNS: dict[str, set[str]] = {
    "schema_migrations": {"version", "name", "checksum", "applied_at"},
    "import_runs": {"id", "source", "path", "status", "started_at", "finished_at", "counts", "error"},
    "people": {"id", "name", "display_name", "is_owner", "is_bot", "opted_out_at", "first_seen_at"},
    "channels": {"id", "kind", "name", "guild_id", "guild_name", "parent_id", "scope", "recipients", "created_at"},
    "messages": {
        "id", "seq", "channel_id", "author_id", "source", "scope", "kind", "created_at", "edited_at",
        "content", "reply_to_id", "attachments", "mentions", "import_run_id", "inserted_at", "memory_id", "language",
    },
    "memories": {
        "id", "scope", "channel_id", "content", "embedding", "embed_model", "tsv",
        "started_at", "ended_at", "message_ids", "created_at", "author_ids", "topic_id", "languages",
    },
    "memory_topics": {"id", "centroid", "built_at"},
    "api_keys": {"id", "name", "token_sha256", "asker_id", "place_kind", "channel_id", "guild_id", "created_at", "last_used_at", "revoked_at"},
    "web_login": {"id", "password_hash", "set_at"},
    "web_login_links": {"token_sha256", "made_at", "expires_at", "used_at"},
    "disclosures": {"person_id", "channel_id", "told_at"},
    "send_modes": {"place", "place_id", "mode", "set_at"},
    "guard_terms": {"term", "added_at"},
    "drafts": {
        "id", "status", "created_at", "expires_at", "decided_at", "decided_via", "decision_seq", "sent_at", "scope", "channel_id", "guild_id",
        "trigger_message_id", "asker_id", "asker_name", "asker_text", "place_label", "context_author_ids", "memory_ids", "held_because", "draft_text",
        "final_text", "reply", "notice_channel_id", "notice_message_id", "reply_id", "failure",
    },
    "adapter_versions": {
        "id", "parent_id", "base_model", "path", "status", "status_reason", "data_watermark",
        "feedback_watermark", "hyperparams", "metrics", "created_at", "activated_at",
        "trained_message_ids", "heldout_message_ids", "trained_feedback_ids", "data_recorded", "tainted_at", "tainted_reason", "files_pending",
        "trained_draft_ids", "draft_watermark", "prompt_frame",
    },
    "training_runs": {
        "id", "kind", "trigger", "status", "adapter_version_id", "params", "metrics", "error",
        "started_at", "finished_at",
    },
    "replies": {
        "id", "message_ids", "trigger_message_id", "channel_id", "guild_id", "asker_id", "scope", "prompt",
        "completion", "memory_ids", "adapter_version_id", "base_model", "latency_ms", "created_at", "context_author_ids", "evidence", "verdict",
    },
    "feedback": {"id", "reply_id", "rater_id", "rating", "correction", "via", "created_at"},
    "memory_config": {"singleton", "embed_model", "dimension", "updated_at"},
    "heldout_messages": {"message_id", "channel_id", "added_at"},
    "backfill_state": {"channel_id", "last_message_id", "messages", "updated_at"},
}


def schema_of(conn: psycopg.Connection) -> dict[str, set[str]]:
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
    ).fetchall()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return tables


def snapshot(conn: psycopg.Connection) -> tuple:
    columns = conn.execute(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY 1, 2"
    ).fetchall()
    indexes = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1").fetchall()
    applied = conn.execute("SELECT version, checksum, applied_at FROM schema_migrations ORDER BY 1").fetchall()
    return columns, indexes, applied


def test_blank_database_gets_exactly_the_expected_tables_and_columns(blank_database: Database) -> None:
    with connect(blank_database, autocommit=True, vector=False) as conn:
        applied = migrate.upgrade(conn)
        assert [m.filename for m in applied] == [m.filename for m in migrate.discover()]
        assert schema_of(conn) == EXPECTED_COLUMNS
        vector = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        assert vector is not None


def test_upgrade_twice_changes_nothing(blank_database: Database) -> None:
    with connect(blank_database, autocommit=True, vector=False) as conn:
        migrate.upgrade(conn)
        before = snapshot(conn)
        assert migrate.upgrade(conn) == []
        assert snapshot(conn) == before


def test_concurrent_upgrades_are_serialised(blank_database: Database) -> None:
    runners = 4
    barrier = threading.Barrier(runners)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with connect(blank_database, autocommit=True, vector=False) as conn:
                barrier.wait()
                results.append([m.filename for m in migrate.upgrade(conn)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(runners)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    every_file = [m.filename for m in migrate.discover()]
    # Exactly one runner applied everything; the others found nothing pending.
    assert sorted(results, key=len) == [[]] * (runners - 1) + [every_file]
    with connect(blank_database, autocommit=True, vector=False) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m.version for m in migrate.discover()]


def _migrations_dir(tmp_path: Path, extra: dict[str, str]) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for m in migrate.discover():
        (folder / m.filename).write_text(m.sql)
    for name, text in extra.items():
        (folder / name).write_text(text)
    return folder


def test_failing_migration_names_the_file_and_leaves_previous_state(blank_database: Database, tmp_path: Path) -> None:
    folder = _migrations_dir(
        tmp_path,
        {
            "0900_good.sql": "CREATE TABLE good_one (id int);",
            "0901_broken.sql": "CREATE TABLE half_done (id int);\nALTER TABLE messages ADD COLUMN x int;\nSELECT no_such_function();\n",
        },
    )
    with connect(blank_database, autocommit=True, vector=False) as conn:
        with pytest.raises(MigrationError) as info:
            migrate.upgrade(conn, migrate.discover(folder))
        message = info.value.message
        assert "0901_broken.sql" in message
        assert "no_such_function" in message
        assert "line 3" in message
        assert "version 0900" in message
        tables = schema_of(conn)
        assert "good_one" in tables  # the earlier file stays applied
        assert "half_done" not in tables  # nothing of the failed file remains
        assert "x" not in tables["messages"]
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()]
        assert 900 in versions and 901 not in versions


def test_misnamed_and_duplicate_migration_files_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "1_init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="misnamed"):
        migrate.discover(bad)
    dup = tmp_path / "dup"
    dup.mkdir()
    (dup / "0001_a.sql").write_text("SELECT 1;")
    (dup / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="share number 0001"):
        migrate.discover(dup)


def test_database_newer_than_the_code_is_a_clear_error(database: Database) -> None:
    with connect(database, autocommit=True, vector=False) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')")
        with pytest.raises(DatabaseError, match="newer than this persona knows"):
            migrate.upgrade(conn)


def test_edited_applied_migration_is_reported(database: Database, tmp_path: Path) -> None:
    folder = _migrations_dir(tmp_path, {})
    first = sorted(folder.iterdir())[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with connect(database, autocommit=True, vector=False) as conn:
        state = migrate.status(conn, migrate.discover(folder))
    assert state.modified == [first.name]
    assert state.pending == []


def test_upgrade_needs_autocommit(database: Database) -> None:
    with connect(database, vector=False) as conn, pytest.raises(ValueError):
        migrate.upgrade(conn)
