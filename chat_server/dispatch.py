"""Running one parsed command: the table lookup, the standard error numerics, labeled
responses, and commands whose answer comes later (``defer``/``complete``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.message import Message
from chat_server.connection import PAUSED_HISTORY
from chat_server.deferred import Deferred
from chat_server.model import User

if TYPE_CHECKING:
    from chat_server.connection import Connection
    from chat_server.server import Server


class Dispatcher:
    """Runs commands for the server that owns it.

    Its state is the command being run: its ``label``, whether its answer comes later
    (``deferred``), and whether it must run again once its client is resumed (``rerun``).
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.label: str | None = None
        self.deferred = False
        self.rerun = False

    def dispatch(self, user: User, msg: Message) -> None:
        """Run ``msg``'s command; with a label, everything it answers is captured and
        sent as one labeled response (errors such as 421 included)."""
        label = msg.tags.get("label") if "labeled-response" in user.caps else None
        conn = user.conn
        if not label or conn is None:  # an empty label is no label
            self._run(user, msg)
            return
        delivery = self.server.delivery
        captured: list[bytes] = []
        conn.capture = captured
        delivery.capturing = conn
        self.label = label
        self.deferred = False
        try:
            self._run(user, msg)
        finally:
            conn.capture = None
            delivery.capturing = None
            self.label = None
        if not self.deferred:  # else the answer carries the label when it comes
            self.server.out.send_labeled(user, label, captured)

    def defer(self, user: User, *, rerun: bool = False) -> Deferred | None:
        """The running command answers later (a history query): stop reading its client
        until ``complete`` (or, with ``rerun``, run the command again once ``resume``d).
        None when there is no connection to answer."""
        conn = user.conn
        if conn is None:
            return None
        self.deferred = True
        self.rerun = rerun
        self.server.pause(conn, PAUSED_HISTORY)
        return Deferred(conn, user, self.label)

    def complete(self, deferred: Deferred, produce: Callable[[], None]) -> None:
        """Send a deferred answer (labeled like its command) and read the client again."""
        server = self.server
        conn = deferred.conn
        if server.conns.get(conn.fd) is not conn or conn.closing:
            return
        if deferred.label is None:
            produce()
        else:
            lines = captured(conn, server, produce)
            server.out.send_labeled(deferred.user, deferred.label, lines)
        server.resume(conn, PAUSED_HISTORY)

    def _run(self, user: User, msg: Message) -> None:
        """The handler with the standard error numerics; a bug in one command answers
        400 and hurts nobody else."""
        server = self.server
        out = server.out
        spec = server.commands.get(msg.command)
        if spec is None:
            if user.registered:
                out.reply(user, N.ERR_UNKNOWNCOMMAND, msg.command, "Unknown command")
            else:
                out.reply(user, N.ERR_NOTREGISTERED, "You have not registered")
            return
        if spec.registered and not user.registered:
            out.reply(user, N.ERR_NOTREGISTERED, "You have not registered")
            return
        extra = spec.cost - 1
        if extra > 0 and server.config.flood_limit and user.conn is not None:
            user.conn.tokens -= extra  # costly commands (masked WHO) cost more lines
        if len(msg.params) < spec.min_params:
            out.reply(user, N.ERR_NEEDMOREPARAMS, msg.command, "Not enough parameters")
            return
        try:
            spec.func(server, user, msg)
        except Exception:
            server.client_log.exception(
                "handler", "handler for %s from %s failed", msg.command, user.source
            )
            out.reply(user, N.ERR_UNKNOWNERROR, msg.command, "Internal error handling command")


def captured(conn: Connection | None, server: Server, produce: Callable[[], None]) -> list[bytes]:
    """What ``produce`` sends to ``conn``, kept for a labeled response instead (also
    its copies of room messages, which leave the batch path while it is captured)."""
    if conn is None:
        produce()
        return []
    lines: list[bytes] = []
    conn.capture = lines
    server.delivery.capturing = conn
    try:
        produce()
    finally:
        conn.capture = None
        server.delivery.capturing = None
    return lines
