"""What a worker process is told to do (picklable, for the ``spawn`` start method)."""

from __future__ import annotations

from dataclasses import dataclass

from perf.scenario import ClientPlan, Scenario
from perf.tls import TlsSettings


@dataclass(slots=True)
class WorkerConfig:
    """Everything a worker needs; picklable so the ``spawn`` start method works."""

    worker_id: int
    host: str
    port: int
    scenario: Scenario
    plans: list[ClientPlan]
    connect_start_us: int
    register_timeout_s: float
    interval_us: int
    raw_cap: int
    sender_rooms: dict[int, str]  # every sender of the run (any worker) -> its room
    more_targets: tuple[tuple[str, int], ...] = ()  # other nodes of a cluster
    tls: TlsSettings | None = None  # clients speak TLS (the target is a TLS port)

    def address_of(self, client_index: int) -> tuple[str, int]:
        """Where a client connects: clients are dealt round-robin over the targets."""
        if not self.more_targets:
            return self.host, self.port
        targets = ((self.host, self.port), *self.more_targets)
        return targets[client_index % len(targets)]
