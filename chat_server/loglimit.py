"""Log lines that clients can cause, at a bounded rate.

A log line costs the server far more than the client line that caused it (formatting,
a traceback, a write): one client sending ``CAP LS ²`` in a loop once wrote 4,630
tracebacks a second. Every log call that a client's input can trigger goes through a
``LogLimiter``: per kind of event, at most ``burst`` lines per ``period`` seconds, then
one line saying how many were left out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass


@dataclass(slots=True)
class _Window:
    started: float
    logged: int = 0
    suppressed: int = 0


class LogLimiter:
    """Rate-limits log lines per ``kind`` (a short name for the event)."""

    def __init__(self, logger: logging.Logger, burst: int = 10, period: float = 60.0) -> None:
        self.logger = logger
        self.burst = burst
        self.period = period
        self._windows: dict[str, _Window] = {}

    def allow(self, kind: str) -> bool:
        """Whether a line of ``kind`` may be logged now (counts it either way)."""
        now = time.monotonic()
        window = self._windows.get(kind)
        if window is None or now - window.started >= self.period:
            if window is not None and window.suppressed:
                self.logger.warning(
                    "%d more %r log lines were left out in the last %.0f s",
                    window.suppressed, kind, now - window.started,
                )  # fmt: skip
            if len(self._windows) > 1000:  # kinds are few; never let the table grow
                self._windows.clear()
            window = self._windows[kind] = _Window(now)
        if window.logged < self.burst:
            window.logged += 1
            return True
        window.suppressed += 1
        return False

    def info(self, kind: str, msg: str, *args: object) -> None:
        if self.allow(kind):
            self.logger.info(msg, *args)

    def warning(self, kind: str, msg: str, *args: object) -> None:
        if self.allow(kind):
            self.logger.warning(msg, *args)

    def exception(self, kind: str, msg: str, *args: object) -> None:
        """``logger.exception`` (with the traceback) within the rate."""
        if self.allow(kind):
            self.logger.exception(msg, *args)
