"""`persona web`, the owner's dashboard, as a real process over real HTTP, driven by a real
Chromium (Debian's, through Playwright) where one is installed.

Login guards every route; a wrong password, a spent login link and a request without
the CSRF token are refused; the memory explorer applies the bot's scope rules (a friend
in a server never sees a DM canary its DM partner does see); activate / roll back change
what `persona adapters` reports; a playground reply appears and is logged; forgetting
from the Privacy page removes the canary from the database; a broken upload is one
clear error and changes nothing. Screenshots of each page go to test-artifacts/web/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from persona import adapters, observability
from persona.memory.embeddings import Embedder
from persona.runtime.model import BaseModelSpec
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures.dce import OWNER, message, write_export
from tests.fixtures.discord_package import OWNER_ID
from tests.helpers import free_port, hold_draft, random_lora, wait_healthy
from tests.test_cli import assert_one_line_error, run
from tests.test_serve import CANARY, DM, GENERAL, GUILD, KIM, SAM, _history
from web import password

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "web"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium as this machine needs it: root, no GPU, no network beyond localhost.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


class Web:
    """A running `persona web` process: its base URL and the one-time login link it printed."""

    def __init__(self, process: subprocess.Popen[str], base: str, link: str) -> None:
        self.process, self.base, self.link = process, base, link


def start_web(persona_exe: Path, env: dict[str, str], *extra: str) -> Web:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_") and k != "DATABASE_URL"}
    process = subprocess.Popen([str(persona_exe), "web", "--port", str(port), *extra], text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={**clean, "PERSONA_LOG_LEVEL": "WARNING", **env})
    assert process.stdout is not None
    line = process.stdout.readline()  # the login link, printed before the server starts
    match = re.search(r"(http://\S+/login\?token=\S+)", line)
    assert match, f"no login link: {line!r} {process.stderr.read() if process.poll() is not None and process.stderr else ''}"
    base = f"http://127.0.0.1:{port}"
    wait_healthy(f"{base}/login", process, timeout=60)
    return Web(process, base, match.group(1))


def stop_web(web: Web) -> str:
    web.process.send_signal(signal.SIGINT)
    try:
        web.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        web.process.kill()
    return web.process.stderr.read() if web.process.stderr else ""


@pytest.fixture
def env(database: Database, tmp_path: Path, tiny_llama: BaseModelSpec) -> dict[str, str]:
    return {"DATABASE_URL": database.url, "PERSONA_HOME": str(tmp_path / "home"), "PERSONA_BASE_MODEL": tiny_llama.path,
            "PERSONA_OWNER_ID": str(OWNER_ID), "PERSONA_REPLY_MAX_TOKENS": "8"}


@pytest.fixture
def web(persona_exe: Path, env: dict[str, str], store: Store, embedder: Embedder, tmp_path: Path) -> Iterator[Web]:
    _history(store, embedder, tmp_path / "dce")
    running = start_web(persona_exe, env)
    yield running
    assert "Traceback" not in stop_web(running)


def _routes(store: Store, env: dict[str, str]) -> list[tuple[str, str]]:
    """(method, path) of every route the dashboard registers, path parameters filled in."""
    from fastapi.routing import APIRoute

    from persona.config import Settings
    from web.app import create_app
    from web.context import Dashboard

    def walk(routes: list) -> Iterator[APIRoute]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            elif hasattr(route, "original_router"):  # FastAPI's wrapper of an included router
                yield from walk(route.original_router.routes)

    app = create_app(Dashboard.from_settings(Settings(_env_file=None, database_url=env["DATABASE_URL"]), store))
    return [(method, re.sub(r"\{[^}]+\}", "1", route.path)) for route in walk(app.routes) for method in sorted(route.methods)]


def test_nothing_is_served_without_a_login(web: Web, persona_exe: Path, env: dict[str, str], store: Store) -> None:
    client = httpx.Client(base_url=web.base, timeout=30, follow_redirects=False)
    routes = _routes(store, env)
    assert len(routes) >= 20 and ("POST", "/privacy/forget") in routes
    for method, path in routes:
        if path in ("/login", *observability.PATHS):  # public: tests/test_observability.py
            continue
        response = client.request(method, path)
        assert response.status_code in (303, 401), f"{method} {path} answered {response.status_code} without a session"
        if response.status_code == 303:
            assert response.headers["location"].startswith("/login")
        assert CANARY not in response.text
    page = client.get("/login")
    assert page.status_code == 200 and "one-time login link" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"] and page.headers["x-frame-options"] == "DENY"

    # The one-time link logs in once; the session cookie is HttpOnly and SameSite=Strict.
    first = client.get(web.link.replace(f"http://127.0.0.1:{web.base.rsplit(':', 1)[1]}", ""))
    assert first.status_code == 303 and first.headers["location"] == "/"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    again = httpx.get(web.link, timeout=30)
    assert again.status_code == 401 and "already used" in again.text
    for path in ("/", "/memory", "/adapters", "/adapters/training", "/replies", "/playground", "/privacy", "/import"):
        shown = client.get(path)
        assert shown.status_code == 200, f"{path}: {shown.status_code} {shown.text[:300]}"

    # Without the CSRF token, a state change is refused and nothing happens.
    refused = client.post("/privacy/forget", data={"what": "channel", "target": str(DM)})
    assert refused.status_code == 403 and "CSRF" in refused.text
    wrong = client.post("/privacy/forget", data={"what": "channel", "target": str(DM), "csrf_token": "nope"})
    assert wrong.status_code == 403
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT count(*) FROM messages WHERE content LIKE %s", (f"%{CANARY}%",)).fetchone()[0] == 1

    # Passwords: argon2 hash stored, a wrong one refused, failed logins limited.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_") and k != "DATABASE_URL"}
    subprocess.run([str(persona_exe), "web", "set-password", "--stdin"], input="correct horse battery\n", text=True, check=True,
                   env={**clean, **env}, capture_output=True, timeout=60)
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        stored = conn.execute("SELECT password_hash FROM web_login").fetchone()[0]
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    login = httpx.Client(base_url=web.base, timeout=30)
    form = login.get("/login")
    statuses = []
    for _ in range(6):  # each answer is a new form with a new token
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        form = login.post("/login", data={"password": "wrong password!", "csrf_token": token})
        statuses.append(form.status_code)
    assert statuses == [401] * 4 + [429] * 2  # the spent link above was this address's first failure of five
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    # Once limited, even the right password waits (a guesser learns nothing from the answer).
    limited = login.post("/login", data={"password": "correct horse battery", "csrf_token": token})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0


def test_a_public_address_needs_a_password(persona_exe: Path, env: dict[str, str], store: Store, tmp_path: Path) -> None:
    assert_one_line_error(run(persona_exe, "web", "--host", "0.0.0.0", env=env),  # noqa: S104 - refused, never bound
                          2, "without a password", "persona web set-password")
    # A container's secret (PERSONA_WEB_PASSWORD_FILE): missing or empty is one line; a real one is the password.
    secret = tmp_path / "web_password"
    assert_one_line_error(run(persona_exe, "web", env={**env, "PERSONA_WEB_PASSWORD_FILE": str(secret)}), 2, "PERSONA_WEB_PASSWORD_FILE",
                          "cannot read")
    secret.write_text("\n")
    assert_one_line_error(run(persona_exe, "web", env={**env, "PERSONA_WEB_PASSWORD_FILE": str(secret)}), 2, "is empty")
    secret.write_text("from a docker secret\n")
    web = start_web(persona_exe, {**env, "PERSONA_WEB_PASSWORD_FILE": str(secret)}, "--host", "0.0.0.0")  # noqa: S104
    try:  # it listens beyond loopback (so a password is set), and it is the file's (cookies are Secure there: checked in the database)
        assert httpx.get(f"{web.base}/login", timeout=30).status_code == 200
        with store.connect() as conn:
            assert password.verify(conn, "from a docker secret") and not password.verify(conn, "from a docker secret\n")
    finally:
        assert "Traceback" not in stop_web(web)


def _plot(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([3, 2, 1])
    fig.savefig(path)
    plt.close(fig)


def _adapter_versions(persona_exe: Path, env: dict[str, str]) -> dict[int, str]:
    listed = json.loads(run(persona_exe, "adapters", "--json", env=env).stdout)
    return {v["version"]: v["status"] for v in listed}


def _count(env: dict[str, str], query: str, *args: object) -> int:
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        return int(conn.execute(query, args).fetchone()[0])


def _pending_draft(store: Store, asked: str, draft: str) -> int:
    with store.connect() as conn:
        made = hold_draft(conn, asker=KIM, channel=GENERAL, asked=asked, draft=draft, guild=int(GUILD[0]), place_label="#general (Rust Fans)")
        conn.commit()
    return made.id


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: `apt-get install chromium` (.ci/run installs it) to run the dashboard in a browser")
def test_the_dashboard_in_a_browser(persona_exe: Path, env: dict[str, str], store: Store, embedder: Embedder, tiny_llama: BaseModelSpec,
                                    tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # the first recall loads the embedder, the first reply the model
    _history(store, embedder, tmp_path / "dce")
    with store.connect() as conn:  # two real adapters for the tiny model, v2 serving
        for seed in (1, 2):
            version = adapters.create_candidate(conn, base_model=tiny_llama.name, parent_id=None, hyperparams={}, data_watermark=0,
                                                feedback_watermark=0)
            adapters.set_path(conn, version, random_lora(tiny_llama, tmp_path / f"v{version}" / "adapter", seed=seed, scale=0.1))
            adapters.record_metrics(conn, version, {"heldout_loss": {"base": 9.0, "candidate": 5.0 - version}})
            adapters.activate(conn, version)
        conn.commit()
    _plot(tmp_path / "v1" / "loss_curve.png")
    _plot(tmp_path / "v1" / "measures.png")
    (tmp_path / "v1" / "report.md").write_text("# Evaluation of v1\n\n| | base | v1 |\n| --- | --- | --- |\n| held-out loss | 9.000 | 4.000 |\n\n"
                                              "![loss curve](loss_curve.png)\n\n![measures](measures.png)\n\n"
                                              "sample reply: <script>alert('x')</script>\n")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    web = start_web(persona_exe, env)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(60_000)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            page.goto(web.base + "/memory")
            expect(page).to_have_url(re.compile(r"/login"))  # no session: the login form
            page.goto(web.link)
            expect(page.locator("#active-adapter")).to_contain_text("v2")
            page.screenshot(path=ARTIFACTS / "overview.png", full_page=True)

            # Memory explorer: Kim in the server never sees the DM canary; Sam in his DM does.
            page.click("nav >> text=Memory")
            page.fill("input[name=q]", "what car do you drive?")
            page.select_option("#asker", str(KIM))
            page.select_option("#place", f"channel:{GENERAL}")
            page.click("form.toolbar button")
            expect(page.locator("#scopes")).to_contain_text(f"guild:{GUILD[0]}")
            expect(page.locator("#results")).to_contain_text("bike to the crag")
            assert CANARY not in page.inner_text("#results")
            page.select_option("#asker", str(SAM))
            page.select_option("#place", "dm")
            page.click("form.toolbar button")
            expect(page.locator("#results")).to_contain_text(CANARY)
            page.screenshot(path=ARTIFACTS / "memory.png", full_page=True)

            # Adapters: roll back, then activate v2 again; `persona adapters` follows.
            page.click("nav >> text=Adapters")
            page.click("#rollback")
            expect(page.locator("p.done")).to_contain_text("v1 is active")
            assert _adapter_versions(persona_exe, env) == {1: "active", 2: "retired"}
            page.click("tr[data-version='2'] button:text-is('Activate')")
            expect(page.locator("p.done")).to_contain_text("v2 is active")
            assert _adapter_versions(persona_exe, env) == {1: "retired", 2: "active"}
            page.screenshot(path=ARTIFACTS / "adapters.png", full_page=True)
            page.click("tr[data-version='1'] >> a:text-is('v1')")  # its evaluation report, rendered, with its plot
            expect(page.locator("article.report table")).to_contain_text("held-out loss")
            assert page.locator("article.report img").evaluate_all("imgs => imgs.length === 2 && imgs.every(i => i.complete && i.naturalWidth > 0)")
            assert page.locator("article.report script").count() == 0  # generated text is never markup
            page.screenshot(path=ARTIFACTS / "adapter_report.png", full_page=True)
            page.go_back()
            page.click("text=Compare the two chosen")
            expect(page.locator("#comparison")).to_contain_text("heldout_loss.candidate")
            page.go_back()
            page.click("#retrain")  # a real incremental retrain of the tiny model: its own process, evaluation, gate
            expect(page.locator("#training-outcome")).to_be_visible(timeout=180_000)
            expect(page.locator("#runs")).to_contain_text("dashboard")  # the page reloaded itself: the run is in the log
            assert _count(env, "SELECT count(*) FROM training_runs WHERE trigger = 'dashboard' AND status = 'succeeded'") == 1
            page.screenshot(path=ARTIFACTS / "adapters_retrain.png", full_page=True)
            serving = next(v for v, status in _adapter_versions(persona_exe, env).items() if status == "active")

            # Playground: a reply streams in and is logged like the bot's; a Replies page open in another tab shows it live.
            live = context.new_page()
            live.goto(web.base + "/replies")
            before = _count(env, "SELECT count(*) FROM replies")
            page.click("nav >> text=Playground")
            page.fill("#question", "lol the weather is wild today")
            page.click("#send")
            link = page.locator("a.reply-link")
            expect(link).to_be_visible(timeout=120_000)
            reply_id = int(link.get_attribute("href").rsplit("/", 1)[1])
            assert _count(env, "SELECT count(*) FROM replies") == before + 1
            assert _count(env, "SELECT count(*) FROM replies WHERE id = %s AND adapter_version_id = %s", reply_id, serving) == 1
            page.screenshot(path=ARTIFACTS / "playground.png", full_page=True)
            expect(live.locator(f"tr[data-reply='{reply_id}']")).to_be_visible(timeout=20_000)  # no reload: the rows refresh
            live.close()

            # Replies: the playground's reply is listed; rated 👎 from its page.
            page.click("nav >> text=Replies")
            page.click(f"tr[data-reply='{reply_id}'] >> a")
            page.click("#rate-down")
            expect(page.locator("h1")).to_contain_text(f"Reply {reply_id}")
            assert _count(env, "SELECT count(*) FROM feedback WHERE reply_id = %s AND rating = -1 AND via = 'dashboard'", reply_id) == 1
            page.goto(web.base + "/replies")
            page.select_option("select[name=rating]", "down")
            page.select_option("select[name=asker]", str(OWNER_ID))  # the playground asked as the owner
            page.click("form.toolbar button")
            expect(page.locator(f"tr[data-reply='{reply_id}']")).to_be_visible()
            page.select_option("select[name=rating]", "up")
            page.click("form.toolbar button")
            expect(page.locator("#replies")).to_contain_text("No replies match these filters")
            page.screenshot(path=ARTIFACTS / "replies.png", full_page=True)

            # Inbox: a draft waits; one made while the page is open appears without a reload; edit one and send it, discard the other.
            first = _pending_draft(store, "are you coming to the crag saturday?", "ngl maybe, depends on the weather")
            page.click("nav >> text=Inbox")
            expect(page.locator(f"tr[data-draft='{first}']")).to_contain_text("depends on the weather")
            second = _pending_draft(store, "lol did you see that", "As an AI language model I cannot see")
            expect(page.locator(f"#waiting tr[data-draft='{second}']")).to_be_visible(timeout=20_000)  # the rows refresh
            page.screenshot(path=ARTIFACTS / "inbox.png", full_page=True)
            page.click(f"#waiting tr[data-draft='{second}'] >> text=Edit")
            page.fill("textarea[name=text]", "lmaooo yes 😭")
            page.click("form[action$='/send'] button")
            expect(page.locator(f"#decided tr[data-draft='{second}']")).to_contain_text("approved via dashboard")
            page.click(f"#waiting tr[data-draft='{first}'] button:text-is('Discard')")
            expect(page.locator(f"#decided tr[data-draft='{first}']")).to_contain_text("discarded via dashboard")
            assert _count(env, "SELECT count(*) FROM drafts WHERE final_text = 'lmaooo yes 😭' AND decided_via = 'dashboard'") == 1

            # Import: a broken zip is one clear error, and nothing changes; a good export shows what was scrubbed.
            messages_before = _count(env, "SELECT count(*) FROM messages")
            broken = tmp_path / "package.zip"
            broken.write_bytes(b"PK\x03\x04 this is not really a zip file")
            page.click("nav >> text=Import")
            page.set_input_files("input[type=file]", str(broken))
            page.click("#upload button")
            expect(page.locator("#import-error")).to_contain_text("package.zip")
            assert _count(env, "SELECT count(*) FROM messages") == messages_before
            assert not any((Path(env["PERSONA_HOME"]) / "uploads").iterdir())  # the upload is not kept
            export = write_export(tmp_path / "upload" / "later.json", channel_id=GENERAL, channel_type="GuildTextChat", guild=GUILD, name="general",
                                  messages=[message(1300000000000000601, OWNER, "new number: +49 151 23456789, text me",
                                                    ts="2024-04-02T09:00:00+00:00")])
            page.select_option("select[name=kind]", "dce")
            page.set_input_files("input[type=file]", str(export))
            page.click("#upload button")
            expect(page.locator("#import-summary")).to_contain_text("1 new message")
            expect(page.locator("#import-summary")).not_to_contain_text("Scrubbed before storage: nothing")
            assert _count(env, "SELECT count(*) FROM messages") == messages_before + 1
            assert _count(env, "SELECT count(*) FROM messages WHERE content LIKE %s", "%23456789%") == 0
            expect(page.locator("table")).to_contain_text("1 phone")  # the run is listed with its scrub counts
            page.screenshot(path=ARTIFACTS / "import.png", full_page=True)

            # Privacy: forget the DM conversation, seeing what goes before confirming.
            page.click("nav >> text=Privacy")
            page.screenshot(path=ARTIFACTS / "privacy.png", full_page=True)
            page.click(f"tr[data-channel='{DM}'] >> text=Forget")
            expect(page.locator("#preview")).to_contain_text("2 messages")
            assert _count(env, "SELECT count(*) FROM messages WHERE content LIKE %s", f"%{CANARY}%") == 1  # the preview deleted nothing
            page.click("#confirm-forget")
            expect(page.locator("p.done")).to_contain_text("2 messages")
            for table in ("messages", "memories"):
                assert _count(env, f"SELECT count(*) FROM {table} WHERE content LIKE %s", f"%{CANARY}%") == 0
            assert _count(env, "SELECT count(*) FROM replies WHERE prompt::text LIKE %s", f"%{CANARY}%") == 0
            browser.close()
        assert errors == []  # no script, Content-Security-Policy or failed-load errors on any page
    finally:
        stderr = stop_web(web)
    assert "Traceback" not in stderr, stderr


def test_forgetting_a_memory_shows_then_deletes_its_messages_and_all_built_from_them(store: Store, embedder: Embedder, tmp_path: Path) -> None:
    """The Memory page's "forget this memory": the preview counts what the deletion does and
    deletes nothing; the deletion takes the memory's messages and every memory built from them."""
    from persona import memory
    from persona.privacy import forget
    from persona.privacy.scopes import Place

    _history(store, embedder, tmp_path / "dce")
    with store.connect() as conn:
        found = [m for m in memory.recall(conn, embedder, "what car do you drive?", asker_id=OWNER_ID, place=Place.terminal(), owner_id=OWNER_ID)
                 if CANARY in m.content]
        assert found
        target = found[0].id
        shown = forget.preview(conn, lambda c: forget.forget_memory(c, target))
        assert conn.execute("SELECT count(*) FROM memories WHERE id = %s", (target,)).fetchone()[0] == 1  # untouched
        done, _ = forget.carry_out(conn, lambda c: forget.forget_memory(c, target), None)
        assert (done.messages, done.memories) == (shown.messages, shown.memories) and done.messages >= 1
        for table in ("messages", "memories"):
            assert conn.execute(f"SELECT count(*) FROM {table} WHERE content LIKE %s", (f"%{CANARY}%",)).fetchone()[0] == 0
        assert forget.forget_memory(conn, target).messages == 0  # already gone: nothing more to do


def test_kept_aggregates_follow_every_change_to_their_tables(store: Store, embedder: Embedder, tmp_path: Path) -> None:
    """The overview's counts are kept between views, and recomputed as soon as a message is
    added or deleted (PostgreSQL's own row counters move; they are flushed within ~1 s)."""
    from persona.history import messages as stored
    from persona.privacy import forget
    from web.cache import Aggregates

    _history(store, embedder, tmp_path / "dce")
    kept, computed = Aggregates(), []

    def count(conn: psycopg.Connection) -> int:
        computed.append(1)
        return int(stored.counts(conn)["messages"])

    def settled(expected: int) -> int:
        deadline = time.monotonic() + 10
        while True:
            with store.connect() as conn:
                value = kept.get(conn, "messages", count)
            if value == expected or time.monotonic() > deadline:
                return value
            time.sleep(0.2)

    with store.connect() as conn:
        total = kept.get(conn, "messages", count)
        assert kept.get(conn, "messages", count) == total and len(computed) == 1  # nothing changed: kept
    with store.connect() as conn:
        forget.carry_out(conn, lambda c: forget.forget_channel(c, DM), None)
    assert settled(total - 2) == total - 2  # recomputed once the deletion's counters arrived


def test_the_overview_charts_count_by_month_source_and_scope(store: Store, embedder: Embedder, tmp_path: Path) -> None:
    from datetime import datetime

    from persona.history import messages as stored
    from web.charts import stacked_bars

    _history(store, embedder, tmp_path / "dce")
    with store.connect() as conn:
        rows = stored.per_month(conn)
    assert {(r.month, r.source, r.scope_kind, r.messages) for r in rows} == {(datetime(2024, 3, 1), "dce", "guild", 4), (datetime(2024, 3, 1), "dce", "dm", 2)}
    chart = str(stacked_bars([(r.month, r.scope_kind, r.messages) for r in rows], title="by scope"))
    assert chart.startswith("<svg") and chart.count("<rect") == 2 + 2 and "guild (4)" in chart and "dm (2)" in chart  # 2 bars + 2 legend keys
    assert "no messages yet" in str(stacked_bars([], title="by scope"))
