"""Accounts in a cluster: kept in Redis, so an account made on one node (by REGISTER or
``chat-server account --redis``) logs in on another, owns its nick on every node, and
a login is seen (account-notify, WHOIS 330, account-tag) from every node."""

from __future__ import annotations

import subprocess
import sys

from tests.cluster.conftest import Cluster, wait_for
from tests.support.rawclient import RawClient
from tests.support.sasl import plain, scram


def add_redis_account(cluster: Cluster, name: str, password: str) -> None:
    """``chat-server account add --redis``: the cluster's accounts, as an admin makes them."""
    made = subprocess.run(
        [sys.executable, "-m", "chat_server", "account", "add", name, "--redis", cluster.redis.url],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr


def sasl_client(cluster: Cluster, node: str, caps: str = "sasl") -> RawClient:
    c = cluster.client(node)
    c.send(f"CAP REQ :{caps}")
    c.expect("CAP", pattern=" ACK ")
    return c


def finish(c: RawClient, nick: str) -> str:
    c.send(f"NICK {nick}")
    c.send(f"USER {nick} 0 * :{nick}")
    c.send("CAP END")
    return c.expect(lambda m: m.command in ("001", "433")).command


def test_account_registered_on_one_node_logs_in_on_another(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b")
    maker = sasl_client(cluster, "a", "draft/account-registration")
    maker.send("NICK carol")
    maker.send("REGISTER * * carolspassword")
    assert maker.expect("REGISTER").params[:2] == ["SUCCESS", "carol"]
    maker.close()
    assert plain(sasl_client(cluster, "b"), "carol", "carolspassword") == "903"
    assert scram(sasl_client(cluster, "b"), "carol", "carolspassword").outcome == "903"
    assert plain(sasl_client(cluster, "b"), "carol", "wrong") == "904"

    def reserved_on_b() -> bool:  # node b learns the owned nicks within its refresh
        c = cluster.client("b")
        c.send("NICK carol")
        c.send("USER c 0 * :c")
        answer = c.expect(lambda m: m.command in ("001", "433")).command
        c.close()
        return answer == "433"

    wait_for(reserved_on_b, timeout=15, what="carol's nick reserved on node b")


def test_login_is_seen_from_other_nodes(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b")
    add_redis_account(cluster, "dave", "davespassword")
    watcher = cluster.client(
        "a", "watcher", caps=["account-notify", "account-tag", "extended-join", "message-tags"]
    )
    watcher.join("#x")
    dave = sasl_client(cluster, "b")
    assert finish(dave, "someone") == "001"
    dave.send("JOIN #x")
    assert watcher.expect("JOIN").source.startswith("someone!")
    assert plain(dave, "dave", "davespassword") == "903"
    notify = watcher.expect("ACCOUNT")
    assert notify.source.startswith("someone!") and notify.params == ["dave"]
    watcher.send("WHOIS someone")
    assert watcher.expect("330").params[2] == "dave"


def test_a_refused_owned_nick_is_not_held_in_the_cluster(cluster: Cluster) -> None:
    """A connection that asked for an account's nick without logging in is refused it,
    and its claim in Redis goes with the refusal: the owner can log in on another node
    at once instead of finding the nick 'in use' until the squatter times out."""
    cluster.node("a")
    cluster.node("b")
    add_redis_account(cluster, "erin", "erinspassword")

    def refused_on_a() -> bool:  # node a learns the owned nicks within its refresh
        squatter = cluster.client("a")
        squatter.send("CAP LS 302")
        squatter.send("NICK erin")
        squatter.send("USER e 0 * :e")
        squatter.send("CAP END")
        answer = squatter.expect(lambda m: m.command in ("001", "433")).command
        if answer == "001":
            squatter.close()
        return answer == "433"

    wait_for(refused_on_a, timeout=15, what="erin's nick refused on node a")
    owner = sasl_client(cluster, "b")
    assert plain(owner, "erin", "erinspassword") == "903"
    assert finish(owner, "erin") == "001"
