"""MARKREAD (IRCv3 ``draft/read-marker``): how far a reader got, kept by the server.

``MARKREAD <target> timestamp=YYYY-MM-DDThh:mm:ss.sssZ`` moves the reader's marker for
a room it is in, or for a nick (direct messages); ``MARKREAD <target>`` asks for it.
Both are answered with ``MARKREAD <target> timestamp=...`` (``*``: none stored): the
stored value, which only grows, so an older time is answered with the newer one kept.
After a JOIN a client with the capability gets the room's marker unasked. Errors are
standard replies: ``FAIL MARKREAD NEED_MORE_PARAMS``, ``INVALID_PARAMS`` (a target the
asker may not use, a timestamp that is not one), ``INTERNAL_ERROR`` (the worker did not
answer). Without the capability MARKREAD is an unknown command (421), as CHATHISTORY
and SEARCH are.

Who owns a marker: a logged-in connection's account (owner ``"account:alice"``), so
all of one person's clients share their markers, and a change goes to each of the
account's connections on this server. Without an account, a marker belongs to the
casefolded nick *and* the connection's ``user@host`` (owner
``"alice ~alice@192.0.2.7"``): someone who later takes a free nick from another host
(or with another ident) neither sees nor moves the earlier holder's markers; the same
person reconnecting from the same place finds theirs.

Bounds: no marker is ahead of the server's clock, or it would mark as read messages not
sent yet. A time up to a minute ahead (a client's clock a little fast) is taken as the
server's now, as the spec suggests; one further ahead is refused (INVALID_PARAMS): it
is no message's time, and a client sending it has a bug worth hearing about. An owner
keeps at most ``worker.MAX_READ_MARKERS`` markers; past that the oldest times go.

The loop never touches the disk: a set is a frame to the worker and a get is a query
behind it (so it sees the set); the answer comes through ``defer``/``complete``, with
the label of a labeled MARKREAD. For a JOIN, channels.handle_join fetches the rooms'
markers with the rooms themselves (the JOIN waits for the worker, as for a cold room),
so each room's MARKREAD follows its JOIN line, before the NAMES, as the spec wants.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold, is_channel, valid_nick
from chat_protocol.message import Message
from chat_protocol.servertime import format_ms, parse_ms
from chat_server.handlers.chathistory import _context as fail_context

if TYPE_CHECKING:
    from chat_server.model import User
    from chat_server.server import Server

log = logging.getLogger(__name__)

CAP = "draft/read-marker"
# How far ahead of the server's clock a client's time may be (it is taken as now).
FUTURE_SLACK_MS = 60_000


def owner_of(user: User) -> str:
    """Whose markers ``user`` reads and moves: its account's when logged in
    (``account:<name>``, shared by all its clients), else its nick with its
    ``user@host``."""
    if user.account is not None:
        return "account:" + casefold(user.account)
    return f"{user.folded} {user.username}@{user.host}"


def marker_line(server: Server, name: str, time_ms: int | None) -> str:
    """``:server MARKREAD <name> timestamp=<time>``, or ``*`` when none is known."""
    stamp = "*"
    if time_ms is not None:
        with contextlib.suppress(ValueError):  # not a time we store: say "unknown"
            stamp = "timestamp=" + format_ms(time_ms)
    return Message("MARKREAD", [name, stamp], server.name).to_str()


def handle_markread(server: Server, user: User, msg: Message) -> None:
    if CAP not in user.caps:
        server.out.reply(user, N.ERR_UNKNOWNCOMMAND, "MARKREAD", f"Needs the {CAP} capability")
        return
    if not msg.params or not msg.params[0]:
        server.out.fail(user, "MARKREAD", "NEED_MORE_PARAMS", "Missing parameters")
        return
    target = msg.params[0]
    found = _target(server, user, target)
    if found is None:
        server.out.fail(user, "MARKREAD", "INVALID_PARAMS", fail_context(target),
                        "No such target or not allowed")  # fmt: skip
        return
    key, name = found
    owner = owner_of(user)
    if len(msg.params) > 1:
        time_ms, why = _client_time(msg.params[1])
        if time_ms is None:
            server.out.fail(user, "MARKREAD", "INVALID_PARAMS", fail_context(msg.params[1]), why)
            return
        server.history.save_marker(owner, key, time_ms)
    deferred = server.defer(user)
    if deferred is None:
        return

    def answered(ok: bool, value: Any) -> None:
        if not ok:
            log.warning("MARKREAD %s by %s: %s", key, user.nick, value)
            server.complete(deferred, lambda: server.out.fail(
                user, "MARKREAD", "INTERNAL_ERROR", fail_context(name),
                "The read timestamp could not be set or read"))  # fmt: skip
            return
        stored = dict(value).get(key)
        line = marker_line(server, name, stored)
        server.complete(deferred, lambda: server.out.send_raw(user, line))
        if len(msg.params) > 1:  # a change: the account's other clients hear of it too
            for other in server.accounts.sessions_of(user):
                if other is not user and CAP in other.caps and other.registered:
                    server.out.send_raw(other, line)

    server.history.ask("markers", (owner, [key]), answered)


def _target(server: Server, user: User, target: str) -> tuple[str, str] | None:
    """The stored key (casefolded) and the reply's name of a target: a room the user is
    in, or any valid nick; None otherwise."""
    if is_channel(target):
        chan = user.channels.get(casefold(target))
        return None if chan is None else (chan.folded, chan.name)
    if not valid_nick(target, server.config.nick_len):
        return None
    return casefold(target), target


def _client_time(stamp: str) -> tuple[int | None, str]:
    """A client's ``timestamp=...`` in ms (at most the server's now), or None and why
    it cannot be taken (``*`` included: a client may not set "unknown")."""
    if not stamp.startswith("timestamp="):
        return None, "Expected timestamp=YYYY-MM-DDThh:mm:ss.sssZ"
    try:
        time_ms = parse_ms(stamp.removeprefix("timestamp="))  # ASCII digits, a real date
    except ValueError:
        return None, "Invalid timestamp"
    now_ms = int(time.time() * 1000)
    if time_ms > now_ms + FUTURE_SLACK_MS:
        return None, "Timestamp is in the future"
    return min(time_ms, now_ms), ""
