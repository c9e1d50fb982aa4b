"""Unit tests of the vectorised receive path: line scanner, stream accounting, batching.

The scanner must read exactly what the old per-line regex read (and hand everything
else to the slow path), whatever the server puts before the body and wherever recv()
happens to split the stream.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from perf import histogram as hg
from perf.clock import now_us
from perf.linescan import LineScanner
from perf.payload import TAIL_LEN, body_len, parse_body, privmsg
from perf.sequence import DUPS, GAPS, HI, REORDERS, UNIQUE, new_state, observe
from perf.streams import ECHO, NEW, StreamTable
from tests.perf.offline import attach, offline_worker

ROOMS = {0: b"#perf0", 1: b"#perf1", 7: b"#perf0"}
TAGS = b"@time=2026-01-01T00:00:00.000Z;msgid=abc123 "
NGIRCD = b":pab7!~pab7@localhost "
OURS = TAGS + b":pab0!pab0@127.0.0.1 "


def scan(lines: list[bytes], size: int = 64) -> tuple[LineScanner, object]:
    scanner = LineScanner(body_len(size), ROOMS)
    return scanner, scanner.scan(np.frombuffer(b"".join(lines), dtype=np.uint8))


@pytest.mark.parametrize("size", [0, 40, 41, 64, 400])
@pytest.mark.parametrize(
    "source", [OURS, NGIRCD, b":x ", b""], ids=["tags", "ngircd", "short", "none"]
)
def test_scanner_reads_every_field_whatever_comes_before_the_body(size: int, source: bytes) -> None:
    lines = [
        b"PING :bench.ngircd.local\r\n",
        source + privmsg(b"#perf0", 7, 12, 987_654_321_012, size),
        source + privmsg(b"#perf1", 1, 999_999_999_999_999, 5, size),
        b":srv 366 me #perf0 :End of NAMES list\r\n",
    ]
    _, res = scan(lines, size)
    assert len(res) == 4
    # A line with no source at the very start of a buffer cannot hold " PRIVMSG" before
    # its body; it goes to the slow path, which still reads it (see the batching test).
    fast = bool(source)
    assert res.ok.tolist() == [False, fast, fast, False]
    if fast:
        assert res.sender[1:3].tolist() == [7, 1]
        assert res.seq[1:3].tolist() == [12, 999_999_999_999_999]
        assert res.sched[1:3].tolist() == [987_654_321_012, 5]
    for line in lines[1:3]:
        assert parse_body(line) is not None


def test_scanner_accepts_bare_lf_and_rejects_damaged_payloads() -> None:
    good = NGIRCD + privmsg(b"#perf0", 0, 3, 44, 64)
    digit = good.rindex(b"~") + 3
    lines = [
        good[:-2] + b"\n",  # LF without CR
        good[:digit] + b":" + good[digit + 1 :],  # 0x3A is not a digit
        good[:digit] + b"/" + good[digit + 1 :],  # 0x2F neither
        good[: digit - 3] + b"-" + good[digit - 2 :],  # marker gone
        good.replace(b"#perf0", b"#perf9"),  # sender 0 does not speak in #perf9
        good.replace(b"PRIVMSG", b"NOTICE!"),
        NGIRCD + privmsg(b"#perf0", 5, 1, 1, 64),  # 5 is not a sender of this run
        NGIRCD + privmsg(b"#perf0", 0, 1, 1, 80),  # body longer than this run's
        b"\r\n",
        good,
    ]
    _, res = scan(lines)
    assert res.ok.tolist() == [True] + [False] * 8 + [True]
    assert res.seq[[0, 9]].tolist() == [3, 3]


def test_scanner_on_garbage_never_reads_outside_the_buffer() -> None:
    rng = random.Random(5)
    scanner = LineScanner(body_len(64), ROOMS)
    for _ in range(200):
        n = rng.randrange(0, 300)
        blob = bytes(rng.choice(b"~.0123456789 :\r\nPRIVMSG#perf") for _ in range(n)) + b"\n"
        res = scanner.scan(np.frombuffer(blob, dtype=np.uint8))
        assert len(res) == blob.count(b"\n")
        assert not res.ok.any()


def test_tail_has_the_documented_width() -> None:
    line = privmsg(b"#r", 3, 4, 5, 0)
    assert len(line.split(b" :", 1)[1].rstrip(b"\r\n")) == TAIL_LEN


def _scalar(seqs: list[int]) -> list:
    st = new_state()
    for q in seqs:
        observe(st, q)
    return st


def test_stream_table_counts_like_the_scalar_tracker() -> None:
    """Random batches with loss, duplicates and reordering, streams interleaved."""
    rng = random.Random(11)
    streams = StreamTable(own=[100, 101, 102], senders=[0, 1, 2])
    ids = {(r, s): streams.add(r, s) for r in range(3) for s in range(3)}
    arrivals: dict[int, list[int]] = {i: [] for i in ids.values()}
    nxt = dict.fromkeys(ids.values(), 1)
    for _ in range(300):
        batch_s, batch_q = [], []
        for _ in range(rng.randrange(1, 40)):
            sid = rng.choice(list(ids.values()))
            roll = rng.random()
            if roll < 0.05:
                q = max(1, nxt[sid] - rng.randrange(1, 4))  # duplicate or late
            elif roll < 0.1:
                nxt[sid] += rng.randrange(1, 3)  # loss
                q = nxt[sid]
                nxt[sid] += 1
            else:
                q = nxt[sid]
                nxt[sid] += 1
            batch_s.append(sid)
            batch_q.append(q)
            arrivals[sid].append(q)
        streams.observe(np.array(batch_s, dtype=np.int64), np.array(batch_q, dtype=np.int64))
    for sid, seqs in arrivals.items():
        want = _scalar(seqs)
        got = streams.tally(sid)
        assert (got.sum_hi, got.unique) == (want[HI], want[UNIQUE])
        assert got.gaps == len(want[GAPS] or ())
        assert (got.dups, got.reorders) == (want[DUPS], want[REORDERS])


def test_stream_lookup_marks_echoes_and_new_streams() -> None:
    for dense in (True, False):
        streams = StreamTable(own=[0, 50], senders=[0, 1])
        streams.dense = dense and streams.dense
        s = streams.add(1, 1)
        got = streams.lookup(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
        assert got.tolist() == [ECHO, NEW, NEW, s]


def test_bucket_counts_match_sorting() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([(rng.lognormal(6, 2, 20_000) + 1).astype(np.int64), [1, 2047, 2048]])
    keys, counts = hg.bucket_counts(values)
    arr = np.clip(values, hg.LOWEST_US, hg.HIGHEST_US)
    shift = np.maximum(0, np.floor(np.log2(arr)).astype(np.int64) - (hg.SIG_BITS - 1))
    want_v, want_c = np.unique((arr >> shift) << shift, return_counts=True)
    assert hg.key_values(keys).tolist() == want_v.tolist()
    assert counts.tolist() == want_c.tolist()


# -- the whole path: recv() splits, slow path, accounting ----------------------------


def test_lines_split_anywhere_by_recv_are_counted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = offline_worker()
    rx = worker.rx
    receiver = worker.clients[5]
    server = attach(receiver)
    control: list[bytes] = []
    monkeypatch.setattr(receiver, "on_control_line", lambda raw, now: control.append(raw))
    sent = now_us()  # read() stamps its own receive time, after this
    stream = b"".join(
        [OURS + privmsg(b"#perf0", 0, q, sent, 64) for q in range(1, 6)]
        + [b"PING :x\r\n"]
        + [NGIRCD.replace(b"pab7", b"pab1") + privmsg(b"#perf0", 1, q, sent, 64) for q in (1, 2)]
    )
    rng = random.Random(2)
    cuts = sorted(rng.sample(range(1, len(stream)), 40))
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        server.sendall(stream[a:b])
        rx.read(receiver)
        if rng.random() < 0.5:
            rx.process()
    rx.process()
    assert receiver.rbuf == b""
    assert worker.meas.delivered_total == 7
    assert [t.as_tuple() for t in rx.tallies().values()] == [(1, 5, 5, 0, 0, 0), (1, 2, 2, 0, 0, 0)]
    assert control == [b"PING :x\r\n"]
    worker.meas.flush(3_000)
    assert worker.meas.total.get_total_count() == 7
    server.close()


def test_slow_path_keeps_odd_renderings_and_stray_rooms() -> None:
    worker = offline_worker(msg_size=0)
    rx = worker.rx
    receiver = worker.clients[4]
    server = attach(receiver)
    tail = privmsg(b"#perf0", 0, 2, 1_000, 0).split(b" :", 1)[1]
    server.sendall(
        NGIRCD + privmsg(b"#perf0", 0, 1, 1_000, 0)
        + NGIRCD + b"PRIVMSG #perf0 " + tail  # no ':' before a body without spaces
        + NGIRCD + privmsg(b"#perf0", 0, 3, 1_000, 0)
        + NGIRCD + privmsg(b"#elsewhere", 1, 1, 1_000, 0)  # relayed to the wrong room
    )  # fmt: skip
    rx.read(receiver)
    rx.process()
    tallies = {k: v.as_tuple() for k, v in rx.tallies().items()}
    assert tallies[(0, "#perf0")] == (1, 3, 3, 0, 0, 0)
    assert tallies[(1, "#elsewhere")] == (1, 1, 1, 0, 0, 0)
    server.close()


def test_echoes_ack_their_sender() -> None:
    worker = offline_worker()
    sender = worker.clients[0]
    sender.echo_ack = True
    sender.in_flight = 3
    server = attach(sender)
    server.sendall(b"".join(OURS + privmsg(b"#perf0", 0, q, 1_000, 64) for q in (1, 2)))
    worker.rx.read(sender)
    worker.rx.process()
    assert sender.in_flight == 1 and sender in worker.wants_send
    assert worker.meas.delivered_total == 0
    server.close()
