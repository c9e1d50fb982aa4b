"""What operators get (issue 18, defect 9): ``STATS c`` and log lines about the link,
and Redis with AUTH (an ACL user) and TLS (``rediss://``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chat_server.process import LOOPBACK, DaemonProcess, free_port
from perf.tls import throwaway_certificate
from tests.cluster.conftest import CAPS, Cluster, wait_for
from tests.cluster.observe import in_room, privmsgs
from tests.support.rawclient import RawClient
from tests.support.redis_server import redis_binary
from tests.support.servers import ServerProcess

PASSWORD = "s3cret-pass"


def stats_c(client: RawClient) -> dict[str, dict[str, str]]:
    """``STATS c`` as {first word: {key: value}}."""
    client.send("STATS c")
    rows: dict[str, dict[str, str]] = {}
    for m in client.collect_until("219"):
        if m.command == "249":
            assert m.param(1) == "c"
            head, *pairs = m.param(2).split()
            rows[head] = dict(p.split("=", 1) for p in pairs)
    return rows


def test_stats_c_shows_the_link_to_opers_and_the_log_says_the_same(cluster: Cluster) -> None:
    a = cluster.node("a", "--oper", "root:hunter2")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    alice.join("#s")
    alice.send("STATS c")
    assert alice.expect(lambda m: m.command in ("481", "249")).command == "481"
    alice.send("OPER root hunter2")
    alice.expect("381")
    rows = stats_c(alice)
    assert rows["link"]["state"] == "up" and rows["link"]["other_nodes"] == "1"
    assert rows["stream"]["lag"].endswith("ms") or rows["stream"]["lag"] == "paused"
    assert rows["stream"]["keep"] == "600s"
    assert rows["clients"]["held"] == "0" and rows["fails"]["sent"] == "0"
    assert rows["resync"]["count"] == "1" and rows["resync"]["last"].endswith("ms")
    assert "by_this_node" in rows["reaps"]
    alice.send("STATS u")  # other letters: just the end
    assert alice.expect(lambda m: m.command in ("219", "249")).command == "219"

    cluster.redis.stop()
    alice.expect("NOTICE", pattern="Cluster link lost", timeout=10)
    alice.send("PRIVMSG #s :refused")
    alice.expect("FAIL")
    assert stats_c(alice)["link"]["state"] == "down"
    cluster.redis.start()
    alice.expect("NOTICE", pattern="Cluster link restored", timeout=15)
    rows = stats_c(alice)
    assert rows["fails"]["sent"] == "1"
    assert rows["resync"]["count"] == "2" and rows["link"]["connects"] == "2"
    # The log is read from the node's output by a thread: wait for the lines.
    wait_for(lambda: any("FAIL CLUSTER_UNAVAILABLE to alice for #s" in ln for ln in a.log),
             what="the FAIL log line")  # fmt: skip
    wait_for(lambda: sum("in sync in " in ln for ln in a.log) >= 2, what="two resync lines")
    assert sum("in sync in " in ln for ln in a.log) == 2


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server that speaks only TLS and knows one user, ``distchat``."""
    binary = redis_binary()
    if binary is None:  # pragma: no cover - scripts/test installs it
        pytest.skip("redis-server is not installed")
    cert, key = throwaway_certificate(tmp_path)
    port = free_port()
    proc = DaemonProcess(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", LOOPBACK,
         "--tls-cert-file", str(cert), "--tls-key-file", str(key),
         "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
         "--user", "default", "off",
         "--user", "distchat", "on", f">{PASSWORD}", "~*", "&*", "+@all"],
        ready=lambda line: "Ready to accept connections" in line,
        name="redis-server",
        grace=5.0,
    )  # fmt: skip
    proc.start()
    yield f"rediss://distchat:{PASSWORD}@{LOOPBACK}:{port}/0?ssl_ca_certs={cert}"
    proc.stop()


def test_nodes_on_a_redis_with_password_and_tls(cluster: Cluster, tls_redis: str) -> None:
    a = cluster.node("a", url=tls_redis)
    b = cluster.node("b", url=tls_redis)
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    alice.join("#tls")
    bob.join("#tls")
    wait_for(lambda: in_room(alice, "#tls", "bob"), what="bob in #tls on a")
    alice.send("PRIVMSG #tls :over tls")
    assert privmsgs(bob, 1)[0][3] == "over tls"
    for srv in (a, b):
        assert "rediss://distchat:***@" in "\n".join(srv.log)
        assert PASSWORD not in "\n".join(srv.log)

    # A wrong password: the node says why in one line (without the password) and
    # serves its own clients while it retries.
    node = ServerProcess(
        cluster.tmp_path, "--redis", tls_redis.replace(PASSWORD, "bad-pass-xyz"),
        "--node-id", "c", flood_limit=False,
    )  # fmt: skip
    cluster.nodes["c"] = node
    node.start()
    line = node.wait_log("unreachable")
    assert "invalid username-password" in line and "distchat:***@" in line
    assert "bad-pass-xyz" not in "\n".join(node.log)
    client = RawClient(node.host, node.port)
    cluster.clients.append(client)
    client.register("carol", caps=CAPS)
