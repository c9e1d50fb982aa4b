"""Accounts on a real chat-server for tests: made with ``chat-server account add``, as an
operator would, before the server starts (tests of chat_protocol, chat-tui, chat-bot)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.sasl import add_account as run_account_add
from tests.support.servers import ServerProcess, free_port


def add_account(db: Path, name: str, password: str) -> None:
    """``chat-server account add NAME --db DB`` with the password on stdin."""
    done = run_account_add(db, name, password)
    if done.returncode != 0:
        raise AssertionError(f"account add {name} failed: {done.stderr.strip()}")


AccountServer = Callable[..., ServerProcess]


@pytest.fixture
def account_server(tmp_path: Path) -> Iterator[AccountServer]:
    """``account_server(alice="pw", ...)``: a running chat-server that has these accounts."""
    started: list[ServerProcess] = []

    def start(*args: str, **accounts: str) -> ServerProcess:
        port = free_port()
        db = tmp_path / f"history-{port}.db"
        for name, password in accounts.items():
            add_account(db, name, password)
        srv = ServerProcess(tmp_path, *args, port=port, history_db=db)
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()
