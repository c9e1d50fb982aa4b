"""What a sender hears about its messages in a cluster (issue 18, defect 5): the echo is
the labeled response, a FAIL names the label and the target, a message said to be
possibly undelivered is never delivered without a word, and a retry can be made safe."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from chat_protocol import Message
from tests.cluster.conftest import CAPS, Cluster, wait_for
from tests.cluster.observe import in_room
from tests.support.rawclient import RawClient

LABELED = [*CAPS, "labeled-response"]


def two_in_a_room(cluster: Cluster, alice_caps: list[str]) -> tuple[RawClient, RawClient]:
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice", caps=alice_caps)
    bob = cluster.client("b", "bob")
    alice.join("#r")
    bob.join("#r")
    wait_for(lambda: in_room(alice, "#r", "bob"), what="bob in #r on a")
    return alice, bob


def read_until(client: RawClient, done: Callable[[], bool], timeout: float) -> None:
    """Read (into ``client.received``) until ``done()``."""
    if not done():
        client.expect(lambda m: done(), timeout=timeout)


def labeled(client: RawClient, label: str) -> list[Message]:
    return [m for m in client.received if m.tags.get("label") == label]


def test_labeled_message_is_answered_by_its_echo_or_an_ack(cluster: Cluster) -> None:
    alice, bob = two_in_a_room(cluster, LABELED)
    alice.received.clear()
    alice.send("@label=one PRIVMSG #r :hello")
    echo = alice.expect(lambda m: m.tags.get("label") == "one")
    assert echo.command == "PRIVMSG" and echo.param(1) == "hello" and echo.tags["msgid"]
    assert bob.expect("PRIVMSG").tags["msgid"] == echo.tags["msgid"]
    assert not [m for m in alice.received if m.command == "ACK"]

    # Two targets, one of them unknown: one labeled batch with the 401 and the echo.
    alice.send("@label=two PRIVMSG #r,nobody :both")
    alice.send("PING :after")
    got = alice.collect_until("PONG")
    starts = [m for m in got if m.command == "BATCH" and m.tags.get("label") == "two"]
    assert len(starts) == 1 and starts[0].param(1) == "labeled-response"
    ref = starts[0].param(0)[1:]
    inside = [m.command for m in got if m.tags.get("batch") == ref]
    assert sorted(inside) == ["401", "PRIVMSG"]

    # Without echo-message the answer is an ACK, once Redis has sequenced the message.
    carol = cluster.client("a", "carol", caps=["labeled-response", "message-tags"])
    carol.join("#r")
    carol.send("@label=three PRIVMSG #r :quiet")
    assert carol.expect(lambda m: m.tags.get("label") == "three").command == "ACK"


def test_fail_while_the_link_is_down_carries_label_and_target(cluster: Cluster) -> None:
    alice, _ = two_in_a_room(cluster, LABELED)
    cluster.redis.stop()
    alice.expect("NOTICE", pattern="Cluster link lost", timeout=10)
    alice.send("@label=down PRIVMSG #r :anyone?")
    fail = alice.expect("FAIL")
    assert fail.tags.get("label") == "down"
    assert fail.params[:3] == ["PRIVMSG", "CLUSTER_UNAVAILABLE", "#r"]


@contextmanager
def redis_frozen(cluster: Cluster) -> Iterator[None]:
    """Redis stands still (SIGSTOP): connections stay open, nothing is answered."""
    pid = cluster.redis.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def check_outage(cluster: Cluster, frozen_for: float) -> dict[str, int]:
    """Labeled messages from alice while Redis is frozen for ``frozen_for`` seconds;
    every one gets one labeled answer that tells the truth about what bob got."""
    alice, bob = two_in_a_room(cluster, LABELED)
    alice.received.clear()
    count = 0
    with redis_frozen(cluster):
        end = time.monotonic() + 2.6  # past the link's 2 s timeout: some after "down"
        while time.monotonic() < end:
            alice.send(f"@label=L{count} PRIVMSG #r :m{count}")
            count += 1
            time.sleep(0.1)
        time.sleep(max(0.0, frozen_for - 2.6))
    labels = [f"L{i}" for i in range(count)]

    def answered() -> bool:
        if not all(labeled(alice, label) for label in labels):
            return False
        maybe = sum(1 for m in alice.received if m.command == "FAIL" and "may not" in m.param(3))
        notes = sum(1 for m in alice.received if m.command == "NOTE")
        return notes == maybe

    read_until(alice, answered, timeout=25)
    # A last message: in stream order, bob has everything before it once he has it.
    alice.send("PRIVMSG #r :end")
    bob.expect(lambda m: m.command == "PRIVMSG" and m.param(1) == "end", timeout=15)
    got_bob = {
        m.param(1): m.tags["msgid"]
        for m in bob.received
        if m.command == "PRIVMSG" and m.param(1) != "end"
    }
    copies = [m.param(1) for m in bob.received if m.command == "PRIVMSG"]
    assert len(copies) == len(set(copies))  # nothing twice
    outcome = {"echo": 0, "not_sent": 0, "maybe": 0}
    late_msgids = {
        m.param(3) for m in alice.received if m.command == "NOTE" and m.param(1) == "DELIVERED_LATE"
    }
    not_delivered = sum(
        1 for m in alice.received if m.command == "NOTE" and m.param(1) == "NOT_DELIVERED"
    )
    maybe_texts = []
    for i, label in enumerate(labels):
        answers = labeled(alice, label)
        assert len(answers) == 1, (label, answers)
        answer = answers[0]
        if answer.command == "PRIVMSG":
            outcome["echo"] += 1
            assert got_bob.get(f"m{i}") == answer.tags["msgid"]
            continue
        assert answer.command == "FAIL", answer
        assert answer.params[:3] == ["PRIVMSG", "CLUSTER_UNAVAILABLE", "#r"]
        if "may not" in answer.param(3):
            outcome["maybe"] += 1
            maybe_texts.append(f"m{i}")
        else:
            outcome["not_sent"] += 1
            assert f"m{i}" not in got_bob, f"m{i} was FAILed as not sent, yet delivered"
    # Each "may not have been delivered" got its NOTE: delivered late (bob has it, with
    # that msgid) or not delivered (bob never got it).
    late = [t for t in maybe_texts if t in got_bob]
    assert {got_bob[t] for t in late} == late_msgids
    assert len(maybe_texts) - len(late) == not_delivered
    return outcome


def test_outage_shorter_than_the_hold_is_answered_truthfully(cluster: Cluster) -> None:
    outcome = check_outage(cluster, frozen_for=3.0)
    assert outcome["maybe"] == 0  # known within the 5 s hold: echo, or certain FAIL
    assert outcome["not_sent"] > 0
    print(outcome)


def test_outage_longer_than_the_hold_tells_the_fate_later(cluster: Cluster) -> None:
    outcome = check_outage(cluster, frozen_for=6.5)
    assert outcome["maybe"] > 0
    print(outcome)


def test_retry_with_the_same_once_token_is_delivered_once(cluster: Cluster) -> None:
    alice, bob = two_in_a_room(cluster, LABELED)
    alice.send("@label=first;+distchat/once=abc123 PRIVMSG #r :only once")
    first = alice.expect(lambda m: m.tags.get("label") == "first")
    alice.send("@label=retry;+distchat/once=abc123 PRIVMSG #r :only once")
    retry = alice.expect(lambda m: m.tags.get("label") == "retry")
    assert retry.command == "PRIVMSG" and retry.tags["msgid"] == first.tags["msgid"]
    assert retry.tags["time"] == first.tags["time"]
    alice.send("@label=other;+distchat/once=xyz PRIVMSG #r :another")
    alice.expect(lambda m: m.tags.get("label") == "other")
    bob.expect("PRIVMSG", pattern="another")  # in stream order, after any duplicate
    texts = [m.param(1) for m in bob.received if m.command == "PRIVMSG"]
    assert texts == ["only once", "another"]
