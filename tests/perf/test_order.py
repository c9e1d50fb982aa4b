"""The same-order check: every member of a room must see one interleaving of its senders.

Unit level: receivers' logs fed to the comparison directly, and lines fed through a real
worker's receive path over socket pairs. The real-server runs are in test_runs.py and
test_servers.py.
"""

from __future__ import annotations

import numpy as np

from perf.order import (
    SLOT_SHIFT,
    ArrivalLog,
    ArrivalOrders,
    compare_orders,
    message_key,
)
from perf.payload import privmsg
from perf.thresholds import evaluate, parse
from tests.perf.offline import attach, offline_worker

A, B, C = 3, 5, 8  # sender ids


def keys(*msgs: tuple[int, int]) -> np.ndarray:
    """Message keys of (sender, seq) pairs, in the order given."""
    arr = np.array(msgs, dtype=np.int64).reshape(-1, 2)
    return message_key(arr[:, 0], arr[:, 1])


def log(stride: int = 1, **rooms: dict[int, np.ndarray]) -> ArrivalOrders:
    return ArrivalOrders(
        stride, {(f"#{room}", rid): k for room, got in rooms.items() for rid, k in got.items()}
    )


def test_a_swapped_pair_of_two_senders_is_flagged() -> None:
    same = keys((A, 1), (B, 1), (A, 2), (B, 2), (A, 3))
    swapped = keys((A, 1), (A, 2), (B, 1), (B, 2), (A, 3))  # B1 and A2 the other way round
    check = compare_orders([log(r={10: same, 11: swapped})])
    assert check.disagreements == 1
    assert (check.rooms, check.receivers, check.compared) == (1, 1, 5)
    assert (check.receivers_disagreeing, check.rooms_disagreeing) == (1, 1)
    assert check.examples == [
        "#r: receiver 11 got sender 3 #2 before sender 5 #1, receiver 10 the other way round"
    ]
    assert compare_orders([log(r={10: same, 11: same.copy()})]).disagreements == 0


def test_prefixes_suffixes_gaps_and_duplicates_compare_on_the_common_part() -> None:
    full = keys(*[(s, q) for q in range(1, 6) for s in (A, B, C)])  # 15 messages
    check = compare_orders(
        [
            log(
                r={
                    1: full,
                    2: full[4:],  # joined (or connected) late
                    3: full[:7],  # cut early
                    4: np.delete(full, [2, 9]),  # lost two
                    5: np.insert(full, 6, full[3]),  # a duplicate, late
                    6: full[:0],  # got nothing
                }
            )
        ]
    )
    assert check.disagreements == 0
    assert check.receivers == 5 and check.compared == 11 + 7 + 13 + 15 + 0


def test_rooms_and_workers_are_compared_separately_and_together() -> None:
    x = keys((A, 1), (B, 1), (A, 2))
    y = keys((C, 1), (C, 2))
    # Receivers of room r in two workers (the second thinned to 1 slot in 2); room s
    # has two receivers that disagree, room t one receiver only (nothing to compare).
    one = log(r={1: x}, s={2: y}, t={9: x})
    two = log(2, r={7: x[1:]}, s={8: y[::-1].copy()})
    check = compare_orders([one, two])
    assert check.rooms == 2 and check.stride == 2
    assert check.disagreements == 1 and check.rooms_disagreeing == 1
    assert check.examples[0].startswith("#s: receiver ")


def test_the_log_keeps_whole_time_slots_within_its_cap() -> None:
    log_ = ArrivalLog(cap=1000)
    slot = 1 << SLOT_SHIFT
    # 100 batches of 40 deliveries (receivers 0 and 1, senders A and B), one slot each.
    for k in range(100):
        sched = np.full(40, 1_000_000 * slot + k * slot + 7, dtype=np.int64)
        seq = np.repeat(np.arange(10 * k + 1, 10 * k + 11), 4)
        sender = np.tile([A, B, A, B], 10)
        slots = np.tile([0, 0, 1, 1], 10)
        log_.add(slots, sender, seq, sched)
    assert log_.stride == 4 and log_.kept == 1000
    orders = log_.export(np.array([40, 41]), np.zeros(C + 1, dtype=np.int64), ["#r"]).orders
    assert set(orders) == {("#r", 40), ("#r", 41)}
    got = orders[("#r", 40)]
    assert len(got) == 25 * 20  # every fourth of the 100 slots, whole (20 keys each)
    assert np.array_equal(got, orders[("#r", 41)])  # both receivers kept the same ones
    assert compare_orders([ArrivalOrders(4, orders)]).disagreements == 0


def test_a_log_that_cannot_be_thinned_grows_instead() -> None:
    log_ = ArrivalLog(cap=100)
    for k in range(10):  # all scheduled in slot 0: no slot can be dropped
        n = np.arange(50, dtype=np.int64)
        log_.add(n % 2, n % 3, n + 50 * k, np.full(50, 7, dtype=np.int64))
    assert log_.kept == 500 and log_.cap >= 500


def test_order_disagreements_can_fail_the_run() -> None:
    summary = {"accounting": {"order_disagreements": 2}}
    assert evaluate([parse("order_disagreements>0")], summary) == [
        "order_disagreements>0: order_disagreements = 2 (limit > 0)"
    ]
    none = {"accounting": {"order_disagreements": 0}}
    assert evaluate([parse("order_disagreements>0")], none) == []


# -- through a worker's receive path ------------------------------------------------------


def _relay(sender: int, seq: int) -> bytes:
    return b":pab%d!u@h " % sender + privmsg(b"#perf0", sender, seq, 1_000_000, 64)


def test_the_receive_path_logs_each_receivers_order() -> None:
    worker = offline_worker()
    rx = worker.rx
    plain = [(0, 1), (1, 1), (0, 2), (1, 2), (0, 3)]
    swapped = [(0, 1), (0, 2), (1, 1), (1, 2), (0, 3)]
    peers = []
    try:
        for idx, order in ((2, plain), (3, plain), (4, swapped)):
            client = worker.clients[idx]
            peers.append(attach(client))
            # Two reads per receiver, measured in separate batches: order spans batches.
            peers[-1].sendall(b"".join(_relay(s, q) for s, q in order[:2]))
            rx.read(client)
            rx.process()
            peers[-1].sendall(b"".join(_relay(s, q) for s, q in order[2:]))
            rx.read(client)
        rx.process()
        orders = rx.arrival_orders()
        assert set(orders.orders) == {("#perf0", 2), ("#perf0", 3), ("#perf0", 4)}
        assert orders.orders[("#perf0", 4)].tolist() == keys(*swapped).tolist()
        check = compare_orders([orders])
        assert check.disagreements == 1 and check.receivers_disagreeing == 1
        assert "receiver 4 got sender 0 #2 before sender 1 #1" in check.examples[0]
        assert [t.reorders for t in rx.tallies().values()] == [0, 0]  # no stream reordered
    finally:
        for peer in peers:
            peer.close()
        for c in worker.clients:
            if c.sock is not None:
                c.sock.close()
