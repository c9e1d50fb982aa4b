"""Matching replies to requests: labeled-response when the server has it, a PING fence if not.

With ``labeled-response`` every reply carries (or sits in a batch that carries) the
label we sent. Without it we send ``PING :token`` right after the request: servers
answer in order, so the reply to the request is whatever numerics, FAIL/WARN/NOTE lines,
lines of the request's own command (``REGISTER SUCCESS``) and batches arrive before the
matching PONG.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from dataclasses import dataclass, field

from chat_protocol.client_state import Batch
from chat_protocol.message import Message

_STANDARD_REPLIES = frozenset({"FAIL", "WARN", "NOTE"})


@dataclass
class PendingRequest:
    """One request waiting for its reply; ``messages`` collects a batched reply."""

    future: asyncio.Future[list[Message]]
    batch_id: str | None = None
    messages: list[Message] = field(default_factory=list)
    batch_ids: set[str] = field(default_factory=set)  # batches opened during a fenced request
    command: str = ""  # a fenced request also takes replies named like it (REGISTER ...)

    def finish(self, messages: list[Message]) -> None:
        if not self.future.done():
            self.future.set_result(messages)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class RequestTracker:
    """Routes incoming messages to pending requests; those it claims are not events.
    Also keeps the PINGs we sent (lag probes and fences), oldest first."""

    def __init__(self) -> None:
        self.labeled: dict[str, PendingRequest] = {}
        self.fenced: PendingRequest | None = None
        self._counter = itertools.count(1)
        self._pings: deque[tuple[str, float]] = deque()  # (token, monotonic time sent)

    def new_label(self) -> str:
        return f"dc{next(self._counter)}"

    def new_ping(self, *, lag: bool) -> str:
        """The token of a PING about to go out: a lag probe, or the fence of a request."""
        token = f"{'lag' if lag else 'req'}{next(self._counter)}"
        self._pings.append((token, time.monotonic()))
        return token

    def oldest_ping_age(self) -> float | None:
        """Seconds the oldest unanswered PING has waited; None when all are answered."""
        return time.monotonic() - self._pings[0][1] if self._pings else None

    def pong(self, msg: Message) -> tuple[bool, float | None]:
        """Settle our PINGs up to the one ``msg`` answers (finishing a fenced request):
        (whether the PONG was ours, the lag it measured if it answered a probe)."""
        if not self._pings:
            return False, None
        token = msg.params[-1] if msg.params else ""
        tokens = [t for t, _ in self._pings]
        # Servers answer in order; one that does not echo the token answers the oldest.
        upto = tokens.index(token) if token in tokens else 0
        lag = None
        for _ in range(upto + 1):
            token, sent = self._pings.popleft()
            if token.startswith("lag"):
                lag = time.monotonic() - sent
            elif self.fenced is not None:
                self.fenced.finish(self.fenced.messages)
        return True, lag

    def claim(self, msg: Message, chain: list[Batch]) -> bool:
        """Give ``msg`` to the request it answers; True when one took it."""
        if self.labeled and self._claim_labeled(msg, chain):
            return True
        return self.fenced is not None and self._claim_fenced(self.fenced, msg, chain)

    def _claim_labeled(self, msg: Message, chain: list[Batch]) -> bool:
        label = msg.tags.get("label")
        if label is not None and label in self.labeled:
            pending = self.labeled[label]
            if msg.command == "BATCH" and msg.param(0).startswith("+"):
                pending.batch_id = msg.param(0)[1:]
            elif msg.command == "ACK":
                pending.finish([])
            else:
                pending.finish([msg])
            return True
        for batch in reversed(chain):  # outermost first: that is where the label sits
            owner = self.labeled.get(batch.tags.get("label", ""))
            if owner is None or owner.batch_id != batch.id:
                continue
            if msg.command == "BATCH" and msg.param(0) == "-" + batch.id:
                owner.finish(owner.messages)
            else:
                owner.messages.append(msg)
            return True
        return False

    def _claim_fenced(self, pending: PendingRequest, msg: Message, chain: list[Batch]) -> bool:
        if msg.command == "BATCH" and msg.param(0).startswith("+"):
            pending.batch_ids.add(msg.param(0)[1:])
            return True
        if any(b.id in pending.batch_ids for b in chain):
            if not (msg.command == "BATCH" and msg.param(0).startswith("-")):
                pending.messages.append(msg)
            return True
        if (
            msg.command.isdigit()
            or msg.command in _STANDARD_REPLIES
            or (pending.command and msg.command == pending.command)
        ):
            pending.messages.append(msg)
            return True
        return False

    def fail_all(self, exc: BaseException) -> None:
        """The connection is gone: nobody will answer."""
        self._pings.clear()
        for pending in self.labeled.values():
            pending.fail(exc)
        self.labeled.clear()
        if self.fenced is not None:
            self.fenced.fail(exc)
            self.fenced = None
