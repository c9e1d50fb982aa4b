"""Unit tests: sequence tracking, loss accounting, payload format, raw sampling."""

from __future__ import annotations

import itertools

import pytest

from perf.measurements import RawSample
from perf.payload import parse_body, privmsg
from perf.sequence import DUPS, HI, REORDERS, UNIQUE, StreamTally, account, new_state, observe


def _observe_all(seqs: list[int]) -> list:
    st = new_state()
    for q in seqs:
        observe(st, q)
    return st


@pytest.mark.parametrize(
    ("seqs", "unique", "dups", "reorders", "gaps"),
    [
        ([1, 2, 3, 4], 4, 0, 0, 0),
        ([1, 3, 4], 3, 0, 0, 1),
        ([1, 3, 2, 4], 4, 0, 1, 0),
        ([1, 2, 2, 3], 3, 1, 0, 0),
        ([2, 1, 1], 2, 1, 1, 0),
        ([5], 1, 0, 0, 4),
    ],
)
def test_tracker_counts(seqs: list[int], unique: int, dups: int, reorders: int, gaps: int) -> None:
    st = _observe_all(seqs)
    assert st[UNIQUE] == unique
    assert st[DUPS] == dups
    assert st[REORDERS] == reorders
    assert len(st[2] or ()) == gaps
    assert st[HI] == max(seqs)


def test_accounting_adds_up_with_gaps_tail_and_silent_receivers() -> None:
    # Sender 1 sent 10 messages to #a; 3 receivers should get them.
    sent = {(1, "#a"): 10}
    tally = StreamTally()
    tally.add_state(_observe_all(list(range(1, 11))))  # got everything
    tally.add_state(_observe_all([1, 2, 4, 5, 6, 7]))  # a gap (3) and a tail (8..10)
    # the third receiver saw nothing at all
    acc = account(sent, {(1, "#a"): tally}, {(1, "#a"): 3})
    assert acc.expected == 30
    assert acc.delivered == 16
    assert acc.lost == 1 + 3 + 10
    assert acc.balanced


def test_accounting_flags_deliveries_beyond_what_was_sent() -> None:
    tally = StreamTally()
    tally.add_state(_observe_all([1, 2, 3]))
    acc = account({(1, "#a"): 2}, {(1, "#a"): tally}, {(1, "#a"): 1})
    assert acc.overrun > 0
    assert not acc.balanced


@pytest.mark.parametrize("size", [0, 10, 64, 400])
def test_payload_round_trip(size: int) -> None:
    line = privmsg(b"#perf3", 17, 42, 123456789, size)
    assert line.endswith(b"\r\n")
    body = line.split(b" :", 1)[1].rstrip(b"\r\n")
    assert len(body) >= size
    relayed = b"@time=2024-01-01T00:00:00.000Z :pf1!u@h " + line
    assert parse_body(relayed) == (b"#perf3", 17, 42, 123456789)


def test_raw_sample_is_uniform_and_bounded() -> None:
    sample = RawSample(cap=100)
    seq = 0
    for chunk in range(500):
        found = []
        for _ in range(chunk % 7 + 1):
            seq += 1
            found.append((b"#a", b"1", str(seq).encode(), b"0"))
        sample.add_chunk(1000, 0, 0, found)
    kept = [row[3] for row in sample.rows]
    assert len(kept) <= 101
    steps = {b - a for a, b in itertools.pairwise(kept)}
    assert steps == {sample.stride}
    assert kept[0] == 1
