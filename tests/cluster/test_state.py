"""Nicks, rooms and user state across nodes, as on one server."""

from __future__ import annotations

import pytest

from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.observe import in_room, sees
from tests.support.rawclient import RawClient


@pytest.fixture
def pair(cluster: Cluster) -> tuple[RawClient, RawClient]:
    """alice on node a and bob on node b, both in #room (alice is its op)."""
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    alice.join("#room")
    bob = cluster.client("b", "bob")
    wait_for(lambda: in_room(bob, "#room", "alice"), what="#room on b")
    bob.join("#room")
    alice.expect("JOIN", pattern="bob")
    return alice, bob


def test_nick_taken_on_another_node_is_refused(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    other = cluster.client("b")
    other.send("NICK Alice")
    other.send("USER x 0 * :x")
    assert other.expect("433").param(1) == "Alice"
    other.send("NICK alice2")
    other.expect("001")
    other.send("NICK ALICE")
    other.expect("433")
    alice.send("NICK alice2")
    alice.expect("433")


def test_simultaneous_registration_of_one_nick_gives_it_to_one(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b")
    clients = [cluster.client("a"), cluster.client("b")]
    for c in clients:
        c.send("NICK same\r\nUSER x 0 * :x")
    answers = [c.expect(lambda m: m.command in ("001", "433")).command for c in clients]
    assert sorted(answers) == ["001", "433"]


def test_names_whois_list_and_who_see_remote_users(pair: tuple[RawClient, RawClient]) -> None:
    _, bob = pair
    assert in_room(bob, "#room", "alice", "bob")
    bob.send("WHOIS alice")
    whois = bob.collect_until("318")
    assert any(m.command == "311" and m.param(1) == "alice" for m in whois)
    assert any(m.command == "319" and "@#room" in m.param(2) for m in whois)
    bob.send("LIST")
    listing = [m for m in bob.collect_until("323") if m.command == "322"]
    assert [(m.param(1), m.param(2)) for m in listing] == [("#room", "2")]
    bob.send("WHO #room")
    who = [m.param(5) for m in bob.collect_until("315") if m.command == "352"]
    assert sorted(who) == ["alice", "bob"]


def test_topic_and_modes_cross_nodes(pair: tuple[RawClient, RawClient]) -> None:
    alice, bob = pair
    alice.send("TOPIC #room :shared topic")
    alice.expect("TOPIC")
    assert bob.expect("TOPIC").param(1) == "shared topic"
    bob.send("TOPIC #room :not allowed")
    bob.expect("482")  # +t and bob is no op: the replica knows both
    alice.send("MODE #room +o bob")
    alice.expect("MODE")
    assert bob.expect("MODE").params[1:] == ["+o", "bob"]
    bob.send("TOPIC #room :now allowed")
    assert alice.expect("TOPIC").param(1) == "now allowed"
    bob.send("MODE #room +m")
    alice.expect("MODE", pattern=r"\+m")
    bob.send("MODE #room")
    assert "m" in bob.expect("324").param(2)


def test_kick_and_invite_cross_nodes(pair: tuple[RawClient, RawClient]) -> None:
    alice, bob = pair
    alice.send("KICK #room bob :out")
    kick = bob.expect("KICK")
    assert kick.params[1:] == ["bob", "out"]
    wait_for(lambda: not in_room(alice, "#room", "bob"), what="bob gone on a")
    alice.send("MODE #room +i")
    alice.expect("MODE")
    wait_for(lambda: bob.send("MODE #room") or "i" in bob.expect("324").param(2), what="+i on b")
    bob.send("JOIN #room")
    bob.expect("473")
    alice.send("INVITE bob #room")
    alice.expect("341")
    assert bob.expect("INVITE").param(1) == "#room"
    bob.send("JOIN #room")
    alice.expect("JOIN", pattern="bob")


def test_away_nick_and_quit_cross_nodes(pair: tuple[RawClient, RawClient]) -> None:
    alice, bob = pair
    bob.send("AWAY :lunch")
    bob.expect("306")

    def away_seen() -> bool:
        alice.send("WHOIS bob")
        return any(m.command == "301" for m in alice.collect_until("318"))

    wait_for(away_seen, what="bob away on a")
    alice.send("PRIVMSG bob :there?")
    assert alice.expect("301").param(2) == "lunch"
    bob.send("NICK robert")
    nick = alice.expect("NICK")
    assert nick.nick == "bob" and nick.param(0) == "robert"
    wait_for(lambda: sees(alice, "robert") and not sees(alice, "bob"), what="rename on a")
    fresh = RawClient(alice.sock.getpeername()[0], alice.sock.getpeername()[1])
    try:
        fresh.register("bob")  # the old nick is free everywhere
    finally:
        fresh.close()
    bob.send("QUIT :see you")
    quit_msg = alice.expect("QUIT")
    assert quit_msg.nick == "robert" and "see you" in quit_msg.param(0)
    wait_for(lambda: not sees(alice, "robert"), what="robert gone")


def test_a_ban_set_on_one_node_holds_on_the_other(
    cluster: Cluster, pair: tuple[RawClient, RawClient]
) -> None:
    alice, bob = pair
    alice.send("MODE #room +b bob")
    alice.expect("MODE", pattern=r"\+b bob!\*@\*")
    bob.expect("MODE", pattern=r"\+b bob!\*@\*")
    bob.send("PRIVMSG #room :can I still talk?")
    bob.expect("404")
    bob.send("MODE #room b")
    assert any(m.command == "367" and m.param(2) == "bob!*@*" for m in bob.collect_until("368"))
    bob.send("PART #room")
    bob.expect("PART")
    bob.send("JOIN #room")
    bob.expect("474")


def test_whowas_hears_of_nick_changes_on_other_nodes(
    pair: tuple[RawClient, RawClient],
) -> None:
    alice, bob = pair
    bob.send("NICK robert")
    alice.expect("NICK", pattern="robert")
    alice.send("WHOWAS bob")
    replies = alice.collect_until("369")
    assert any(m.command == "314" and m.param(1) == "bob" for m in replies)
