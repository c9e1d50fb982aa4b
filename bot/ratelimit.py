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

    def reserve(self, max_wait: float) -> float | None:
        """Spend a token now or borrow the next one: the seconds until it is really
        there (0 when it is), or None when that would be more than ``max_wait``."""
        if self.refill_per_second == math.inf:
            return 0.0
        self._refill()
        wait = max(0.0, (1.0 - self._tokens) / self.refill_per_second)
        if wait > max_wait:
            return None
        self._tokens -= 1.0  # may go below zero: later requests wait longer
        return wait

    @property
    def full(self) -> bool:
        self._refill()
        return self._tokens >= self.capacity


@dataclass(slots=True)
class Verdict:
    """The answer of RequestLimits.check: allowed (maybe ``delay``ed), or who must wait."""

    allowed: bool
    wait: float = 0.0  # refused: seconds until the asker may ask again
    who: str = ""  # refused: "user" or "room"
    warn: bool = False  # refused: tell the asker (once per asker and empty spell)
    delay: float = 0.0  # allowed: seconds to hold the question until the room may have it


class RequestLimits:
    """Per-user and per-room request limits.

    A user over their rate is refused. A room over its rate first queues questions: as
    many as the room earns back within one window (at most MAX_HOLD seconds) wait for
    their token and are answered then; only past that is an asker refused. Each refused asker is
    told once per empty spell, so nobody is dropped without a word, and nobody can make
    the bot say it twice.
    """

    MAX_WARNED = 10_000
    MAX_HOLD = 60.0  # an answer later than this would no longer fit the conversation

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
        # Check the user before spending, so a refused request costs the room nothing.
        if user_bucket.wait_time() > 0:
            return self._refuse(ukey, "user", user_bucket.wait_time())
        delay = 0.0
        if room is not None:
            rate = self.room_rate if self._room_rate_for is None else self._room_rate_for(room)
            room_bucket = self._bucket(self._rooms, "r:" + casefold(room), rate)
            hold = min(rate.per, self.MAX_HOLD) if rate.enabled else 0.0
            reserved = room_bucket.reserve(max_wait=hold)
            rkey = f"r:{casefold(room)}:{ukey}"
            if reserved is None:
                return self._refuse(rkey, "room", room_bucket.wait_time() - hold)
            self._warned.discard(rkey)
            delay = reserved
        user_bucket.take()
        self._warned.discard(ukey)
        return Verdict(True, delay=delay)

    def _refuse(self, key: str, who: str, wait: float) -> Verdict:
        warn = key not in self._warned
        if len(self._warned) >= self.MAX_WARNED:
            self._warned.clear()
        self._warned.add(key)
        return Verdict(False, max(wait, 0.0), who, warn)


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
