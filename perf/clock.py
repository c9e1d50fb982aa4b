"""The one clock every measurement uses: monotonic microseconds, shared by all processes
of a run (CLOCK_MONOTONIC is system-wide), so a time taken in one worker can be
subtracted from a time taken in another."""

from __future__ import annotations

import time


def now_us() -> int:
    return time.monotonic_ns() // 1000
