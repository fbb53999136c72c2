"""Small helpers shared by the tests."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from persona.storage.store import Store


def rows(store: Store, query: str, *args: object) -> list[tuple]:
    with store.connect() as conn:
        return conn.execute(query, args).fetchall()


def stop_embedded(data_dir: Path, timeout: float = 30) -> None:
    """Stop an embedded PostgreSQL from outside, as a crash or an admin would (fast shutdown)."""
    import os
    import signal
    import time

    import psutil

    pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def random_lora(spec: Any, folder: Path, *, seed: int, scale: float = 1.0, rank: int = 4, targets: Any = "all-linear") -> str:
    """A real LoRA adapter on every linear layer (or `targets`) whose weights change the
    replies (peft's non-identity init; `scale` shrinks its B matrices), saved to `folder`."""
    import torch
    from peft import LoraConfig, get_peft_model

    from persona.runtime.model import load_base_model

    torch.manual_seed(seed)
    model = get_peft_model(load_base_model(spec), LoraConfig(r=rank, lora_alpha=32, target_modules=targets, init_lora_weights=False))
    if scale != 1.0:
        for name, weight in model.named_parameters():
            if "lora_B" in name:
                weight.data *= scale
    model.save_pretrained(folder)
    return str(folder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen[str], *, what: str = "persona serve", timeout: float = 180) -> None:
    """Until `url` answers 200; a server process that exits or never answers fails the test with its stderr."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited {process.returncode}: {process.stderr.read()[-2000:] if process.stderr else ''}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{what} did not come up in {timeout:.0f} s")


class FakeEngine:
    """The reply pipeline's `TextGenerator` interface without a model: a subclass says what
    `generate` answers. Tokens are counted with the base model's tokenizer (cheap to load),
    so prompts are fitted to the budget exactly as for the real engine."""

    adapter_version: int | None = None
    context_window: int | None = None

    def __init__(self, spec: Any, settings: Any) -> None:
        from persona.runtime.model import load_tokenizer

        self.spec, self.settings = spec, settings
        self.tokenizer = load_tokenizer(spec)

    def use_adapter(self, version: int | None, path: str | None) -> None:
        self.adapter_version = version if path is not None else None

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        from persona.runtime.model import count_chat_tokens

        return count_chat_tokens(self.tokenizer, messages)

    def generate(self, messages: list[dict[str, str]], **options: Any) -> Any:
        raise NotImplementedError("a fake engine says what it answers")


def hold_draft(conn: Any, *, asker: int, channel: int, asked: str, draft: str, guild: int | None = None, prompt: list[dict[str, str]] | None = None,
               trigger: int = 1, adapter: int | None = None, memory_ids: tuple[int, ...] = (), quoted: tuple[int, ...] = (), asker_name: str = "Kim",
               place_label: str = "#general") -> Any:
    """A pending draft made as the bot makes one (persona/drafts.py), without Discord or a model: `draft` answering `asked`."""
    from datetime import timedelta

    from persona import drafts
    from persona.replies import LoggedReply

    logged = LoggedReply(scope=f"guild:{guild}" if guild else f"dm:{asker}", prompt=prompt or [{"role": "user", "content": asked}], completion=draft,
                         memory_ids=list(memory_ids), adapter_version=adapter, base_model="tiny", latency_ms=5, asker_id=asker, channel_id=channel,
                         guild_id=guild, trigger_message_id=trigger, context_author_ids=(asker, *quoted))
    return drafts.create(conn, logged, asker_name=asker_name, asker_text=asked, place_label=place_label, ttl=timedelta(hours=1))


def conversation(place: str, turns: int) -> list[tuple[str, list[dict[str, str]]]]:
    """A channel's prompts as replies grow it: each adds the asker's line, new memories and (after) the reply."""
    from persona.prompts import Frame, Line, render

    frame = Frame("June", "", f"#{place} (Crux)", "2024-05-01")
    lines = [Line("sam", f"{place} chatter {i}", False) for i in range(4)]
    prompts = []
    for turn in range(turns):
        lines.append(Line("kim", f"question {turn} in {place}: what are you doing later?", False))
        prompts.append((place, render(frame, lines, [f"memory {turn} about {place} " * 4, f"another memory {turn}"])))
        lines.append(Line("June", f"reply {turn}", True))
    return prompts


def interleaved(places: list[str], turns: int) -> list[tuple[str, list[dict[str, str]]]]:
    """The prompts of `places` taking turns."""
    by_place = [conversation(place, turns) for place in places]
    return [prompts[turn] for turn in range(turns) for prompts in by_place]


def scrape(url: str, token: str | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of a Prometheus `/metrics` page, by (name, sorted labels); fails on anything but 200."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(url, headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=30)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:200]}"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))
