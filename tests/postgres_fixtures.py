"""PostgreSQL fixtures, registered by tests/conftest.py as a plugin.

One server per pytest session (per xdist worker), one fresh database per test: creating
a database takes milliseconds, starting a server a second or so.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres_server import PostgresProcess, postgres_bindir

_NO_POSTGRES = "PostgreSQL is not installed (scripts/test installs the postgresql package)"
_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresProcess]:
    """This worker's shared server. Tests must not stop, kill or pause it (others use
    it too): use ``private_postgres`` for that."""
    if postgres_bindir() is None:
        pytest.skip(_NO_POSTGRES)
    with PostgresProcess(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_process: PostgresProcess) -> Iterator[str]:
    """The URL of a fresh, empty database on the shared server; dropped afterwards so a
    long run does not fill the disk with copies of template1."""
    name = f"test_{os.getpid()}_{next(_databases)}"
    url = postgres_process.database(name)
    yield url
    if postgres_process.running and not postgres_process.paused:
        postgres_process.drop_database(name)


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PostgresProcess]:
    """A server of the test's own, for outage tests: stop, start, kill, pause, resume."""
    if postgres_bindir() is None:
        pytest.skip(_NO_POSTGRES)
    with PostgresProcess(tmp_path / "postgres") as server:
        yield server
