"""Token buckets: per user and per room for requests, one for the bot's own sending.

A bucket holds up to ``count`` tokens and refills at ``count / per`` tokens a second,
so a quiet user can ask a few questions in a row while a fast one is slowed to the
configured average. Time is injectable so the tests need no sleeps.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.config import Rate
from chat_protocol.casemap import casefold

Clock = Callable[[], float]


class TokenBucket:
    """One bucket; ``take()`` spends a token if there is one."""

    def __init__(self, rate: Rate, clock: Clock = time.monotonic) -> None:
        self.capacity = float(rate.count)
        self.refill_per_second = rate.count / rate.per if rate.enabled else math.inf
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        if self.refill_per_second != math.inf:
            elapsed = now - self._stamp
            self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_second)
        self._stamp = now

    def take(self) -> bool:
        """Spend one token: True when allowed, False when the bucket is empty."""
        if self.refill_per_second == math.inf:
            return True
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until one token is available (0 when one is)."""
        if self.refill_per_second == math.inf:
            return 0.0
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.refill_per_second)

    @property
    def full(self) -> bool:
        self._refill()
        return self._tokens >= self.capacity


@dataclass(slots=True)
class Verdict:
    """The answer of RequestLimits.check: allowed, or who must wait and how long."""

    allowed: bool
    wait: float = 0.0
    who: str = ""  # "user" or "room"
    warn: bool = False  # tell the asker (only once per empty bucket, so warnings can't flood)


class RequestLimits:
    """Per-user and per-room request limits, with one 'please wait' per empty spell."""

    def __init__(
        self,
        user_rate: Rate,
        room_rate: Rate,
        clock: Clock = time.monotonic,
        room_rate_for: Callable[[str], Rate] | None = None,
    ) -> None:
        self.user_rate = user_rate
        self.room_rate = room_rate
        self._room_rate_for = room_rate_for  # a room's own rate, when rooms differ
        self._clock = clock
        self._users: dict[str, TokenBucket] = {}
        self._rooms: dict[str, TokenBucket] = {}
        self._warned: set[str] = set()

    def _bucket(self, table: dict[str, TokenBucket], key: str, rate: Rate) -> TokenBucket:
        bucket = table.get(key)
        if bucket is None:
            if len(table) > 10_000:
                # Forget buckets that refilled: they carry no state worth keeping.
                for k in [k for k, b in table.items() if b.full]:
                    del table[k]
            bucket = table[key] = TokenBucket(rate, self._clock)
        return bucket

    def check(self, user: str, room: str | None) -> Verdict:
        """Spend a token from the user's and the room's bucket, or say who must wait."""
        ukey = "u:" + casefold(user)
        user_bucket = self._bucket(self._users, ukey, self.user_rate)
        room_bucket = None
        rkey = ""
        if room is not None:
            rkey = "r:" + casefold(room)
            rate = self.room_rate if self._room_rate_for is None else self._room_rate_for(room)
            room_bucket = self._bucket(self._rooms, rkey, rate)
        # Check both before spending, so a refused request costs nothing.
        if user_bucket.wait_time() > 0:
            return self._refuse(ukey, "user", user_bucket.wait_time())
        if room_bucket is not None and room_bucket.wait_time() > 0:
            return self._refuse(rkey, "room", room_bucket.wait_time())
        user_bucket.take()
        if room_bucket is not None:
            room_bucket.take()
        self._warned.discard(ukey)
        self._warned.discard(rkey)
        return Verdict(True)

    def _refuse(self, key: str, who: str, wait: float) -> Verdict:
        warn = key not in self._warned
        self._warned.add(key)
        return Verdict(False, wait, who, warn)


class SendPacer:
    """Paces the bot's own lines so a long answer never trips the server's flood limit."""

    def __init__(self, rate: Rate, clock: Clock = time.monotonic) -> None:
        self._bucket = TokenBucket(rate, clock)
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait (FIFO across all rooms) until one more line may go out."""
        async with self._lock:
            while not self._bucket.take():
                await asyncio.sleep(self._bucket.wait_time())
