"""Shared fixtures: real servers on free ports, raw clients that clean up after themselves."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess

pytest_plugins = ["tests.postgres_fixtures"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh chat-server (flood limit on, as users run it)."""
    with ServerProcess(tmp_path) as srv:
        yield srv


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with extra flags; all are stopped at the end of the test."""
    started: list[ServerProcess] = []

    def make(*args: str, **kwargs: object) -> ServerProcess:
        srv = ServerProcess(tmp_path, *args, **kwargs)  # type: ignore[arg-type]
        started.append(srv)
        return srv.start()

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def connect(server: ServerProcess) -> Iterator[Callable[..., RawClient]]:
    """Open raw clients to ``server``; ``connect("alice")`` registers as alice."""
    clients: list[RawClient] = []

    def make(nick: str | None = None, caps: list[str] | None = None, **kw: object) -> RawClient:
        c = RawClient(server.host, server.port)
        clients.append(c)
        if nick:
            c.register(nick, caps=caps, **kw)  # type: ignore[arg-type]
        return c

    yield make
    for c in clients:
        c.close()
