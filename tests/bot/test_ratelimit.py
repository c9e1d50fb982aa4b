"""Token buckets with an injected clock: no sleeping to test time."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, Rate
from bot.ratelimit import RequestLimits, TokenBucket, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_parse() -> None:
    assert Rate.parse("4/60") == Rate(4, 60.0)
    assert Rate.parse("3") == Rate(3, 60.0)
    assert not Rate.parse("off").enabled
    assert str(Rate.parse("2/0.5")) == "2/0.5"
    for bad in ("x/1", "1/0", "-1/5", "1/y"):
        with pytest.raises(ConfigError):
            Rate.parse(bad)


def test_bucket_allows_burst_then_refills() -> None:
    clock = Clock()
    bucket = TokenBucket(Rate(3, 30.0), clock)  # 3 at once, then one per 10 s
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time() == pytest.approx(10.0)
    clock.now += 9.9
    assert not bucket.take()
    clock.now += 0.2
    assert bucket.take()


def test_disabled_rate_never_limits() -> None:
    bucket = TokenBucket(Rate(0, 1.0), Clock())
    assert all(bucket.take() for _ in range(1000))
    assert bucket.wait_time() == 0


def test_user_limit_warns_once_per_empty_spell() -> None:
    clock = Clock()
    limits = RequestLimits(Rate(2, 20.0), Rate(100, 1.0), clock)
    assert limits.check("alice", "#r").allowed
    assert limits.check("Alice", "#r").allowed  # same user, other case
    v = limits.check("ALICE", "#r")
    assert not v.allowed and v.who == "user" and v.warn
    assert v.wait == pytest.approx(10.0)
    again = limits.check("alice", "#r")
    assert not again.allowed and not again.warn  # the warning itself is not repeated
    assert limits.check("bob", "#r").allowed  # others are not affected
    clock.now += 10
    assert limits.check("alice", "#r").allowed
    clock.now += 0.1
    assert limits.check("alice", "#r").warn  # a new empty spell warns again


def test_room_limit_queues_a_window_of_questions_then_refuses_each_asker_once() -> None:
    clock = Clock()
    limits = RequestLimits(Rate(10, 1.0), Rate(2, 60.0), clock)
    assert limits.check("a", "#r") == Verdict(True)
    assert limits.check("b", "#R") == Verdict(True)
    # Over the room's rate: held until the room earns a token back (one per 30 s) ...
    held = [limits.check(nick, "#r") for nick in ("c", "d")]
    assert all(v.allowed for v in held)
    assert [v.delay for v in held] == [pytest.approx(30.0), pytest.approx(60.0)]
    # ... up to one window's worth; then refused, and every asker is told, once.
    e = limits.check("e", "#r")
    assert not e.allowed and e.who == "room" and e.warn
    assert e.wait == pytest.approx(30.0)  # then a place in the queue is free again
    assert not limits.check("e", "#r").warn
    f = limits.check("f", "#r")
    assert not f.allowed and f.warn  # another asker is not dropped without a word
    assert limits.check("c", "#other") == Verdict(True)
    assert limits.check("c", None) == Verdict(True)  # direct messages have no room bucket
    clock.now += 30
    assert limits.check("e", "#r").allowed


def test_refused_request_costs_no_tokens() -> None:
    clock = Clock()
    limits = RequestLimits(Rate(1, 10.0), Rate(1, 100.0), clock)
    assert limits.check("a", "#r").allowed
    assert not limits.check("a", "#other").allowed  # a's own limit: #other's token kept
    assert limits.check("b", "#other") == Verdict(True)


def test_a_room_can_have_its_own_rate() -> None:
    clock = Clock()
    rates = {"#busy": Rate(3, 60.0)}
    limits = RequestLimits(
        Rate(0, 1.0),
        Rate(1, 60.0),
        clock,
        room_rate_for=lambda r: rates.get(r.lower(), Rate(1, 60.0)),
    )
    busy = [limits.check("a", "#BUSY") for _ in range(7)]
    assert [v.allowed for v in busy] == [True] * 6 + [False]
    assert [v.delay > 0 for v in busy[:6]] == [False] * 3 + [True] * 3
    quiet = [limits.check("a", "#quiet") for _ in range(3)]
    assert [(v.allowed, v.delay > 0) for v in quiet] == [
        (True, False),
        (True, True),
        (False, False),
    ]


def test_reserve_borrows_up_to_the_limit() -> None:
    clock = Clock()
    bucket = TokenBucket(Rate(2, 20.0), clock)
    assert [bucket.reserve(20.0) for _ in range(4)] == [0.0, 0.0, 10.0, 20.0]
    assert bucket.reserve(20.0) is None
    assert bucket.wait_time() == pytest.approx(30.0)
