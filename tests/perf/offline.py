"""A chat-perf worker with no server: its clients get socket pairs, so a test writes
exactly the bytes a server would and drives the receive path itself."""

from __future__ import annotations

import socket

from perf.connection import READY, Client
from perf.scenario import builtin, plan
from perf.worker import Worker, WorkerConfig


def offline_worker(msg_size: int = 64) -> Worker:
    """A worker hosting a fanout room: senders 0 and 1, receivers 2-5, none connected."""
    scn = builtin("fanout", clients=6, senders=2, msg_size=msg_size)
    layout = plan(scn, 1, "tt")
    rooms = {c.index: c.rooms[0] for c in layout.clients if c.sender}
    cfg = WorkerConfig(0, "127.0.0.1", 0, scn, layout.for_worker(0), 0, 1.0, 1_000_000,
                       1000, rooms)  # fmt: skip
    worker = Worker(None, cfg)  # type: ignore[arg-type]
    worker.started = True
    return worker


def attach(client: Client) -> socket.socket:
    """Connect ``client`` to a socket pair; returns the server's end."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    client.sock = ours
    client.state = READY
    return theirs
