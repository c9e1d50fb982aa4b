"""Fixtures for cluster tests: a private redis-server and chat-server nodes on it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cluster.observe import in_room
from tests.support.rawclient import RawClient
from tests.support.redis_server import RedisProcess, redis_binary
from tests.support.servers import ServerProcess

CAPS = ["message-tags", "server-time", "echo-message", "batch", "draft/chathistory"]
# Liveness timing of the test nodes: the default timeout (3 s), a grace period shorter
# than the default 10 s so that a node killed right after the cluster starts is still
# declared dead within seconds.
TIMEOUT = 3.0
GRACE = 5.0

if redis_binary() is None:  # pragma: no cover - scripts/test installs it
    pytest.skip("redis-server is not installed", allow_module_level=True)


class Cluster:
    """Nodes sharing one Redis, and raw clients on them that are closed at the end."""

    def __init__(self, tmp_path: Path, redis: RedisProcess, *node_args: str) -> None:
        self.tmp_path = tmp_path
        self.redis = redis
        self.node_args = node_args  # given to every node (e.g. --history-postgres URL)
        self.nodes: dict[str, ServerProcess] = {}
        self.clients: list[RawClient] = []

    def node(
        self, name: str, *extra: str, url: str | None = None, node_id: str | None = None
    ) -> ServerProcess:
        """Start node ``name`` (with ``node_id``, default ``name``; on Redis at ``url``,
        default the cluster's) and wait until it is in sync with the cluster."""
        srv = ServerProcess(
            self.tmp_path,
            "--redis",
            url or self.redis.url,
            "--node-id",
            node_id or name,
            "--cluster-grace",
            str(GRACE),
            *self.node_args,
            *extra,
            flood_limit=False,
        )
        self.nodes[name] = srv
        srv.start()
        srv.wait_log("in sync")
        return srv

    def client(
        self, node: str, nick: str | None = None, caps: list[str] | None = None
    ) -> RawClient:
        srv = self.nodes[node]
        c = RawClient(srv.host, srv.port)
        self.clients.append(c)
        if nick:
            c.register(nick, caps=CAPS if caps is None else caps)
        return c

    def pair(
        self, room: str, caps: list[str] | None = None, nicks: tuple[str, str] = ("alice", "bob")
    ) -> tuple[RawClient, RawClient]:
        """Nodes a and b started, one client on each, both in ``room`` (as a sees it)."""
        self.node("a")
        self.node("b")
        first = self.client("a", nicks[0], caps=caps)
        second = self.client("b", nicks[1], caps=caps)
        first.join(room)
        second.join(room)
        wait_for(lambda: in_room(first, room, nicks[1]), what=f"{nicks[1]} in {room} on a")
        return first, second

    def close(self) -> None:
        for c in self.clients:
            c.close()
        for srv in self.nodes.values():
            srv.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    with RedisProcess(tmp_path / "redis") as proc:
        yield proc


@pytest.fixture
def cluster(tmp_path: Path, redis_server: RedisProcess) -> Iterator[Cluster]:
    c = Cluster(tmp_path, redis_server)
    yield c
    c.close()


@pytest.fixture(params=["memory", "postgres"])
def history_cluster(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisProcess
) -> Iterator[Cluster]:
    """A cluster whose history is each node's memory (filled from Redis), or a shared
    PostgreSQL database: the history tests run on both."""
    args: tuple[str, ...] = ()
    if request.param == "postgres":
        args = ("--history-postgres", request.getfixturevalue("postgres_url"))
    c = Cluster(tmp_path, redis_server, *args)
    yield c
    c.close()


def wait_for(check: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> object:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)
