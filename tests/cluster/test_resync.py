"""Resync of a node holding more users and rooms than one Lua call can unpack (~8000 values).

A node's resync re-registers everything it holds in one RESYNC script and announces it
in a 'sync' event. Both used to go through Lua ``unpack`` whole, which fails from about
4,000 users; now the state is staged in Redis and the event is split into parts.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
import types
from collections.abc import Iterator

import pytest
import redis

from chat_server.cluster import events
from chat_server.cluster.redis_link import RedisLink, Request
from chat_server.cluster.scripts import SCRIPTS, SYNC_PART
from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.observe import in_room, lusers, sees
from tests.support.rawclient import RawClient
from tests.support.redis_server import RedisProcess
from tests.support.servers import ServerProcess

N_USERS = 4_500  # 9,000+ values in the sync event: well past what one unpack() takes
N_ROOMS = 300


def global_users(client: RawClient) -> int:
    return int(lusers(client)["266"].split()[0])


@contextlib.contextmanager
def many_users(srv: ServerProcess, count: int, rooms: int) -> Iterator[list[socket.socket]]:
    """``count`` registered users on ``srv``, user i in room #big<i % rooms>.

    Plain sockets that send their registration and JOIN in one write and never read:
    the server's replies wait in the kernel buffers, which is all these users need.
    """
    socks: list[socket.socket] = []
    try:
        for i in range(count):
            sock = socket.create_connection((srv.host, srv.port), timeout=10)
            sock.sendall(f"NICK m{i}\r\nUSER m 0 * :m\r\nJOIN #big{i % rooms}\r\n".encode())
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def sync_entries(client: redis.Redis, node: str) -> list[dict[str, str]]:
    return [
        fields
        for _, fields in client.xrange("dc:events")
        if fields["k"] == "sync" and fields["n"] == node
    ]


def test_node_with_thousands_of_users_resyncs(cluster: Cluster) -> None:
    a = cluster.node("a")
    cluster.node("b")
    watcher = cluster.client("b", "watcher")
    watcher.join("#big0")
    wait_for(lambda: in_room(watcher, "#big0", "watcher"), what="#big0 on b")
    rc = redis.Redis.from_url(cluster.redis.url, decode_responses=True)
    with many_users(a, N_USERS, N_ROOMS):
        wait_for(lambda: global_users(watcher) == N_USERS + 1, 30, "a's users seen on b")
        assert rc.hlen("dc:state:a") == N_USERS
        before = len(sync_entries(rc, "a"))

        # Declare node a dead, as the others do when its heartbeat stops: its users
        # are forgotten everywhere, and a (still alive) must announce all of them again.
        reap = ("a", "Declared dead by the test", "1", rc.get("dc:gen:a"))
        assert rc.eval(SCRIPTS["reap"], 0, *reap)
        wait_for(lambda: sum("in sync" in line for line in a.log) >= 2, 15, "a resynced")
        wait_for(lambda: global_users(watcher) == N_USERS + 1, 15, "a's users back on b")

        # Redis holds a's whole state again, and every nick is a's once more.
        assert rc.hlen("dc:state:a") == N_USERS
        assert rc.scard("dc:claims:a") == N_USERS
        assert rc.hget("dc:nicks", f"m{N_USERS - 1}") == "a"
        assert rc.hlen("dc:chans") == N_ROOMS
        assert not rc.keys("dc:resync:*")  # the staging is gone
        # The resync was announced in several stream entries, and b put them together.
        syncs = sync_entries(rc, "a")[before:]
        parts = -(-(N_USERS + N_ROOMS) // SYNC_PART)
        assert [s.get("p") for s in syncs[-parts:]] == [f"{i}/{parts}" for i in range(parts)]
        members = [f"m{i}" for i in range(0, N_USERS, N_ROOMS)]
        assert in_room(watcher, "#big0", "watcher", *members)
        assert sees(watcher, f"m{N_USERS - 1}")
        wait_for(lambda: lusers(watcher)["251"].endswith("on 2 servers"), what="2 servers")
        for srv in cluster.nodes.values():
            errors = [x for x in srv.log if "Traceback" in x or "failed in redis" in x]
            errors += [x for x in srv.log if "cannot apply" in x or "without the parts" in x]
            assert not errors, errors


def _wait_link(link: RedisLink, kind: str, timeout: float = 30.0) -> tuple[object, ...]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        select.select([link.rsock], [], [], 0.1)
        for item in link.drain():
            if item[0] == kind:
                return item
    raise TimeoutError(f"link posted no {kind!r}")


@pytest.fixture
def links(redis_server: RedisProcess) -> Iterator[list[RedisLink]]:
    made: list[RedisLink] = []
    yield made
    for link in made:
        link.stop()


def _link(links: list[RedisLink], url: str, node: str) -> RedisLink:
    link = RedisLink(url, node)
    links.append(link)
    link.start()
    _wait_link(link, "up")
    return link


def _state(prefix: str, users: int, rooms: int) -> tuple[list[str], list[str]]:
    flat_users: list[str] = []
    for i in range(users):
        doc = {"nick": f"{prefix}{i}", "chans": {f"#{prefix}{i % rooms}": ""}}
        flat_users += [f"{prefix}{i}", json.dumps(doc)]
    flat_rooms: list[str] = []
    for i in range(rooms):
        flat_rooms += [f"#{prefix}{i}", json.dumps({"name": f"#{prefix}{i}"})]
    return flat_users, flat_rooms


def test_resync_script_takes_any_size(redis_server: RedisProcess, links: list[RedisLink]) -> None:
    """The link and the real script with a synthetic state far beyond any Lua limit."""
    url = redis_server.url
    rc = redis.Redis.from_url(url, decode_responses=True)
    peer = _link(links, url, "peer")
    peer_users, peer_rooms = _state("p", 5_000, 500)
    peer.submit(Request("resync", 0, [peer_users, ["p-pending"], peer_rooms]))
    _wait_link(peer, "synced")

    big = _link(links, url, "big")
    users, rooms = _state("u", 30_000, 8_000)
    users += ["p7", json.dumps({"nick": "p7", "chans": {}})]  # peer holds that nick
    claims = [f"c{i}" for i in range(3_000)]
    started = time.monotonic()
    big.submit(Request("resync", 0, [users, claims, rooms]))
    _, result, _, took_ms = _wait_link(big, "synced")
    assert time.monotonic() - started < 10
    assert 0 < took_ms < 10_000  # the link measures its resyncs (STATS c, the log)
    print(f"resync of 30,000 users and 8,000 rooms: {took_ms:.0f} ms")
    sync_id, lost, others, metas = result  # type: ignore[misc]
    assert lost == ["p7"]
    assert others[0] == "peer" and len(others[1]) == 2 * 5_000
    assert len(metas) == 2 * (8_000 + 500)
    assert rc.hlen("dc:state:big") == 30_000
    assert rc.scard("dc:claims:big") == 30_000 + 3_000
    assert rc.hget("dc:nicks", "p7") == "peer" and rc.hget("dc:nicks", "c5") == "big"
    assert not rc.keys("dc:resync:*")

    # The sync event: consecutive parts, the last one at the snapshot's position, and
    # put back together (one entry at a time, as reads may split them) it is the state.
    entries = [(i, f) for i, f in rc.xrange("dc:events") if f["n"] == "big"]
    assert entries[-1][0] == sync_id
    assert len(entries) == -(-(30_000 + 8_000) // SYNC_PART)
    bp = types.SimpleNamespace(sync_parts={})
    wholes = [events.collect_sync(bp, "big", f) for _, f in entries]  # type: ignore[arg-type]
    assert wholes[:-1] == [None] * (len(entries) - 1)
    docs, chans = wholes[-1]  # type: ignore[misc]
    assert len(docs) == 30_000 and "p7" not in docs and docs["u123"]["nick"] == "u123"
    assert len(chans) == 8_000 and json.loads(chans["#u7"])["name"] == "#u7"
    assert not bp.sync_parts
    # A part whose predecessors were never seen is not taken for the whole state.
    assert events.collect_sync(bp, "big", entries[-1][1]) is None  # type: ignore[arg-type]

    # A smaller state later: the node's extra users, claims and nicks go.
    users, rooms = _state("u", 10, 2)
    big.submit(Request("resync", 0, [users, [], rooms]))
    _wait_link(big, "synced")
    assert rc.hlen("dc:state:big") == 10 and rc.scard("dc:claims:big") == 10
    assert rc.hget("dc:nicks", "u20000") is None
    # Room member counts follow the users' documents (they decide who creates a room).
    assert rc.hgetall("dc:roomsize") == {"#u0": "5", "#u1": "5"} | {
        f"#p{i}": "10" for i in range(500)
    }
    assert "p" not in rc.xrevrange("dc:events", count=1)[0][1]  # small: one entry, as before
