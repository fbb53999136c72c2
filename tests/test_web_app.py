"""The dashboard's application shape (web/app.py, web/dependencies.py, web/limits.py):
CSRF for every route in one place, one handler for the core's errors, a session cookie
that lives as long as the session does, `Secure` beyond loopback, and a cap on uploads."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from persona import memory
from persona.config import Settings
from persona.errors import PersonaError
from persona.memory.embeddings import MULTILINGUAL_ALIAS, MULTILINGUAL_NAME, Embedder, resolve_embed_model
from persona.storage.store import Store
from tests.fixtures import voice
from tests.helpers import hold_draft
from tests.test_web import env, start_web, stop_web  # noqa: F401 - env is a fixture
from web.app import create_app
from web.auth import COOKIE
from web.context import Dashboard


@pytest.fixture
def dashboard(store: Store, env: dict[str, str]) -> Dashboard:  # noqa: F811 - the fixture imported above
    return Dashboard.from_settings(Settings(_env_file=None, database_url=env["DATABASE_URL"], web_session_hours=2), store)


@pytest.fixture
def client(dashboard: Dashboard) -> Iterator[TestClient]:
    app = create_app(dashboard)

    @app.post("/added-on-the-app")  # a route added later, outside every page router
    def added() -> dict[str, str]:
        return {"changed": "yes"}

    @app.get("/refused-by-the-core")
    def refused(request: Request) -> None:
        raise PersonaError("v7 is not ready: it failed its evaluation")

    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        session = dashboard.sessions.start()
        test_client.cookies.set(COOKIE, session.id)
        test_client.headers["x-test-csrf"] = session.csrf
        yield test_client


def test_csrf_covers_a_route_added_on_the_app_itself(client: TestClient) -> None:
    assert client.post("/added-on-the-app").status_code == 403
    assert client.post("/added-on-the-app", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/added-on-the-app", headers={"X-CSRF-Token": client.headers["x-test-csrf"]}).json() == {"changed": "yes"}


def test_the_cores_refusal_is_one_line_on_a_page(client: TestClient) -> None:
    page = client.get("/refused-by-the-core")
    assert page.status_code == 400 and "v7 is not ready: it failed its evaluation" in page.text and "Traceback" not in page.text
    assert client.get("/refused-by-the-core", headers={"HX-Request": "true"}).text == "v7 is not ready: it failed its evaluation"


def test_the_session_cookie_lives_as_long_as_the_session(client: TestClient, dashboard: Dashboard) -> None:
    for _ in range(2):  # every answer sends it again: the browser's expiry slides with the server's
        cookie = client.get("/import").headers["set-cookie"]
        assert f"{COOKIE}=" in cookie and "Max-Age=7200" in cookie and "HttpOnly" in cookie and "Secure" not in cookie
    dashboard.secure_cookies = True  # listening beyond loopback (persona web --host 0.0.0.0, behind a TLS proxy)
    assert "Secure" in client.get("/import").headers["set-cookie"]
    ended = client.post("/logout", headers={"X-CSRF-Token": client.headers["x-test-csrf"]}, follow_redirects=False)
    assert ended.status_code == 303 and 'Max-Age=0' in ended.headers["set-cookie"]  # logging out is not slid back in


def test_an_upload_over_the_limit_is_refused_before_it_is_stored(persona_exe: Path, env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    web = start_web(persona_exe, {**env, "PERSONA_WEB_MAX_UPLOAD_MB": "0.1"})  # 100 KB
    try:
        client = httpx.Client(base_url=web.base, timeout=30, follow_redirects=False)
        client.get(web.link.replace(web.base, ""))
        form = client.get("/import").text
        assert "Files up to 0.1 MB (PERSONA_WEB_MAX_UPLOAD_MB)" in form  # the page says the limit before anyone tries
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        big = b'{"messages": [' + b" " * 200_000 + b"]}"
        refused = client.post("/import", data={"kind": "dce", "csrf_token": token}, files={"file": ("big.json", big, "application/json")})
        assert refused.status_code == 413  # from its Content-Length, before a byte is read

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b"--x\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\ndce\r\n--x\r\n"
            yield b"Content-Disposition: form-data; name=\"file\"; filename=\"big.json\"\r\n\r\n"
            for _ in range(30):
                yield b" " * 10_000

        streamed = client.post("/import", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=x", "X-CSRF-Token": token})
        assert streamed.status_code == 413 and "PERSONA_WEB_MAX_UPLOAD_MB" in streamed.text
        absurd = client.post("/import", data={"kind": "dce", "csrf_token": token}, files={"file": ("x" * 5000 + ".json", b"{}", "application/json")})
        assert absurd.status_code == 400 and 'class="error"' in absurd.text  # the form cannot be read: the error page, not raw JSON
        small = client.post("/import", data={"kind": "dce", "csrf_token": token},
                            files={"file": ("C:\\Users\\me\\" + "x" * 300 + "small.json", b"{}", "application/json")})
        assert small.status_code == 303, small.text  # under the limit: accepted (and refused later by the importer, in one line)
        job = small.headers["location"].split("job=")[1]
        for _ in range(200):  # the import runs in a thread: until its error shows
            shown = client.get(f"/import/jobs/{job}").text
            if "import-error" in shown:
                break
            time.sleep(0.05)
        error = re.search(r'id="import-error">([^<]*)<', shown).group(1)
        # The error names the file the owner chose (its last part, shortened), never where the upload was kept.
        assert re.fullmatch(r"x+…x+small\.json: .+", error) and "uploads" not in error and "Users" not in error and len(error) < 400, error
        uploads = Path(env["PERSONA_HOME"]) / "uploads"
        assert not uploads.exists() or all(p.stat().st_size < 1000 for p in uploads.iterdir())  # nothing big was kept
    finally:
        assert "Traceback" not in stop_web(web)


def test_the_dashboard_previews_and_forgets_a_range_that_empties_the_history(client: TestClient, store: Store, embedder: Embedder) -> None:
    """Issue 33: the preview of a forget that removes every memory answered 500 (topics)."""
    with store.connect() as conn:
        voice.populate(conn, sessions=12)
        memory.build(conn, embedder)
    everything = {"what": "range", "start": "0001-01-01", "end": "9999-12-31"}
    preview = client.get("/privacy/confirm", params=everything)
    assert preview.status_code == 200 and "48 messages" in preview.text
    done = client.post("/privacy/forget", data=everything, headers={"X-CSRF-Token": client.headers["x-test-csrf"]}, follow_redirects=False)
    assert done.status_code == 303
    with store.connect() as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM memories").fetchone()[0] == 0


def test_a_session_ends_at_its_absolute_lifetime_however_busy() -> None:
    """Issue 33: the session slid forever with use; now it also has an end that never moves."""
    import time

    from web.auth import Sessions

    sessions = Sessions(lifetime_s=0.6, max_lifetime_s=1.2)
    session = sessions.start()
    used_until = time.monotonic() + 1.0
    while time.monotonic() < used_until:  # in use every 0.2 s: the idle limit alone would keep it alive
        assert sessions.get(session.id) is session
        time.sleep(0.2)
    time.sleep(0.3)
    assert sessions.get(session.id) is None
    assert sessions.seconds_left(sessions.start()) <= 0.6


def test_cookies_are_secure_over_https_and_behind_a_configured_proxy(dashboard: Dashboard, store: Store) -> None:
    app = create_app(dashboard)
    with TestClient(app, base_url="https://persona.example") as over_https:  # what uvicorn reports behind a trusted TLS proxy
        assert "Secure" in over_https.get("/login").headers["set-cookie"]
    proxied = Dashboard.from_settings(Settings(_env_file=None, database_url=dashboard.settings.database_url, web_trusted_proxies="10.0.0.2"),
                                      store)
    with TestClient(create_app(proxied), base_url="http://127.0.0.1") as behind_proxy:
        assert "Secure" in behind_proxy.get("/login").headers["set-cookie"]


def _draft(store: Store, text: str) -> int:
    with store.connect() as conn:
        draft = hold_draft(conn, asker=1234, channel=4321, asked=text, draft=f"draft: {text}", guild=1, trigger=99, place_label="#general (Crux)")
        conn.commit()
    return draft.id


def test_the_inbox_sends_edits_and_discards_drafts_once(client: TestClient, store: Store) -> None:
    """The dashboard's Inbox: waiting drafts with who, where and a link; Send approves the
    draft as written, the edit page sends the owner's words; a second decision is a 409
    that says what happened; the list refreshes itself (htmx asks for the rows alone)."""
    from persona import drafts

    csrf = {"X-CSRF-Token": client.headers["x-test-csrf"]}
    plain, edited, dropped = (_draft(store, t) for t in ("are you coming?", "what time?", "lol"))
    page = client.get("/inbox")
    assert page.status_code == 200 and "Waiting (3)" in page.text and "draft: what time?" in page.text
    assert "https://discord.com/channels/1/4321/99" in page.text and "is not connected" in page.text  # no bot holds the lock here
    rows_only = client.get("/inbox", headers={"HX-Request": "true"})
    assert "<h1>" not in rows_only.text and "Waiting (3)" in rows_only.text

    assert client.post(f"/inbox/{plain}/send", headers=csrf, follow_redirects=False).status_code == 303
    edit_page = client.get(f"/inbox/{edited}")
    assert edit_page.status_code == 200 and "draft: what time?</textarea>" in edit_page.text
    assert client.post(f"/inbox/{edited}/send", data={"text": "8ish ✨"}, headers=csrf, follow_redirects=False).status_code == 303
    assert client.post(f"/inbox/{dropped}/discard", headers=csrf, follow_redirects=False).status_code == 303
    again = client.post(f"/inbox/{plain}/discard", headers=csrf)
    assert again.status_code == 409 and f"draft {plain} is already approved via dashboard" in again.text
    assert client.post("/inbox/987654/send", headers=csrf).status_code == 404
    assert client.post(f"/inbox/{_draft(store, 'empty?')}/send", data={"text": "   "}, headers=csrf).status_code == 400
    with store.connect() as conn:
        states = {d.id: (d.status, d.final_text, d.decided_via) for d in drafts.listed(conn)}
    assert states[plain] == ("approved", "draft: are you coming?", "dashboard")
    assert states[edited] == ("approved", "8ish ✨", "dashboard")
    assert states[dropped] == ("discarded", None, "dashboard")
    assert "Waiting (1)" in client.get("/inbox").text


def test_the_inbox_sets_and_clears_send_modes(client: TestClient, store: Store) -> None:
    from persona import send_modes

    csrf = {"X-CSRF-Token": client.headers["x-test-csrf"]}
    assert client.post("/inbox/modes", data={"place": "channel", "ident": "4321", "mode": "auto"}, headers=csrf,
                       follow_redirects=False).status_code == 303
    assert client.post("/inbox/modes", data={"place": "dms", "mode": "off"}, headers=csrf, follow_redirects=False).status_code == 303
    assert client.post("/inbox/modes", data={"place": "channel", "ident": "4321", "mode": "loud"}, headers=csrf).status_code == 400
    assert client.post("/inbox/modes", data={"place": "planet", "ident": "1", "mode": "off"}, headers=csrf).status_code == 400
    assert client.post("/inbox/modes", data={"place": "guild", "ident": "nope", "mode": "off"}, headers=csrf).status_code == 400
    page = client.get("/inbox")
    assert "channel 4321" in page.text and "all DMs" in page.text
    with store.connect() as conn:
        assert send_modes.mode_for(conn, "draft", channel_id=4321, guild_id=1, person_id=5) == "auto"
        assert send_modes.mode_for(conn, "draft", channel_id=77, guild_id=None, person_id=5) == "off"
    client.post("/inbox/modes", data={"place": "channel", "ident": "4321", "mode": "default"}, headers=csrf)
    with store.connect() as conn:
        assert send_modes.mode_for(conn, "draft", channel_id=4321, guild_id=1, person_id=5) == "draft"


def test_the_dashboard_reads_memory_with_the_model_it_is_embedded_with(dashboard: Dashboard, store: Store) -> None:
    """Memory embedded with the bundled multilingual model (an owner who writes mostly in another language, or the
    setting): the dashboard's searches and playground use that model, not PERSONA_EMBED_MODEL's empty default —
    MiniLM's vectors against e5's would be refused (or, at the same 384 dimensions, meaningless)."""
    with store.connect() as conn:
        voice.populate(conn, sessions=4)
        memory.build(conn, Embedder(resolve_embed_model(MULTILINGUAL_ALIAS)))
    embedder = dashboard.embedder()
    assert embedder.name == MULTILINGUAL_NAME
    with store.connect() as conn:
        assert memory.search(conn, embedder, "climbing this weekend?", None, k=3)
