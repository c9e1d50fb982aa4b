"""Messages on their way through Redis, and what their senders are told.

A message is *sent* when its publish is queued for Redis and *delivered* when its
event comes back through the stream (every node delivers it to its members; the
sender's node also echoes it). Meanwhile the sender is held (its next lines wait, up
to ``HOLD_TIMEOUT``) and a labeled command's response waits too: the echo is the
labeled response (labeled-response + echo-message), or, when the message cannot be
delivered, ``FAIL <command> CLUSTER_UNAVAILABLE <target> :<why>`` carrying the label.

When the link is lost with messages in flight, they are *in doubt*: Redis may have run
their publish, or not, or may run it later. The fence (scripts.py) rules out "later"
once this node has resynced: what is not in the stream before our sync entry never
will be. So when the reader reaches our sync entry, a message in doubt that did not
come back is certainly not delivered: ``FAIL ... :Not delivered ...; you may send it
again``. Only when that takes longer than ``HOLD_TIMEOUT``, or entries were lost
meanwhile (a gap), is the sender told "may not have been delivered"; its fate follows
when known, as ``NOTE <command> DELIVERED_LATE <target> <msgid>`` (beside the echo) or
``NOTE <command> NOT_DELIVERED <target>``, or ``NOTE <command> FATE_UNKNOWN <target>``
when events were lost meanwhile. Nothing is delivered later without a word.

Retries: a message with the client tag ``+distchat/once=<token>`` is written at most
once per conversation and token (for the stream's keep time); a retry gets the first
one's echo (same msgid and time) as its answer and nothing is sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chat_protocol.message import Message
from chat_server.dispatch import captured

if TYPE_CHECKING:
    from chat_server.cluster.stats import LoopStats
    from chat_server.model import User
    from chat_server.server import Server

log = logging.getLogger("chat_server.cluster")

HOLD_TIMEOUT = 5.0  # a client waits at most this long for Redis before it is told
ONCE_TAG = "+distchat/once"  # a client's token that makes a retry safe
ONCE_MAX = 64  # longest token kept (longer ones are not deduplicated)
NOT_DELIVERED = "Not delivered (cluster link lost); you may send it again"
MAYBE = (
    "Message may not have been delivered (cluster link lost); a NOTE follows when its fate is known"
)


@dataclass(slots=True)
class LabeledAnswer:
    """A labeled command's response, sent once each message it sent is resolved."""

    user: User
    label: str
    lines: list[bytes]  # what the handler answered at once (errors, RPL_AWAY), then more
    waiting: int  # messages not yet resolved


@dataclass(slots=True)
class Sent:
    """One message on its way through Redis."""

    user: User
    command: str
    target: str  # as the client wrote it
    data: dict[str, Any]  # the event's body (a duplicate's echo is made from it)
    epoch: int  # the link epoch it was sent in (see InFlight.own_sync)
    started: float
    answer: LabeledAnswer | None = None
    held: bool = True  # its sender waits for it
    in_doubt: bool = False  # the link was lost after it was sent
    told_maybe: bool = False  # its sender heard "may not have been delivered"


class InFlight:
    """The messages of this node's clients that Redis has not yet sequenced."""

    def __init__(self, server: Server, unhold: Callable[[User], None], stats: LoopStats) -> None:
        self.server = server
        self.sent: dict[int, Sent] = {}
        self._unhold = unhold
        self.stats = stats

    def add(self, token: int, sent: Sent) -> None:
        self.sent[token] = sent

    def in_doubt(self) -> int:
        return sum(1 for s in self.sent.values() if s.in_doubt)

    # -- outcomes ----------------------------------------------------------------------

    def delivered(self, token: int) -> Sent | None:
        """Its event came back: the sender may go on. None when it is not ours (any more)."""
        sent = self.sent.pop(token, None)
        if sent is not None:
            self._release(sent)
        return sent

    def echoed(self, sent: Sent, lines: list[bytes], msgid: str) -> None:
        """After a delivery: ``lines`` (its captured echo, if any) answer its label."""
        if sent.answer is not None:
            self._answer(sent, lines)
        if sent.told_maybe:
            self.stats.late += 1
            log.info("cluster: message of %s to %s delivered late", sent.user.nick, sent.target)
            self._note(sent, "DELIVERED_LATE", msgid, "Your message was delivered after all")

    def refused(self, token: int, why: str) -> None:
        """Redis refused it, or it was never sent: certainly not delivered."""
        sent = self.sent.pop(token, None)
        if sent is not None:
            self._fail(sent, f"Not delivered ({why}); you may send it again")

    def doubted(self, token: int) -> None:
        """Its answer was lost with the connection: Redis may have run it."""
        sent = self.sent.get(token)
        if sent is not None:
            sent.in_doubt = True

    def duplicate(self, token: int, first: str, echo: Callable[[Sent, str], None]) -> None:
        """A retry of a message already written as ``first``: its echo is the answer."""
        sent = self.sent.pop(token, None)
        if sent is None:
            return
        if sent.answer is not None:
            self._answer(sent, captured(sent.user.conn, self.server, lambda: echo(sent, first)))
        else:
            echo(sent, first)
        self._release(sent)

    def link_lost(self) -> None:
        for sent in self.sent.values():
            sent.in_doubt = True

    def own_sync(self, epoch: int, gap: bool) -> None:
        """Our resync of link ``epoch`` is in the stream: messages in doubt sent before
        it that have not come back never will (the fence), unless entries went missing
        meanwhile (``gap``): then nobody can know."""
        for token, sent in list(self.sent.items()):
            if not sent.in_doubt or sent.epoch >= epoch:
                continue
            del self.sent[token]
            if not gap:
                self._fail(sent, NOT_DELIVERED)
            elif sent.told_maybe:
                text = "Whether your message was delivered cannot be known (events were lost)"
                self._note(sent, "FATE_UNKNOWN", None, text)
            else:
                self._maybe(sent, "Message may not have been delivered (cluster events lost)")
                self._release(sent)

    def check_timeouts(self, now: float) -> None:
        """Release senders Redis kept waiting; tell them what is known."""
        for sent in list(self.sent.values()):
            if not sent.held or now - sent.started <= HOLD_TIMEOUT:
                continue
            self.stats.held_long += 1
            if sent.in_doubt:
                self._maybe(sent)
            else:
                self.server.out.send_raw(
                    sent.user,
                    f":{self.server.name} NOTICE {sent.user.nick} :*** The cluster is slow;"
                    " your message is queued and may arrive late",
                )
            self._release(sent)

    def forget_user(self, user: User) -> None:
        """Its connection closed: nobody is left to tell."""
        for token in [t for t, s in self.sent.items() if s.user is user]:
            del self.sent[token]

    # -- telling the sender --------------------------------------------------------------

    def _release(self, sent: Sent) -> None:
        if sent.held:
            sent.held = False
            self._unhold(sent.user)

    def _answer(self, sent: Sent, lines: list[bytes]) -> None:
        answer = sent.answer
        if answer is None:
            return
        sent.answer = None
        answer.lines.extend(lines)
        answer.waiting -= 1
        if answer.waiting == 0 and answer.user.conn is not None:
            self.server.out.send_labeled(answer.user, answer.label, answer.lines)

    def _fail_line(self, sent: Sent, text: str) -> str:
        params = [sent.command, "CLUSTER_UNAVAILABLE", sent.target, text]
        return Message("FAIL", params, self.server.name).to_str()

    def _fail(self, sent: Sent, text: str) -> None:
        self.stats.failed(sent.user, sent.target, text)
        if sent.answer is not None:
            self._answer(sent, [(self._fail_line(sent, text) + "\r\n").encode()])
        elif sent.told_maybe:
            self._note(sent, "NOT_DELIVERED", None, "Your message was not delivered")
        else:
            self.server.out.send_raw(sent.user, self._fail_line(sent, text))
        self._release(sent)

    def _maybe(self, sent: Sent, text: str = MAYBE) -> None:
        self.stats.failed(sent.user, sent.target, "may not have been delivered")
        sent.told_maybe = True
        if sent.answer is not None:
            self._answer(sent, [(self._fail_line(sent, text) + "\r\n").encode()])
        else:
            self.server.out.send_raw(sent.user, self._fail_line(sent, text))

    def _note(self, sent: Sent, code: str, msgid: str | None, text: str) -> None:
        context = [sent.target] if msgid is None else [sent.target, msgid]
        note = Message("NOTE", [sent.command, code, *context, text], self.server.name)
        self.server.out.send_raw(sent.user, note.to_str())
