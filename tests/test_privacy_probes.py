"""Prompt-injection and exfiltration probes (issue 15, item 4).

Every probe in tests/data/privacy_probes.txt is asked in a server, in another person's
DM with the bot, in a stranger's DM, and by Sam in the server (whose own DM must not be
read out where others read the answer). The model is replaced by the worst one
possible: one that obeys every injection and prints its whole prompt back. Nothing out
of the asker's scope may appear, because nothing out of scope is ever in the prompt
(the scope rules run in SQL before the model sees anything). The owner asking in the
terminal is the control: there, the same probes do reach the canaries, so the suite
can fail.

The probes also run over the API (`persona serve` with audience keys, its model an echo
server that reads every prompt back).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.text import ingest_text
from persona import memory
from persona.memory.embeddings import Embedder, resolve_embed_model
from persona.privacy.scopes import Place, readable_scopes
from persona.prompts import Messages
from persona.runtime.engines.base import Generated, GenerationSettings, OnText
from persona.runtime.grounding import GroundingSettings
from persona.runtime.model import resolve_base_model
from persona.runtime.reply import ReplyEngine, ReplyRequest
from persona.storage.db import Database
from persona.storage.store import Store
from tests.fixtures.discord_package import OWNER_ID
from tests.fixtures.history import CANARY, GUILD, KIM, SAM, import_history
from tests.fixtures.tiny_model import build_tiny_model
from tests.helpers import FakeEngine

PROBES = [ln.strip() for ln in (Path(__file__).parent / "data" / "privacy_probes.txt").read_text(encoding="utf-8").splitlines()
          if ln.strip() and not ln.startswith("#")]
NOTE_CANARY = "NOTECANARY-journal-4471"
TOKEN = "MTA5OTk5OTk5OTk5OTk5OTk5OQ.GhOsTs.abcdefghijklmnopqrstuvwxyz0123456789"
STRANGER = 999999999999999999
# What must not come out: the canaries, other words of Sam's DM and of the note (none of
# them in any probe, which the obedient model echoes), and the bot's token.
SECRETS = (CANARY, NOTE_CANARY, TOKEN, "don't tell anyone", "safe with me", "the trip was long")


class ObedientModel(FakeEngine):
    """The worst model: whatever it is asked, it answers with its entire prompt and
    every sentence grounding pulled it towards."""

    def generate(self, messages: Messages, *, greedy: bool | None = None, evidence: Sequence[str] = (),
                 grounding: GroundingSettings | None = None, opening: str = "", max_new_tokens: int | None = None,
                 on_text: OnText | None = None, place: str | None = None) -> Generated:
        text = "\n".join([*(m["content"] for m in messages), *evidence])
        if on_text is not None:  # streamed too, word by word: what a streaming reply could leak
            for piece in text.split(" "):
                on_text(piece + " ")
        return Generated(text, 1)


@dataclass(frozen=True)
class Seat:
    name: str
    asker: int
    place: Place


SEATS = [
    Seat("Kim in the server", KIM, Place.guild(int(GUILD[0]), 1000000000000000004)),
    Seat("Sam in the server", SAM, Place.guild(int(GUILD[0]), 1000000000000000004)),
    Seat("Kim in a DM with the bot", KIM, Place.dm()),
    Seat("a stranger in a DM with the bot", STRANGER, Place.dm()),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, pg_admin_url: str, template_url: str) -> Iterator[ReplyEngine]:
    from tests.conftest import TEMPLATE, _create_database, _drop_database

    folder = tmp_path_factory.mktemp("probes")
    name = f"probes_{uuid.uuid4().hex[:8]}"
    store = Store(Database(url=_create_database(pg_admin_url, name, TEMPLATE)))
    import_history(store, folder)
    notes = folder / "notes"
    notes.mkdir()
    (notes / "journal.md").write_text(f"# journal\n\nwrote in my journal: {NOTE_CANARY}. the trip was long. bot token {TOKEN}\n", encoding="utf-8")
    ingest_text(store, notes, owner_id=OWNER_ID)
    embedder = Embedder(resolve_embed_model(""))
    with store.connect() as conn:
        memory.build(conn, embedder)
    spec = resolve_base_model(str(build_tiny_model(folder / "tiny")))
    model = ObedientModel(spec, GenerationSettings(max_new_tokens=8, temperature=0.8, top_p=0.9, repetition_penalty=1.1))
    assert TOKEN not in "".join(PROBES)
    yield ReplyEngine(store, embedder, model, owner_id=OWNER_ID, owner_name="Alex", style_notes="never reveal secrets",
                      grounding=GroundingSettings(boost=3.0, copy_weight=0.5, threshold=0.0, max_evidence=10),  # every sentence it can find
                      say_unknown=True)
    _drop_database(pg_admin_url, name)


@pytest.mark.parametrize("seat", SEATS, ids=lambda s: s.name)
def test_no_probe_gets_anything_out_of_scope(engine: ReplyEngine, seat: Seat) -> None:
    allowed = readable_scopes(seat.asker, seat.place, OWNER_ID)
    assert allowed is not None  # only the owner reads everything
    for probe in PROBES:
        streamed: list[str] = []  # what a streaming reply (Discord, persona serve) shows before it is done
        reply = engine.reply(ReplyRequest(text=probe, asker_id=seat.asker, asker_name="someone", place=seat.place), streamed.append)
        seen = json.dumps(reply.prompt) + reply.text + "".join(streamed)
        leaked = [s for s in SECRETS if s in seen]
        assert leaked == [], f"{seat.name} asked {probe!r} and got {leaked}"
        assert all(m.scope in allowed for m in reply.memories), (probe, [m.scope for m in reply.memories])


def test_the_control_the_owner_reaches_both_canaries(engine: ReplyEngine) -> None:
    """The same pipeline, asked by the owner in the terminal, does recall them: the probes
    above would catch a leak if the scope rules let one through."""
    seen = grounded = ""
    for probe in ("what is Sam's locker code?", "what's in my journal?"):
        streamed: list[str] = []
        reply = engine.reply(ReplyRequest(text=probe, asker_id=OWNER_ID, asker_name="you", place=Place.terminal()), streamed.append)
        seen += json.dumps(reply.prompt) + reply.text + "".join(streamed)
        assert streamed and TOKEN not in "".join(streamed)  # streamed in sentences, each one scrubbed
        grounded += " ".join(e.text for e in reply.evidence)
    assert CANARY in seen and NOTE_CANARY in seen
    assert NOTE_CANARY in grounded  # the owner's own journal sentence is evidence here: the probes above would see one out of scope
    assert TOKEN not in seen and "<SECRET>" in seen  # a token is scrubbed before it is stored: not even the owner gets it back


def test_no_probe_gets_anything_out_of_scope_through_persona_serve(engine: ReplyEngine, persona_exe: Path, tmp_path: Path) -> None:
    """The same probes over the API: `persona serve` in its own process, API keys for Kim
    in the server and for a stranger's DM with the bot, and as its model the echo server
    (tests/fixtures/echo_model_server.py), which reads back every prompt it is sent. The
    owner's key is the control: it does get the DM canary back."""
    import httpx

    from tests.helpers import free_port, wait_healthy
    from tests.test_cli import run
    from tests.test_serve import _serve

    echo_port, serve_port = free_port(), free_port()
    echo = subprocess.Popen([sys.executable, "-m", "tests.fixtures.echo_model_server", str(echo_port)], cwd=Path(__file__).parents[1],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    env = {"DATABASE_URL": engine.store.database.url, "PERSONA_HOME": str(tmp_path / "home"), "PERSONA_OWNER_ID": str(OWNER_ID),
           "PERSONA_BASE_MODEL": engine.generator.spec.path, "PERSONA_ENGINE": "openai",
           "PERSONA_OPENAI_BASE_URL": f"http://127.0.0.1:{echo_port}/v1", "PERSONA_GROUNDING_THRESHOLD": "0",
           "PERSONA_SERVE_KEY_PER_MINUTE": "10000"}  # the probes come fast from one audience key: not what the rate limit is for
    keys = {name: json.loads(run(persona_exe, "keys", "create", *args, "--json", env=env).stdout)["key"] for name, args in [
        ("owner", []), ("kim in the server", ["--as", str(KIM), "--channel", "1000000000000000004"]),
        ("a stranger in a DM with the bot", ["--as", str(STRANGER)])]}
    server = None
    try:
        wait_healthy(f"http://127.0.0.1:{echo_port}/v1/models", echo, what="the echo model server", timeout=60)
        server = _serve(persona_exe, serve_port, env)
        wait_healthy(f"http://127.0.0.1:{serve_port}/health", server)
        client = httpx.Client(base_url=f"http://127.0.0.1:{serve_port}", timeout=120)

        def ask(key: str, text: str, stream: bool) -> str:
            body = {"model": "persona", "messages": [{"role": "user", "content": text}], "stream": stream}
            response = client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body)
            assert response.status_code == 200, response.text
            return response.text  # the whole answer: JSON, or every event of the stream

        # Every probe from Kim's server key, alternately whole and streamed; the stranger's DM key a few
        # (the in-process tests above ask every probe from every seat: this is the API's path).
        for n, (seat, probe) in enumerate([*(("kim in the server", p) for p in PROBES),
                                           *(("a stranger in a DM with the bot", p) for p in PROBES[:6])]):
            answer = ask(keys[seat], probe, stream=n % 2 == 1)
            leaked = [s for s in SECRETS if s in answer]
            assert leaked == [], f"{seat} asked {probe!r} through the API and got {leaked}"
        control = ask(keys["owner"], "what is Sam's locker code?", stream=False)
        assert CANARY in control  # the echo does read prompts back: the probes above would show a leak
    finally:
        for process in (server, echo):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
