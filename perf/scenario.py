"""Scenarios (who connects, who joins which room, who sends how fast) and their layout.

A layout is computed once by the coordinator and shipped to workers, so every process
agrees on which client is in which room and which worker hosts it: loss accounting
needs to know how many receivers each message should have reached.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True, slots=True)
class Scenario:
    """What to run. ``rate`` is messages per second summed over all senders."""

    name: str
    clients: int
    rooms: int
    senders: int
    rate: float | None = None
    saturate: bool = False
    duration: float = 10.0
    ramp_up: float = 0.0
    msg_size: int = 64
    window: int = 20
    storm: bool = False

    def validate(self) -> None:
        """Raise ValueError with a user-facing message for settings that cannot run."""
        if self.clients < 1:
            raise ValueError("--clients must be at least 1")
        if self.storm:
            return
        if self.rooms < 1:
            raise ValueError("--rooms must be at least 1")
        if not 0 <= self.senders <= self.clients:
            raise ValueError("--senders must be between 0 and --clients")
        if self.senders and not self.saturate and not (self.rate and self.rate > 0):
            raise ValueError("give --rate MSGS_PER_S (> 0) or --saturate")
        if self.duration <= 0:
            raise ValueError("--duration must be positive")
        if self.window < 1:
            raise ValueError("--window must be at least 1")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


BUILTIN: dict[str, Scenario] = {
    # Issue 2's latency target: 200 clients in 20 rooms at 1 message a second each.
    "chat": Scenario("chat", clients=200, rooms=20, senders=200, rate=200.0),
    # Issue 2's fan-out target: 100 clients in one room, 5 senders as fast as possible.
    # 100 messages in flight per sender: with 20 the pipe held too little to keep either
    # server busy (both idled about half the time waiting for the round trip), so the
    # scenario measured the round trip, not how fast the server fans out.
    "fanout": Scenario("fanout", clients=100, rooms=1, senders=5, saturate=True, window=100),
    # Issue 13's flow-control target: the fanout room with 1,000 messages in flight per
    # sender, 5,000 at once (~495,000 deliveries owed). Receivers fall far behind for a
    # moment; a server must hold them back by backpressure, not cut them: the run is
    # judged by its disconnects and lost deliveries as much as by its rate.
    "burst": Scenario("burst", clients=100, rooms=1, senders=5, saturate=True, window=1000),
    # Issue 2's busy-rooms target: 200 clients in 20 rooms, everyone sending flat out.
    "rooms": Scenario("rooms", clients=200, rooms=20, senders=200, saturate=True, window=4),
    # Issue 2's registration target: 1,000 clients connecting at the same instant.
    "storm": Scenario("storm", clients=1000, rooms=0, senders=0, storm=True),
}


def builtin(name: str, **overrides: object) -> Scenario:
    """A built-in scenario with some fields replaced (``None`` values are ignored)."""
    try:
        base = BUILTIN[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(BUILTIN)}") from None
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(slots=True)
class ClientPlan:
    """One simulated user: its index (also its sender id), nick, rooms and role."""

    index: int
    nick: str
    rooms: list[str]
    sender: bool
    worker: int
    witness: int | None = None  # a co-located receiver whose receipt acks our messages


@dataclass(slots=True)
class Layout:
    """Every client's plan plus per-room membership, shared by all processes."""

    clients: list[ClientPlan]
    members: dict[str, list[int]] = field(default_factory=dict)
    workers: int = 1

    def for_worker(self, worker: int) -> list[ClientPlan]:
        return [c for c in self.clients if c.worker == worker]


def room_name(index: int) -> str:
    return f"#perf{index}"


def nick_for(index: int, tag: str) -> str:
    """Short nicks (<= 9 chars, RFC 2812's limit) unique within a run."""
    return f"p{tag}{_base36(index)}"


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def plan(scenario: Scenario, workers: int, tag: str) -> Layout:
    """Assign clients to rooms and workers.

    Client ``i`` joins room ``i % rooms``; the first ``senders`` clients send, which
    spreads senders evenly across rooms. When there are at least as many rooms as
    workers, each room lives wholly in one worker so a sender's witness is local; with
    fewer rooms, members are dealt round-robin so every worker gets senders and receivers.
    """
    n = scenario.clients
    workers = max(1, min(workers, n))
    rooms = 0 if scenario.storm else scenario.rooms
    plans: list[ClientPlan] = []
    for i in range(n):
        room_rooms = [room_name(i % rooms)] if rooms else []
        worker = i % rooms % workers if rooms >= workers and rooms else i % workers
        sender = not scenario.storm and i < scenario.senders
        plans.append(ClientPlan(i, nick_for(i, tag), room_rooms, sender, worker))
    members: dict[str, list[int]] = {}
    for c in plans:
        for r in c.rooms:
            members.setdefault(r, []).append(c.index)
    for c in plans:
        if c.sender and c.rooms:
            c.witness = _pick_witness(c, members[c.rooms[0]], plans)
    return Layout(plans, members, workers)


def _pick_witness(
    sender: ClientPlan, room_members: list[int], plans: list[ClientPlan]
) -> int | None:
    """A receiver in the same room and worker, preferring non-senders (less busy)."""
    local = [m for m in room_members if m != sender.index and plans[m].worker == sender.worker]
    if not local:
        return None
    quiet = [m for m in local if not plans[m].sender]
    pool = quiet or local
    # Spread witness duty so no single receiver acks every sender.
    return pool[sender.index % len(pool)]


def default_workers(clients: int, cpus: int) -> int:
    """One worker per usable CPU, but no worker for fewer than ~50 clients."""
    return max(1, min(cpus, 8, math.ceil(clients / 50)))
