"""`/health` and `/metrics` (persona/observability.py, persona/metrics.py) on a real `persona
web` process: public (no login), the database's counts as the owning modules report them,
the bearer token when one is set, nothing anyone wrote in the figures, and a database
that goes away and comes back. `persona serve`'s are checked in tests/test_serve.py, the
bot's metrics port in tests/test_bot_process.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict

from persona import adapters
from persona.history import runs
from persona.memory.embeddings import Embedder
from persona.storage.db import Database
from persona.storage.store import Store
from tests.helpers import hold_draft, sample, scrape
from tests.test_serve import CANARY, GENERAL, GUILD, KIM, _history
from tests.test_web import start_web, stop_web

TOKEN = "metrics-token-for-the-test"


def test_health_and_metrics_of_the_dashboard(persona_exe: Path, database: Database, store: Store, embedder: Embedder, tmp_path: Path,
                                             pg_admin_url: str) -> None:
    _history(store, embedder, tmp_path / "dce")  # one import run, with a DM canary
    with store.connect() as conn:
        version = adapters.create_candidate(conn, base_model="tiny", parent_id=None, hyperparams={}, data_watermark=0, feedback_watermark=0)
        adapters.finish_run(conn, adapters.start_run(conn, kind="train", trigger="cli", version_id=version, params={}), {})
        adapters.fail_run(conn, adapters.start_run(conn, kind="retrain", trigger="schedule", version_id=version, params={}), "it broke")
        hold_draft(conn, asker=KIM, channel=GENERAL, guild=int(GUILD[0]), asked="hi?", draft=f"a draft with {CANARY} in it")
        imports = runs.import_outcomes(conn)
    env = {"DATABASE_URL": database.url, "PERSONA_HOME": str(tmp_path / "home"), "PERSONA_METRICS_TOKEN": TOKEN}
    web = start_web(persona_exe, env)
    try:
        health = httpx.get(f"{web.base}/health", timeout=30)  # no session, no token: a container's health check
        assert health.status_code == 200 and health.json() == {"status": "ok", "database": "ok"}
        assert httpx.get(f"{web.base}/metrics", timeout=30).status_code == 401  # the token is set: asked for, not a login page
        assert httpx.get(f"{web.base}/metrics", headers={"Authorization": f"Basic {TOKEN}"}, timeout=30).status_code == 401

        page = httpx.get(f"{web.base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert page.headers["content-type"].startswith("text/plain") and CANARY not in page.text and "crag" not in page.text
        figures = scrape(f"{web.base}/metrics", TOKEN)
        assert sample(figures, "persona_database_up") == 1
        assert sample(figures, "persona_training_runs_total", kind="train", status="succeeded") == 1
        assert sample(figures, "persona_training_runs_total", kind="retrain", status="failed") == 1
        assert time.time() - 600 < sample(figures, "persona_last_training_success_timestamp_seconds") <= time.time() + 5
        assert sample(figures, "persona_drafts", status="pending") == 1 and sample(figures, "persona_drafts", status="sent") == 0
        assert imports and all(sample(figures, "persona_import_runs_total", source=source, status=status) == count
                               for (source, status), count in imports.items())
        assert sample(figures, "persona_replies_total", outcome="sent") == 0  # the dashboard sends nothing itself
        assert sample(figures, "process_resident_memory_bytes")  # the process's own figures come along

        # The database goes away (no new connections, the pool's killed): 503 and persona_database_up 0, not a traceback.
        name = conninfo_to_dict(database.url)["dbname"]
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            try:
                away = httpx.get(f"{web.base}/health", timeout=60)
                assert away.status_code == 503 and away.json()["database"] == "unreachable"
                assert sample(scrape(f"{web.base}/metrics", TOKEN), "persona_database_up") == 0
            finally:
                admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        back = time.monotonic() + 60  # the pool reconnects in the background, backing off while the database refused it
        while httpx.get(f"{web.base}/health", timeout=60).status_code != 200:
            assert time.monotonic() < back, "the dashboard did not find its database again within a minute"
            time.sleep(0.5)
        assert sample(scrape(f"{web.base}/metrics", TOKEN), "persona_database_up") == 1
    finally:
        assert "Traceback" not in stop_web(web)
