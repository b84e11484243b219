"""The SDK's outer shape: a connector opens its session on first use and hands streams a way to it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from connectors.sdk import (
    AuthError,
    Connector,
    ConnectorConfig,
    Cursor,
    FatalError,
    Normalised,
    SourceItem,
    Stream,
)
from connectors.sdk.base import StreamOutput

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CURSOR = Cursor(None, NOW, NOW - timedelta(days=1))


class _Session:
    """Stands for a vendor client: it knows whether it was released."""

    def __init__(self) -> None:
        self.closed = False


@dataclass(frozen=True, kw_only=True)
class _Config(ConnectorConfig):
    limit: int = 1

    def problems(self) -> list[tuple[str, str]]:
        return [("limit", f"must be at least 1, got {self.limit}")] if self.limit < 1 else []


class _Reads(Stream[_Config, _Session]):
    name = "reads"
    kinds = frozenset({"access_log"})

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        yield SourceItem("k", cursor.ceiling, b"{}", self.session())

    def normalise(self, item: SourceItem) -> Normalised:
        return Normalised("access_log", None, None, {})


class _Writes(_Reads):
    name = "writes"


class _Counting(Connector[_Config, _Session]):
    """Counts the sessions it opens; ``refuse`` makes that many opens fail first."""

    name = "counting"
    config_type = _Config
    stream_types = (_Reads, _Writes)

    def __init__(self, config: _Config, refuse: int = 0) -> None:
        super().__init__(config)
        self.opened: list[_Session] = []
        self.refuse = refuse

    def open_session(self) -> _Session:
        if self.refuse:
            self.refuse -= 1
            raise AuthError(self.name, "refused", "TOKEN")
        self.opened.append(_Session())
        return self.opened[-1]

    def close_session(self, session: _Session) -> None:
        assert not session.closed, "a session is released once"
        session.closed = True


def _session_of(stream: Stream[_Config, _Session]) -> _Session:
    [item] = list(stream.fetch(CURSOR))
    assert isinstance(item, SourceItem)
    session: _Session = item.obj
    return session


def test_declaring_building_and_checking_streams_opens_no_session() -> None:
    """Listing, building and checking streams costs no client: the session opens at the first fetch."""
    connector = _Counting(_Config())
    assert connector.stream_ids() == ("counting.reads", "counting.writes")
    streams = [connector.stream(name) for name in connector.stream_names()]
    connector.check()
    assert connector.opened == []
    _session_of(streams[0])
    assert len(connector.opened) == 1


def test_streams_share_one_session_until_close() -> None:
    """Every stream of a connector reads through the one session; close releases it once, and the
    next fetch opens a new one."""
    connector = _Counting(_Config())
    first = _session_of(connector.stream("reads"))
    assert _session_of(connector.stream("writes")) is first
    connector.close()
    connector.close()
    assert first.closed
    again = _session_of(connector.stream("reads"))
    assert again is not first and not again.closed
    assert connector.opened == [first, again]


def test_a_session_that_fails_to_open_is_not_kept() -> None:
    """A failed open raises the connector's error and leaves nothing cached: the next call opens again."""
    connector = _Counting(_Config(), refuse=1)
    with pytest.raises(AuthError):
        connector.session()
    assert connector.session() is connector.opened[0]
    connector.close()


def test_a_stream_names_its_connector_without_holding_it() -> None:
    """A stream's ID is ``<connector>.<stream>``, and nothing the stream holds is its connector."""
    connector = _Counting(_Config())
    stream = connector.stream("writes")
    assert stream.id == "counting.writes"
    assert not any(isinstance(value, Connector) for value in vars(stream).values())
    with pytest.raises(KeyError, match="no stream 'deletes'"):
        connector.stream("deletes")


def test_a_config_problem_fails_the_check_naming_its_key() -> None:
    """A config reports no problems unless its connector declares some; check refuses the first by key."""
    assert ConnectorConfig().problems() == []
    with pytest.raises(FatalError, match=r"^counting: connectors\.counting\.limit: must be at least 1, got 0$"):
        _Counting(_Config(limit=0)).check()
