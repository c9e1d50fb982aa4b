"""Our nick: the fallbacks tried at registration, and taking the wanted one back later.

When the configured nick is taken at registration, the client registers as ``nick_``
(``fallback_nick``). The holder is often our own ghost: the session a dead node or a
dead link left behind, which the server drops seconds (a cluster's liveness timeout) to
minutes (a ping timeout) later. Meanwhile direct messages to ``nick`` do not reach
``nick_``, so ``NickReclaim`` watches for the nick to come free and sends ``NICK nick``:

- with MONITOR (ISUPPORT ``MONITOR``) the server says when the holder goes (731), so
  the reclaim is at once and costs no line until then;
- without it, ``ISON nick`` is asked with backoff (1 s doubling to 60 s); logged in to
  the account named like the nick, the first polls stay 1 s apart, since the server
  keeps an account's nick from anyone else and the holder can only be our own ghost.

Everything is bounded: NICK at most once a second and ``MAX_ATTEMPTS`` times a
connection, ``MAX_POLLS`` polls, and it stops for good after a success, a nick the user
chose meanwhile, a refusal that will not change (432), or ``MAX_REFUSALS`` refusals in a
row of a nick that looked free (reserved for an account we are not logged in to).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable

from chat_protocol import numerics as n
from chat_protocol.client_state import SessionState
from chat_protocol.client_types import ClientConfig, Event, NickReclaimed, NotConnected
from chat_protocol.message import Message

Write = Callable[[Message], None]
Request = Callable[[Message, float], Awaitable[list[Message]]]
Emit = Callable[[Event], None]

ATTEMPT_GAP = 1.0  # seconds between two NICK attempts, at least
MAX_ATTEMPTS = 20  # NICK attempts a connection; then we stay on the fallback
MAX_REFUSALS = 5  # refusals in a row while the nick looked free
POLL_MIN = 1.0  # seconds before the first ISON; doubles up to POLL_MAX
POLL_MAX = 60.0
MAX_POLLS = 100  # about 1.5 hours at POLL_MAX
FAST_POLLS = 30  # with an account, this many polls POLL_MIN apart first
ANSWER_WAIT = 10.0  # a NICK not answered by then no longer blocks the next one
_RETRYABLE = frozenset({n.ERR_NICKNAMEINUSE, n.ERR_NICKCOLLISION, n.ERR_UNAVAILRESOURCE})


def fallback_nick(wanted: str, attempt: int, max_len: int = 30) -> str:
    """The nick to try after ``attempt`` refusals: ``nick_``, ``nick__``, then ``nick1``..."""
    suffix = "_" * attempt if attempt <= 2 else str(attempt - 2)
    return wanted[: max(1, max_len - len(suffix))] + suffix


class NickReclaim:
    """One connection's watch for the configured nick; idle unless we hold a fallback."""

    def __init__(
        self, config: ClientConfig, state: SessionState, write: Write, request: Request, emit: Emit
    ) -> None:
        self._config = config
        self._state = state
        self._write = write
        self._request = request
        self._emit = emit
        self.active = False
        self._wanted = ""
        self._monitoring = False
        self._held: bool | None = None  # what MONITOR last said of the nick
        self._attempts = 0
        self._refusals = 0  # in a row, of a nick that looked free
        self._last_attempt = -ATTEMPT_GAP
        self._answer_due = 0.0  # monotonic time until which our NICK awaits its answer
        self._timer: asyncio.TimerHandle | None = None
        self._poller: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Registered: watch for the configured nick when we got another."""
        self.stop()
        wanted = self._config.nick
        if not self._config.reclaim_nick or self._state.is_me(wanted):
            return
        self.active = True
        self._wanted = wanted
        self._attempts = self._refusals = 0
        self._held = None
        self._last_attempt = -ATTEMPT_GAP
        self._answer_due = 0.0
        if self._state.isupport.get("MONITOR") is not None:
            self._monitoring = True
            self._send(Message("MONITOR", ["+", wanted]))  # answered 730 (held) or 731
        else:
            self._poll_from_now()

    def stop(self) -> None:
        """Stop watching (the connection ended, or we are done); sends nothing."""
        self.active = False
        self._monitoring = False
        self._cancel_timer()
        if self._poller is not None and self._poller is not asyncio.current_task():
            self._poller.cancel()
        self._poller = None

    def claim(self, msg: Message) -> bool:
        """Follow the server's word on the wanted nick; True for a refusal of our own
        NICK attempt, which is no news to the user (we retry, or stop)."""
        if not self.active:
            return False
        cmd = msg.command
        if cmd == n.RPL_MONOFFLINE and self._monitoring and self._names_wanted(msg):
            self._held = False
            self._try()
        elif cmd == n.RPL_MONONLINE and self._monitoring and self._names_wanted(msg):
            self._held = True  # wait for its 731; a refusal before this was a lost race
            self._refusals = 0
            self._cancel_timer()
        elif cmd == n.ERR_MONLISTFULL and self._monitoring and self._names_wanted(msg):
            self._monitoring = False  # no room on the server's list: ask instead
            self._poll_from_now()
            return True
        elif cmd in _RETRYABLE and self._answers_us(msg):
            self._answer_due = 0.0
            self._refused(temporary=cmd == n.ERR_UNAVAILRESOURCE)
            return True
        elif cmd == n.ERR_ERRONEUSNICKNAME and self._answers_us(msg):
            self._give_up()  # this server will never take it: the app shows why
        return False

    def nick_changed(self, old: str, new: str) -> None:
        """Our nick changed: the wanted one is back, or the user chose another."""
        if not self.active:
            return
        reclaimed = self._state.casefold(new) == self._state.casefold(self._wanted)
        self._give_up()
        if reclaimed:
            self._emit(NickReclaimed(new, old))

    # -- trying ------------------------------------------------------------------------

    def _names_wanted(self, msg: Message) -> bool:
        """Whether a MONITOR numeric's list (``nick!user@host`` or ``nick``) has ours."""
        folded = self._state.casefold(self._wanted)
        listed = msg.params[-1] if msg.command != n.ERR_MONLISTFULL else msg.param(2)
        return any(
            self._state.casefold(item.split("!", 1)[0]) == folded for item in listed.split(",")
        )

    def _answers_us(self, msg: Message) -> bool:
        waiting = time.monotonic() < self._answer_due
        return waiting and self._state.casefold(msg.param(1)) == self._state.casefold(self._wanted)

    def _try(self) -> None:
        """NICK the wanted nick now, or as soon as the attempt gap allows."""
        if not self.active or self._timer is not None or time.monotonic() < self._answer_due:
            return
        if self._monitoring and self._held:
            return
        if self._attempts >= MAX_ATTEMPTS:
            self._give_up()
            return
        wait = self._last_attempt + ATTEMPT_GAP - time.monotonic()
        if wait > 0:
            self._timer = asyncio.get_running_loop().call_later(wait, self._timer_fired)
            return
        self._attempts += 1
        self._last_attempt = time.monotonic()
        self._answer_due = self._last_attempt + ANSWER_WAIT
        self._send(Message("NICK", [self._wanted]))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timer_fired(self) -> None:
        self._timer = None
        self._try()

    def _refused(self, temporary: bool) -> None:
        """Our NICK was refused though the nick looked free: a lost race (the next
        holder's 730 or a poll will tell), a nick reserved for an account, or (437) one
        the server cannot hand out just now (a cluster without its link)."""
        if self._monitoring and self._held:
            return  # the 730 of whoever won came first: wait for their 731
        if not temporary:
            self._refusals += 1
            if self._refusals >= MAX_REFUSALS:
                self._give_up()
                return
        if self._monitoring and self._timer is None:  # polling retries at its next poll
            delay = min(POLL_MAX, POLL_MIN * 2**self._attempts)
            self._timer = asyncio.get_running_loop().call_later(delay, self._timer_fired)

    def _give_up(self) -> None:
        """Done for this connection: stop watching and take our MONITOR entry back."""
        if self._monitoring:
            self._send(Message("MONITOR", ["-", self._wanted]))
        self.stop()

    def _send(self, msg: Message) -> None:
        with contextlib.suppress(NotConnected, OSError):
            self._write(msg)

    # -- polling (servers without MONITOR) ---------------------------------------------

    def _poll_from_now(self) -> None:
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll())

    def _poll_delay(self, polls: int) -> float:
        account = self._state.account
        ours = account is not None and self._state.casefold(account) == self._state.casefold(
            self._wanted
        )
        if ours and polls < FAST_POLLS:
            return POLL_MIN  # only our ghost can hold our account's nick: it goes soon
        return min(POLL_MAX, POLL_MIN * 2**polls) * random.uniform(0.8, 1.0)

    async def _poll(self) -> None:
        """``ISON`` with backoff; NICK when the nick is not online (or ISON is unknown)."""
        for polls in range(MAX_POLLS):
            await asyncio.sleep(self._poll_delay(polls))
            if not self.active:
                return
            try:
                replies = await self._request(Message("ISON", [self._wanted]), ANSWER_WAIT)
            except TimeoutError:
                continue
            except (NotConnected, OSError):
                return
            online = ison_nicks(replies)
            folded = self._state.casefold(self._wanted)
            if online is not None and folded in {self._state.casefold(o) for o in online}:
                self._refusals = 0
            else:
                self._try()
        self._poller = None
        self._give_up()


def ison_nicks(replies: list[Message]) -> list[str] | None:
    """The nicks a ``303 RPL_ISON`` answer lists; None when the server did not answer
    ISON (no such command)."""
    for msg in replies:
        if msg.command == n.RPL_ISON:
            return msg.params[-1].split() if len(msg.params) > 1 else []
    return None
