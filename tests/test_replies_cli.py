"""`persona replies`: the owner reviews what was sent, the check's verdicts and the ratings."""

from __future__ import annotations

import json
from pathlib import Path

from persona import replies
from persona.storage.db import Database
from persona.storage.store import Store
from tests.test_cli import assert_one_line_error, run

FRIEND, OTHER = 501, 502


def _logged(store: Store) -> dict[str, int]:
    def reply(text: str, asked: str, asker: int, channel: int, verdict: dict | None) -> replies.LoggedReply:
        return replies.LoggedReply(scope=f"dm:{asker}", prompt=[{"role": "system", "content": "you are june"},
                                                                  {"role": "user", "content": f"earlier line\nfriend: {asked}"}],
                                   completion=text, memory_ids=[7], adapter_version=None, base_model="tiny", latency_ms=321,
                                   asker_id=asker, channel_id=channel, evidence=[{"memory_id": 7, "text": "my cat miso", "score": 0.8}],
                                   verdict=verdict)

    with store.connect() as conn:
        ids = {
            "supported": replies.log_reply(conn, reply("my cat is miso", "what's your cat called?", FRIEND, 10,
                                                       {"outcome": "supported", "claim": "my cat is miso", "sentence": "my cat miso",
                                                        "memory_ids": [7]})),
            "contradicted": replies.log_reply(conn, reply("her name is klomba", "what's your cat called?", FRIEND, 10,
                                                          {"outcome": "contradicted", "claim": "her name is klomba",
                                                           "sentence": "my cat miso turned four", "memory_ids": [7]})),
            "unchecked": replies.log_reply(conn, reply("not sure tbh", "what car do you drive?", OTHER, 11, None)),
        }
        replies.record_feedback(conn, message_id=None, channel_id=10, rater_id=FRIEND, rating=-1, via="reaction")  # the latest in 10
        conn.commit()
    return ids


def test_replies_list_filters_and_show(persona_exe: Path, store: Store, database: Database) -> None:
    ids = _logged(store)
    env = {"DATABASE_URL": database.url}

    def listed(*args: str) -> list[dict]:
        result = run(persona_exe, "replies", "list", "--json", *args, env=env)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    every = listed()
    assert [r["id"] for r in every] == sorted(ids.values(), reverse=True)  # newest first
    assert every[-1]["asked"] == "friend: what's your cat called?" and every[-1]["outcome"] == "supported"
    assert [r["id"] for r in listed("--down")] == [ids["contradicted"]] and listed("--up") == []
    assert [r["outcome"] for r in listed("--verdict", "failed")] == ["contradicted"]
    assert [r["id"] for r in listed("--verdict", "unchecked,supported")] == [ids["unchecked"], ids["supported"]]
    assert [r["id"] for r in listed("--as", str(OTHER))] == [ids["unchecked"]]
    assert [r["id"] for r in listed("--channel", "10", "--limit", "1")] == [ids["contradicted"]]
    assert [r["id"] for r in listed("--before", str(ids["contradicted"]))] == [ids["supported"]]

    shown = run(persona_exe, "replies", "show", str(ids["contradicted"]), env=env)
    assert shown.returncode == 0, shown.stderr
    assert "check: contradicted" in shown.stdout and "klomba" in shown.stdout and "my cat miso turned four" in shown.stdout
    assert "you are june" in shown.stdout and "👎 1" in shown.stdout  # the prompt snapshot and the rating
    table = run(persona_exe, "replies", "list", "--verdict", "failed", env=env)
    assert table.returncode == 0 and "contradicted" in table.stdout and "miso" not in table.stdout.replace("klomba", "")

    assert_one_line_error(run(persona_exe, "replies", "show", "999999", env=env), 1, "no reply 999999")
    assert_one_line_error(run(persona_exe, "replies", "list", "--verdict", "wrong", env=env), 2, "--verdict wrong")
