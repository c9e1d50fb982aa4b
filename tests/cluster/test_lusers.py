"""LUSERS on a cluster node: live nodes as servers, global and local user counts."""

from __future__ import annotations

from pathlib import Path

from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.observe import lusers
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess


def test_lusers_counts_live_nodes_and_global_users(cluster: Cluster) -> None:
    for name in "abc":
        cluster.node(name)
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    carol = cluster.client("b", "carol")
    cluster.client("c", "dave")
    carol.send("MODE carol +i")
    carol.expect("MODE")
    for c in (alice, bob):
        wait_for(lambda c=c: lusers(c)["266"].startswith("4 4"), what="4 users everywhere")
    # 265/266: current and the most seen since start (which stays after users leave).

    def counted(client: RawClient, want: dict[str, str]) -> bool:
        got = lusers(client)
        return all(got[k] == v for k, v in want.items())

    wait_for(
        lambda: counted(
            alice,
            {
                "251": "There are 3 users and 1 invisible on 3 servers",
                "255": "I have 1 clients and 2 servers",
                "265": "1 1 Current local users 1, max 1",
                "266": "4 4 Current global users 4, max 4",
            },
        ),
        what="LUSERS on a",
    )
    wait_for(
        lambda: counted(
            bob,
            {
                "251": "There are 3 users and 1 invisible on 3 servers",
                "255": "I have 2 clients and 2 servers",
                "265": "2 2 Current local users 2, max 2",
                "266": "4 4 Current global users 4, max 4",
            },
        ),
        what="LUSERS on b",
    )

    cluster.nodes["c"].stop()  # leaves at once
    wait_for(
        lambda: counted(
            alice,
            {
                "251": "There are 2 users and 1 invisible on 2 servers",
                "255": "I have 1 clients and 1 servers",
                "266": "3 4 Current global users 3, max 4",
            },
        ),
        what="c gone on a",
    )
    cluster.nodes["b"].kill()  # its heartbeat stops: reaped after the presence expires
    wait_for(
        lambda: counted(
            alice,
            {
                "251": "There are 1 users and 0 invisible on 1 servers",
                "255": "I have 1 clients and 0 servers",
                "265": "1 1 Current local users 1, max 1",
                "266": "1 4 Current global users 1, max 4",
            },
        ),
        timeout=15,
        what="b gone on a",
    )


def test_single_server_lusers_is_one_server(tmp_path: Path) -> None:
    with ServerProcess(tmp_path) as srv:
        alice = RawClient(srv.host, srv.port)
        bob = RawClient(srv.host, srv.port)
        try:
            alice.register("alice")
            bob.register("bob")
            assert lusers(alice) == {
                # 252-254 only when not zero, as the Modern IRC document has them
                "251": "There are 2 users and 0 invisible on 1 servers",
                "255": "I have 2 clients and 0 servers",
                "265": "2 2 Current local users 2, max 2",
                "266": "2 2 Current global users 2, max 2",
            }
        finally:
            alice.close()
            bob.close()
