"""Liveness across Redis outages (issue 18, defect 1).

A Redis that stands still or restarts for longer than the heartbeat timeout lets every
presence key expire at once; that must kill nobody. A node cut off from Redis alone
must still be declared dead by the others, and a process that is not (or no longer)
the owner of its node id must not act for it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from chat_server.cluster.redis_link import Liveness
from tests.cluster.conftest import GRACE, TIMEOUT, Cluster, wait_for
from tests.cluster.observe import in_room, privmsgs, sees
from tests.cluster.proxy import CuttableProxy
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess


def test_liveness_reaps_only_after_steady_contact() -> None:
    """The rule by itself: grace after registering, after a stall, after a new run_id."""
    live = Liveness(grace=10.0, stall=1.5)

    def beats(start: float, count: int, run_id: str = "r1") -> list[bool]:
        return [live.beat(start + i, run_id) for i in range(count)]

    assert beats(0.0, 3) == [False] * 3  # not registered yet: no contact at all
    live.restart(0.0)
    assert beats(1.0, 10) == [False] * 9 + [True]  # steady for 10 s
    assert beats(12.0, 11) == [False] * 10 + [True]  # 2 s between beats: a stall
    assert beats(23.0, 11, "r2") == [False] * 10 + [True]  # Redis restarted
    live.lost()
    assert beats(34.0, 20, "r2") == [False] * 20  # until registered again


class NickPoller:
    """A client asking for someone else's nick every 50 ms, as a nick thief would."""

    def __init__(self, client: RawClient, nick: str) -> None:
        self.client = client
        self.nick = nick
        self.refused = 0  # 433 or 437 answers
        self.taken: list[str] = []  # NICK lines: the nick was given to the thief
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="nick-poller")
        self._thread.start()

    def _run(self) -> None:
        answers = ("433", "437", "NICK")
        try:
            while not self._stop.is_set():
                self.client.send(f"NICK {self.nick}")
                reply = self.client.expect(lambda m: m.command in answers, timeout=10)
                if reply.command == "NICK":
                    self.taken.append(str(reply))
                    return
                self.refused += 1
                self._stop.wait(0.05)
        except Exception as exc:  # reported by stop(): the poller must not die quietly
            self.error = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)
        if self.error is not None:
            raise self.error


def churn(client: RawClient, since: int, nick: str) -> list[str]:
    """Lines after ``since`` in which ``nick`` quit, joined or left."""
    client.send("PING :barrier")
    client.expect("PONG")
    moves = ("QUIT", "JOIN", "PART")
    return [str(m) for m in client.received[since:] if m.command in moves and m.nick == nick]


def syncs(srv: ServerProcess) -> int:
    return sum("in sync" in line for line in srv.log)


@pytest.fixture
def proxy(cluster: Cluster) -> Iterator[CuttableProxy]:
    relay = CuttableProxy(cluster.redis.port)
    yield relay
    relay.close()


# unreachable: every node loses Redis at once (a failover, as the network sees it).
# paused: Redis stands still (SIGSTOP). Commands the nodes sent just before giving up
# run when it resumes, heartbeats among them, which may hide the fault by chance.
# restarted: Redis comes back empty with a new run_id.
@pytest.mark.parametrize("outage", ["unreachable", "paused", "restarted"])
def test_redis_outage_past_the_timeout_kills_nobody(
    cluster: Cluster, proxy: CuttableProxy, outage: str
) -> None:
    url = proxy.url if outage == "unreachable" else None
    a = cluster.node("a", url=url)
    b = cluster.node("b", url=url)
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    alice.join("#r")
    bob.join("#r")
    wait_for(lambda: in_room(alice, "#r", "alice", "bob"), what="#r on a")
    wait_for(lambda: in_room(bob, "#r", "alice", "bob"), what="#r on b")
    marks = {"alice": len(alice.received), "bob": len(bob.received)}
    thief = NickPoller(cluster.client("a", "thief"), "bob")
    try:
        wait_for(lambda: thief.refused >= 3, what="the thief refused before the outage")
        before = thief.refused
        if outage == "unreachable":
            proxy.cut()
            time.sleep(2 * TIMEOUT)  # the point: every presence key expires inside Redis
            proxy.restore()
        elif outage == "paused":
            pid = cluster.redis.pid
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(2 * TIMEOUT)  # the point: every presence key expires inside Redis
            finally:
                os.kill(pid, signal.SIGCONT)
        else:
            cluster.redis.stop()
            time.sleep(TIMEOUT + 1)  # the point: down for longer than the timeout
            cluster.redis.start()  # back empty (no persistence), with a new run_id
        for srv in (a, b):
            wait_for(lambda srv=srv: syncs(srv) >= 2, 20, "both nodes registered again")
        # The point: let the grace period and one more timeout pass, so that a node
        # declared dead late would show too.
        time.sleep(GRACE + TIMEOUT)
        assert thief.refused > before + 10  # it kept asking all along
    finally:
        thief.stop()
    assert thief.taken == []
    assert churn(alice, marks["alice"], "bob") == []
    assert churn(bob, marks["bob"], "alice") == []
    alice.send("PRIVMSG #r :still here")
    assert privmsgs(bob, 1)[0][2:] == ("alice", "still here")
    for srv in (a, b):
        log = "\n".join(srv.log)
        assert "collision" not in log and "went away" not in log and "declared dead" not in log
        assert "Traceback" not in log
        if outage == "restarted":
            assert "new run_id" in log


def test_node_cut_off_from_redis_is_declared_dead_then_replaced(
    cluster: Cluster, proxy: CuttableProxy
) -> None:
    cluster.node("a")
    old_b = cluster.node("b", url=proxy.url)
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    alice.join("#r")
    bob.join("#r")
    wait_for(lambda: in_room(alice, "#r", "alice", "bob"), what="bob in #r on a")

    # b alone loses Redis for good: a, in steady contact, declares it dead.
    proxy.cut()
    quit_msg = alice.expect("QUIT", timeout=GRACE + 2 * TIMEOUT + 5)
    assert quit_msg.nick == "bob" and quit_msg.param(0) == "Node b went away"
    thief = cluster.client("a", "thief")
    thief.send("NICK bob")  # a dead node's nicks are free
    thief.expect("NICK")
    thief.send("NICK thief")
    thief.expect("NICK")

    # b comes back: it registers again and its users with it.
    proxy.restore()
    wait_for(lambda: in_room(alice, "#r", "alice", "bob"), 20, "bob back in #r on a")
    bob.send("PRIVMSG #r :back")
    assert privmsgs(alice, 1)[0][2:] == ("bob", "back")

    # Cut off again, and replaced by a new process with the same node id.
    proxy.cut()
    quit_msg = alice.expect("QUIT", timeout=GRACE + 2 * TIMEOUT + 5)
    assert quit_msg.nick == "bob"
    cluster.node("b-new", node_id="b")
    carol = cluster.client("b-new", "carol")
    wait_for(lambda: sees(alice, "carol"), what="carol seen on a")
    mark = len(alice.received)

    # The old process reaches Redis again: it is no longer node b, and stops.
    proxy.restore()
    wait_for(lambda: old_b.returncode is not None, 20, "the old process of b to stop")
    assert old_b.returncode == 1
    errors = [line for line in old_b.log if line.startswith("chat-server: error:")]
    assert errors == [
        "chat-server: error: node id b was taken over by another process while this"
        " one was cut off from redis; stopping"
    ]
    assert churn(alice, mark, "carol") == []
    assert sees(alice, "carol") and not sees(alice, "bob")
    carol.send("PRIVMSG alice :hi")
    assert privmsgs(alice, 1)[0][2:] == ("carol", "hi")


@pytest.fixture
def dup(tmp_path: Path, cluster: Cluster) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path, "--redis", cluster.redis.url, "--node-id", "a", flood_limit=False)
    yield srv
    srv.stop()


def test_duplicate_node_id_is_refused(cluster: Cluster, dup: ServerProcess) -> None:
    a = cluster.node("a")
    alice = cluster.client("a", "alice")
    rc = redis.Redis.from_url(cluster.redis.url, decode_responses=True)
    owner = rc.get("dc:gen:a")
    dup.start()  # it listens, then finds a live heartbeat of node a and waits it out
    wait_for(lambda: dup.returncode is not None, 15, "the duplicate to exit")
    assert dup.returncode == 1
    errors = [line for line in dup.log if "error" in line.lower() or "Traceback" in line]
    assert errors == [
        "chat-server: error: node id a is in use by another running process (its heartbeat"
        " in redis is live); give this one another --node-id"
    ]
    assert rc.get("dc:gen:a") == owner
    alice.send("PING :still-node-a")
    alice.expect("PONG")
    assert "declared dead" not in "\n".join(a.log)


def test_node_restarted_right_after_a_crash_takes_its_id_back(cluster: Cluster) -> None:
    cluster.node("a")
    b = cluster.node("b")
    b.kill()  # its last heartbeat stays live in Redis for up to the timeout
    b.start()
    b.wait_log("in sync", 2 * TIMEOUT + 5)
    alice = cluster.client("a", "alice")
    cluster.client("b", "bob")
    wait_for(lambda: sees(alice, "bob"), what="bob on the restarted b seen from a")
