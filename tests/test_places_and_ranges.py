"""The one parser of forget ranges (persona/privacy/requests.py) and of ids → places
(persona/history/places.py) that the CLI, the bot and the dashboard share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from persona.errors import ConfigError, PersonaError
from persona.history.places import place_of_ids
from persona.privacy.requests import moment, time_range
from persona.privacy.scopes import Place
from persona.storage.store import Store


def test_a_moment_without_an_offset_is_utc_and_an_offset_is_kept() -> None:
    assert moment("2021-06-01") == datetime(2021, 6, 1, tzinfo=UTC)
    assert moment("2021-06-01T18:00") == datetime(2021, 6, 1, 18, tzinfo=UTC)
    assert moment("2021-06-01T18:00+02:00") == datetime(2021, 6, 1, 16, tzinfo=UTC)  # converted, not overwritten
    assert moment(" 2021-06-01T18:00:00Z ") == datetime(2021, 6, 1, 18, tzinfo=UTC)
    assert moment(datetime(2021, 6, 1, 18)) == datetime(2021, 6, 1, 18, tzinfo=UTC)  # typer's naive datetimes too


def test_a_range_must_go_forwards_and_bad_dates_are_one_line() -> None:
    assert time_range("2021-06-01", "2021-06-02") == (datetime(2021, 6, 1, tzinfo=UTC), datetime(2021, 6, 2, tzinfo=UTC))
    with pytest.raises(PersonaError, match=r"^the end \(2021-06-01 00:00 UTC\) must come after the start \(2021-06-01 00:00 UTC\)$"):
        time_range("2021-06-01", "2021-06-01")
    with pytest.raises(PersonaError, match=r"^'june' is not a date: use dates such as 2021-06-01"):
        time_range("june", "2021-06-01")
    # 12:00 at +02:00 is 10:00 UTC, before 11:00 UTC: a parser that overwrote the offset would refuse it
    assert time_range("2021-06-01T12:00+02:00", "2021-06-01T11:00")[0] == datetime(2021, 6, 1, 10, tzinfo=UTC)


def test_ids_become_places_from_the_stored_channels(store: Store) -> None:
    with store.connect() as conn:
        conn.execute("INSERT INTO channels (id, kind, name, guild_id, scope) VALUES (7, 'guild_text', 'general', 5, 'guild:5'), "
                     "(8, 'dm', NULL, NULL, 'dm:42'), (9, 'notes', 'journal', NULL, 'private')")
        assert place_of_ids(conn, 7, None) == Place.guild(5, 7)
        assert place_of_ids(conn, 8, None) == Place.dm(8)
        assert place_of_ids(conn, None, 5) == Place(kind="guild", guild_id=5)
        assert place_of_ids(conn, None, None) == Place.dm()
        assert place_of_ids(conn, None, None, default=Place.terminal()) == Place.terminal()
        assert place_of_ids(conn, 70, 5) == Place.guild(5, 70)  # not stored yet, with its server
        with pytest.raises(ConfigError, match="--channel 70 is not a channel persona knows: add --guild GUILD_ID"):
            place_of_ids(conn, 70, None)
        with pytest.raises(ConfigError, match="channel 9 has no known server: add --guild GUILD_ID"):
            place_of_ids(conn, 9, None)
