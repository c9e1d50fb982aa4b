"""Redis restarted with its data (AOF, as production runs it): the cluster goes on with
nothing lost, nobody quitting, and no "lost its data" notice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.observe import in_room, privmsgs
from tests.support.redis_server import RedisProcess


@pytest.fixture
def aof_cluster(tmp_path: Path) -> Iterator[Cluster]:
    with RedisProcess(tmp_path / "redis", aof=True) as redis:
        cluster = Cluster(tmp_path, redis)
        yield cluster
        cluster.close()


def history_texts(client_answer: list) -> list[str]:
    return [m.param(1) for m in client_answer if m.command == "PRIVMSG"]


def test_a_restart_with_aof_keeps_history_members_and_nicks(aof_cluster: Cluster) -> None:
    cluster = aof_cluster
    a = cluster.node("a")
    b = cluster.node("b")
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    alice.join("#aof")
    bob.join("#aof")
    wait_for(lambda: in_room(alice, "#aof", "bob"), what="bob in #aof on a")
    for i in range(5):
        alice.send(f"PRIVMSG #aof :before {i}")
    before = [text for *_, text in privmsgs(bob, 5)]
    privmsgs(alice, 5)  # the echoes
    mark = len(alice.received)

    cluster.redis.stop()  # SIGTERM: Redis flushes its append-only file
    cluster.redis.start()
    for node in (a, b):
        try:
            wait_for(lambda node=node: any("new run_id" in line for line in node.log), 20,
                     "both nodes noticing the restart")  # fmt: skip
        except TimeoutError:
            raise AssertionError("\n".join(node.log[-20:])) from None

    bob.send("PRIVMSG #aof :after")
    assert privmsgs(bob, 1)[0][2:] == ("bob", "after")  # its echo: sent, not refused
    assert privmsgs(alice, 1)[0][2:] == ("bob", "after")
    for client in (alice, bob):
        got = client.answer("CHATHISTORY LATEST #aof * 50", "h")
        assert history_texts(got) == [*before, "after"]
    seen = [str(m) for m in alice.received[mark:]]
    assert not [line for line in seen if " QUIT " in line or " JOIN " in line], seen
    assert not [line for line in seen if "lost its data" in line or "Missed" in line], seen
    for node in (a, b):
        log = "\n".join(node.log)
        assert "Traceback" not in log and "went away" not in log and "collision" not in log


def test_scripts_lost_by_redis_are_loaded_again_and_nothing_fails(
    aof_cluster: Cluster,
) -> None:
    """A replica promoted by a failover (or a proxy that kept the connections) has no
    scripts cached: EVALSHA answers NOSCRIPT. The script did not run, so it is loaded
    and run again: the message is delivered, never refused, and nobody is told of an
    outage that did not happen."""
    cluster = aof_cluster
    cluster.node("a")
    alice = cluster.client("a", "alice")
    alice.join("#ns")
    client = redis.Redis.from_url(cluster.redis.url)
    try:
        for i in range(3):
            client.script_flush()
            alice.send(f"PRIVMSG #ns :after flush {i}")
            got = alice.expect(lambda m: m.command in ("PRIVMSG", "FAIL", "NOTICE"))
            assert (got.command, got.param(1)) == ("PRIVMSG", f"after flush {i}"), str(got)
    finally:
        client.close()
    log = "\n".join(cluster.nodes["a"].log)
    assert "lost our scripts" in log and "unreachable" not in log and "failed in redis" not in log
