"""A cluster's history in PostgreSQL (issue 18, defect 3): durable, uncapped, the same
on every node, and what a PostgreSQL outage does to users.

Each node here keeps only 100 messages of a conversation in memory (``--history-cache``
and ``--chathistory-max``), so 400 messages are four times what memory alone answered:
before, nodes paged back 1,000 or 1,051 of 2,500 and references to trimmed messages
gave empty batches.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from chat_protocol import Message
from tests.cluster.conftest import Cluster, wait_for
from tests.support.postgres_server import PostgresProcess
from tests.support.rawclient import RawClient
from tests.support.redis_server import RedisProcess

SMALL = ("--history-cache", "100", "--chathistory-max", "100")
COUNT = 400


def page(client: RawClient, line: str, token: str) -> tuple[list[Message], list[Message]]:
    """A CHATHISTORY answer: (its PRIVMSGs, its FAILs)."""
    got = client.answer("CHATHISTORY " + line, token)
    return [m for m in got if m.command == "PRIVMSG"], [m for m in got if m.command == "FAIL"]


def page_back(client: RawClient, room: str) -> list[str]:
    """Every message of ``room``, oldest first, read 100 at a time with BEFORE msgid."""
    texts: list[str] = []
    ref = "*"
    for n in range(COUNT // 100 + 2):
        line = f"LATEST {room} * 100" if ref == "*" else f"BEFORE {room} msgid={ref} 100"
        messages, fails = page(client, line, f"p{n}")
        assert not fails, fails
        if not messages:
            return texts
        texts = [m.param(1) for m in messages] + texts
        ref = messages[0].tags["msgid"]
    raise AssertionError("paging did not end")


def say(sender: RawClient, room: str, count: int, prefix: str = "m") -> list[Message]:
    """Send ``count`` messages and wait for their echoes."""
    for i in range(count):
        sender.send(f"PRIVMSG {room} :{prefix}{i:04d}")
    return [sender.expect("PRIVMSG", timeout=20) for _ in range(count)]


@pytest.fixture
def pg_cluster(tmp_path: Path, redis_server: RedisProcess, postgres_url: str) -> Cluster:
    return Cluster(tmp_path, redis_server, "--history-postgres", postgres_url, *SMALL)


def test_history_past_the_memory_cache_is_complete_and_the_same_on_every_node(
    pg_cluster: Cluster, postgres_url: str
) -> None:
    cluster = pg_cluster
    try:
        alice, bob = cluster.pair("#big")
        echoes = say(alice, "#big", COUNT)
        texts = [m.param(1) for m in echoes]
        ids = [m.tags["msgid"] for m in echoes]
        for _ in range(COUNT):  # bob got them all live too, before anyone asks
            bob.expect("PRIVMSG", timeout=20)

        assert page_back(alice, "#big") == texts
        assert page_back(bob, "#big") == texts
        # References to messages far older than any node's memory.
        got, _ = page(bob, f"AFTER #big msgid={ids[0]} 100", "after")
        assert [m.param(1) for m in got] == texts[1:101]
        got, _ = page(alice, f"AROUND #big msgid={ids[10]} 5", "around")
        assert [m.param(1) for m in got] == texts[8:13]
        got, _ = page(bob, f"BETWEEN #big msgid={ids[0]} msgid={ids[3]} 100", "between")
        assert [m.param(1) for m in got] == texts[1:3]
        before_all = echoes[0].tags["time"]
        got, _ = page(alice, f"AFTER #big timestamp={before_all} 100", "time")
        assert [m.param(1) for m in got] == [t for t, m in zip(texts, echoes, strict=True)
                                             if m.tags["time"] > before_all][:100]  # fmt: skip
        # A msgid that names nothing is an error, on every node.
        for client in (alice, bob):
            _, fails = page(client, "BEFORE #big msgid=1-1 10", "unknown")
            assert [f.params[:2] for f in fails] == [["CHATHISTORY", "UNKNOWN_MSGID"]]

        # A node started now reads everything from the database, not from Redis.
        cluster.node("c")
        carol = cluster.client("c", "carol")
        carol.join("#big")
        carol.expect("BATCH")  # the join replay, loaded from the database
        replay = [m.param(1) for m in carol.collect_until("BATCH") if m.command == "PRIVMSG"]
        assert replay == texts[-50:]
        assert page_back(carol, "#big") == texts

        # One row per message although three nodes wrote them; readable with psql.
        with psycopg.connect(postgres_url) as db:
            rows = db.execute(
                "SELECT count(*), count(DISTINCT msgid), min(text), max(text) FROM message_log"
                " WHERE conversation = '#big'"
            ).fetchone()
        assert rows == (COUNT, COUNT, texts[0], texts[-1])
    finally:
        cluster.close()


def test_history_outlives_every_node(pg_cluster: Cluster) -> None:
    """Stop the whole cluster and start a new one: the history is all there (in-memory
    history died with the last node)."""
    cluster = pg_cluster
    try:
        cluster.node("a")
        alice = cluster.client("a", "alice")
        alice.join("#keep")
        texts = [m.param(1) for m in say(alice, "#keep", 150)]
        alice.close()
        assert cluster.nodes.pop("a").stop() == 0
        cluster.node("a2")
        again = cluster.client("a2", "alice")
        again.join("#keep")
        again.expect("BATCH")
        replay = again.collect_until("BATCH")
        assert [m.param(1) for m in replay if m.command == "PRIVMSG"] == texts[-50:]
        assert page_back(again, "#keep") == texts
    finally:
        cluster.close()


def test_a_postgres_outage_costs_history_queries_not_messages(
    tmp_path: Path, redis_server: RedisProcess, private_postgres: PostgresProcess
) -> None:
    """While PostgreSQL is down, messages flow as ever and CHATHISTORY fails with
    MESSAGE_ERROR; when it is back, what was said meanwhile is in the history."""
    url = private_postgres.database("chat")
    cluster = Cluster(tmp_path, redis_server, "--history-postgres", url, *SMALL)
    try:
        alice, bob = cluster.pair("#o")
        before = [m.param(1) for m in say(alice, "#o", 5, "before")]
        assert [bob.expect("PRIVMSG").param(1) for _ in range(5)] == before
        private_postgres.stop()

        during = [m.param(1) for m in say(bob, "#o", 5, "during")]
        assert [alice.expect("PRIVMSG").param(1) for _ in range(5)] == during  # live as ever
        _, fails = page(alice, "LATEST #o * 50", "down")
        assert [f.params[:2] for f in fails] == [["CHATHISTORY", "MESSAGE_ERROR"]]
        cluster.nodes["a"].wait_log("history: ", timeout=15)  # "... (retrying)"

        private_postgres.start()

        def whole() -> bool:
            got, fails = page(bob, "LATEST #o * 50", "up")
            return not fails and [m.param(1) for m in got] == before + during

        wait_for(whole, timeout=20, what="the outage's messages in the history")
        for node in cluster.nodes.values():
            assert "Traceback" not in "\n".join(node.log)
    finally:
        cluster.close()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--redis", "redis://127.0.0.1:1/0", "--node-id", "a", "--history-db", "x.db"],
         "--history-db is a single server's SQLite file"),
        (["--history-postgres", "postgresql://127.0.0.1/chat"], "redis"),
        (["--redis", "redis://127.0.0.1:1/0", "--node-id", "a", "--history-postgres", "mysql://x"],
         "must be a postgresql:// URL"),
    ],
)  # fmt: skip
def test_history_flags_that_cannot_work_are_refused(args: list[str], error: str) -> None:
    res = subprocess.run([sys.executable, "-m", "chat_server", *args], capture_output=True,
                         text=True, timeout=30)  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert error in res.stderr and "Traceback" not in res.stderr


def test_a_node_starts_while_postgres_is_down_and_catches_up(
    tmp_path: Path, redis_server: RedisProcess, private_postgres: PostgresProcess
) -> None:
    """PostgreSQL down when a node starts: the node serves chat anyway (its history
    worker retries), and what was said before the database came up is stored after."""
    url = private_postgres.database("chat")
    private_postgres.stop()
    cluster = Cluster(tmp_path, redis_server, "--history-postgres", url, *SMALL)
    try:
        node = cluster.node("a")
        alice = cluster.client("a", "alice")
        alice.join("#early")
        early = [m.param(1) for m in say(alice, "#early", 3, "early")]
        node.wait_log("history database unreachable", timeout=15)
        private_postgres.start()

        def stored() -> bool:
            got, fails = page(alice, "LATEST #early * 10", "up")
            return not fails and [m.param(1) for m in got] == early

        wait_for(stored, timeout=30, what="the early messages in the history")
        assert "Traceback" not in "\n".join(node.log)
    finally:
        cluster.close()


def test_search_targets_and_markers_are_answered_from_the_shared_database(
    pg_cluster: Cluster,
) -> None:
    """SEARCH (words and sender, PostgreSQL's word index and irc_fold), CHATHISTORY
    TARGETS and direct messages, asked on another node than the one they were said on."""
    cluster = pg_cluster
    caps = ["message-tags", "server-time", "echo-message", "batch", "draft/chathistory",
            "soju.im/search", "labeled-response"]  # fmt: skip
    try:
        alice, bob = cluster.pair("#s", caps, ("Alice", "bob"))
        lines = ["the Quick brown fox", "can't stop the fox", "nothing here", "QUICK again"]
        for text in lines:
            alice.send(f"PRIVMSG #s :{text}")
            alice.expect("PRIVMSG")
        alice.send("PRIVMSG bob :a direct quick word")
        alice.expect("PRIVMSG")
        for _ in range(len(lines) + 1):
            bob.expect("PRIVMSG")

        def search(query: str, token: str) -> list[str]:
            got = bob.answer(f"SEARCH {query}", token)
            assert not [m for m in got if m.command == "FAIL"], got
            return [m.param(1) for m in got if m.command == "PRIVMSG"]

        assert search("in=#s;text=quick", "s1") == ["the Quick brown fox", "QUICK again"]
        assert search("in=#s;text=fox\\scan't", "s2") == ["can't stop the fox"]
        assert search("in=#s;from=ALICE;text=fox", "s3") == lines[:2]
        assert search("text=quick", "s4") == [lines[0], lines[3], "a direct quick word"]
        got = bob.answer("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z"
                         " timestamp=2100-01-01T00:00:00.000Z 10", "t")  # fmt: skip
        targets = sorted(m.param(1) for m in got if m.command == "CHATHISTORY")
        assert targets == ["#s", "Alice"]
        dm, fails = page(bob, "LATEST alice * 10", "dm")
        assert not fails and [m.param(1) for m in dm] == ["a direct quick word"]
    finally:
        cluster.close()


def test_a_hung_postgres_delays_nobody(
    tmp_path: Path, redis_server: RedisProcess, private_postgres: PostgresProcess
) -> None:
    """PostgreSQL stopped dead (SIGSTOP: connections open, nothing answers): chat goes
    on, a history query fails after the store's answer timeout instead of hanging its
    client, and once PostgreSQL runs again the messages of that time are stored."""
    url = private_postgres.database("chat")
    cluster = Cluster(tmp_path, redis_server, "--history-postgres", url, *SMALL)
    try:
        cluster.node("a")
        alice = cluster.client("a", "alice")
        alice.join("#h")
        before = [m.param(1) for m in say(alice, "#h", 3, "before")]
        private_postgres.pause()
        during = [m.param(1) for m in say(alice, "#h", 3, "during")]  # echoes as ever
        alice.send("CHATHISTORY LATEST #h * 10")
        fail = alice.expect("FAIL", timeout=20)
        assert fail.params[:2] == ["CHATHISTORY", "MESSAGE_ERROR"]
        alice.send("PING :alive")
        alice.expect("PONG")
        private_postgres.resume()

        def whole() -> bool:
            got, fails = page(alice, "LATEST #h * 10", "up")
            return not fails and [m.param(1) for m in got] == before + during

        wait_for(whole, timeout=30, what="the messages of the hang in the history")
    finally:
        cluster.close()
