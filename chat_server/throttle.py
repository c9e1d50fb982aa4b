"""Slowing down password guessing per address, across reconnects (OPER now, SASL later).

Flood control refills with every new connection, so on its own it let one address try
about 94,000 OPER passwords a second by reconnecting. Here each address gets a few free
failures, then must wait twice as long after every further one (2 s, 4 s, 8 s, … up
to 5 minutes). While it waits, the caller answers "wrong" without checking anything,
so a guess made then costs the server nothing and tells the guesser nothing.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("chat_server")


@dataclass(slots=True)
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0
    refused: int = 0  # attempts answered without a check while blocked
    logged_at: float = float("-inf")
    unlogged: int = 0  # failures since the last log line


class FailureThrottle:
    """Failed attempts by key (an address); exponential delay; bounded; rate-limited logs."""

    def __init__(
        self,
        what: str,
        *,
        free_failures: int = 3,
        base_delay: float = 2.0,
        max_delay: float = 300.0,
        forget_after: float = 3600.0,
        capacity: int = 10_000,
        log_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.capacity = capacity
        self.log_interval = log_interval
        self.clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()  # least recent first

    def blocked(self, key: str) -> bool:
        """True while ``key`` must wait: answer as a failure without checking."""
        record = self._records.get(key)
        if record is None or self.clock() >= record.blocked_until:
            return False
        record.refused += 1
        return True

    def delay(self, key: str) -> float:
        """Seconds ``key`` still has to wait (0 when it may try)."""
        record = self._records.get(key)
        return 0.0 if record is None else max(0.0, record.blocked_until - self.clock())

    def failed(self, key: str, detail: str = "") -> None:
        """Count a failed attempt by ``key``; ``detail`` (e.g. the name tried) is logged
        as a repr, since it comes from the client."""
        now = self.clock()
        record = self._records.get(key)
        if record is None or now - record.last_failure > self.forget_after:
            record = _Record()
        self._records[key] = record
        self._records.move_to_end(key)
        while len(self._records) > self.capacity:
            self._records.popitem(last=False)
        record.failures += 1
        record.last_failure = now
        record.unlogged += 1
        over = record.failures - self.free_failures
        if over > 0:
            wait = min(self.max_delay, self.base_delay * 2 ** min(over - 1, 30))
            record.blocked_until = now + wait
        if now - record.logged_at >= self.log_interval:
            log.warning(
                "%s failed from %s%s: %d failure(s) since last report, %d in a row, "
                "%d refused while waiting; next try in %.0f s",
                self.what,
                key,
                f" ({detail!r})" if detail else "",
                record.unlogged,
                record.failures,
                record.refused,
                max(0.0, record.blocked_until - now),
            )
            record.logged_at = now
            record.unlogged = 0
            record.refused = 0

    def succeeded(self, key: str) -> None:
        """A right answer from ``key``: forget its failures."""
        self._records.pop(key, None)

    def __len__(self) -> int:
        return len(self._records)
