"""The PostgreSQL test server itself: it stores data, keeps it across restarts and
crashes, and a paused server hangs its clients until it is resumed."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres_server import PostgresProcess, child_pids


def query_one(url: str, query: str, timeout: int = 10) -> object:
    with psycopg.connect(url, connect_timeout=timeout) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def alive(pid: int) -> bool:
    """Running or stopped, not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_fresh_database_stores_rows(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE messages (id serial PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO messages (body) VALUES (%s), (%s)", ("hello", "wörld"))
    with psycopg.connect(postgres_url, connect_timeout=10) as conn:
        rows = conn.execute("SELECT body FROM messages ORDER BY id").fetchall()
        assert rows == [("hello",), ("wörld",)]
        assert conn.info.encoding == "utf-8"


def test_each_database_is_separate(postgres_process: PostgresProcess) -> None:
    first = postgres_process.database(f"sep_a_{os.getpid()}")
    second = postgres_process.database(f"sep_b_{os.getpid()}")
    try:
        with psycopg.connect(first, connect_timeout=10) as conn:
            conn.execute("CREATE TABLE only_here (x int)")
        assert query_one(second, "SELECT to_regclass('only_here') IS NULL") is True
        assert query_one(first, "SELECT to_regclass('only_here') IS NULL") is False
    finally:
        postgres_process.drop_database(f"sep_a_{os.getpid()}")
        postgres_process.drop_database(f"sep_b_{os.getpid()}")


def test_runs_unprivileged(postgres_process: PostgresProcess) -> None:
    # PostgreSQL refuses root; under root we must have dropped to another user.
    assert postgres_process.pid is not None
    uid = os.stat(f"/proc/{postgres_process.pid}").st_uid
    assert uid != 0
    owner = postgres_process.owner
    assert uid == (owner[0] if owner is not None else os.geteuid())


def test_database_rejects_odd_names(postgres_process: PostgresProcess) -> None:
    with pytest.raises(ValueError):
        postgres_process.database("Robert'); DROP TABLE students;--")


def test_stop_and_start_keep_data(private_postgres: PostgresProcess) -> None:
    pg = private_postgres
    url = pg.database("keep")
    with psycopg.connect(url, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE t AS SELECT 42 AS answer")
    port = pg.port
    assert pg.stop() == 0
    assert not pg.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    pg.start()
    assert pg.port == port
    assert query_one(url, "SELECT answer FROM t") == 42
    # One log, appended across the restart.
    assert pg.log_file is not None
    assert pg.log_file.read_text().count("ready to accept connections") == 2


def test_kill_takes_every_process_and_data_survives(private_postgres: PostgresProcess) -> None:
    pg = private_postgres
    url = pg.database("crash")
    with psycopg.connect(url, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE t AS SELECT 'committed' AS state")
    survivor = psycopg.connect(url, connect_timeout=10)  # its backend must die too
    assert pg.pid is not None
    children = child_pids(pg.pid)
    assert children, "a running postmaster has background workers"
    assert pg.kill() == -9
    assert [pid for pid in children if alive(pid)] == []
    with pytest.raises(psycopg.OperationalError):
        survivor.execute("SELECT 1")
    survivor.close()
    pg.start()  # crash recovery on the same data directory
    assert query_one(url, "SELECT state FROM t") == "committed"


def test_pause_hangs_clients_until_resume(private_postgres: PostgresProcess) -> None:
    pg = private_postgres
    url = pg.database("hang")
    session = psycopg.connect(url, connect_timeout=10, autocommit=True)
    pg.pause()
    try:
        assert pg.paused
        # A new connection gets no answer: the kernel accepts, nobody speaks.
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=1)
        # An open session's query hangs: its backend is stopped too.
        result: list[object] = []
        worker = threading.Thread(
            target=lambda: result.append(session.execute("SELECT 7").fetchone()), daemon=True
        )
        worker.start()
        worker.join(1.0)
        assert worker.is_alive() and not result
    finally:
        pg.resume()
    assert not pg.paused
    worker.join(10.0)
    assert result == [(7,)]
    assert query_one(url, "SELECT 8", timeout=5) == 8
    session.close()
