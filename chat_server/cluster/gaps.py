"""What a node does about events it never read (see event_reader.py): say so.

Messages of the gap that the conversations' histories still hold go into this node's
history, so CHATHISTORY answers them here as on every other node; room and user state
is reloaded by a resync (the backplane asks for one unless the gap was found right
after a resync). Each local client whose rooms or direct messages had messages in the
gap gets one NOTICE naming them and the time span, and the log gets one line.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from chat_server.cluster import message_events
from chat_server.cluster.event_reader import Gap, entry_ms
from chat_server.history.model import dm_parties

if TYPE_CHECKING:
    from chat_server.model import User
    from chat_server.server import Server

log = logging.getLogger("chat_server.cluster")

NAMES_SHOWN = 10  # conversations named in one notice; the rest are counted


def report(server: Server, gap: Gap, *, reloaded: bool) -> None:
    """Log the gap, reload what the histories hold, and tell the clients it touched
    (``reloaded``: state events were missed too, and a resync reloads them)."""
    span = f"{_clock(entry_ms(gap.since))} to {_clock(entry_ms(gap.until))} UTC"
    if gap.data_lost:
        log.warning(
            "cluster: redis lost its data (a restart without persistence?): events after"
            " %s that this node had not read are gone",
            _clock(entry_ms(gap.since)),
        )
        text = (
            f"*** Redis lost its data around {_clock(entry_ms(gap.until))} UTC: messages"
            " sent shortly before may be missing here and from the history"
        )
        for user in _local_users(server):
            rooms = [chan.name for chan in user.channels.values()]
            if rooms:
                _notice(server, user, f"{text} ({_names(rooms)})")
        return
    if gap.history:
        message_events.load_history(server, gap.history)
    touched = set(gap.history) | set(gap.gone)
    log.warning(
        "cluster: missed events from %s in %s (trimmed past our position);"
        " reloaded %d messages of %d conversations, %d conversations lost some for good",
        span,
        ", ".join(sorted(gap.streams)),
        sum(len(rows) for rows in gap.history.values()),
        len(gap.history),
        len(gap.gone),
    )
    gone = set(gap.gone)
    for user in _local_users(server):
        names, lost = _touched_by(server, user, touched, gone)
        if not names:
            continue
        text = f"*** Missed cluster events from {span} in {_names(names)}:"
        text += " their messages are in the history now (CHATHISTORY)"
        if lost:
            text += ", except some older ones that are gone"
        if reloaded:
            text += "; room members and modes were reloaded"
        _notice(server, user, text)


def _touched_by(
    server: Server, user: User, touched: set[str], gone: set[str]
) -> tuple[list[str], bool]:
    """The rooms and DM partners of ``user`` among ``touched`` conversation keys, and
    whether any of them lost messages for good."""
    names: list[str] = []
    lost = False
    for folded, chan in user.channels.items():
        if folded in touched:
            names.append(chan.name)
            lost = lost or folded in gone
    for key in touched:
        parties = dm_parties(key)
        if parties is None or user.folded not in parties:
            continue
        other = parties[1] if parties[0] == user.folded else parties[0]
        partner = server.users.get(other)
        names.append(partner.nick if partner is not None else other)
        lost = lost or key in gone
    return names, lost


def _local_users(server: Server) -> list[User]:
    return [c.user for c in server.conns.values() if c.user is not None and c.user.registered]


def _names(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _notice(server: Server, user: User, text: str) -> None:
    server.out.send_raw(user, f":{server.name} NOTICE {user.nick} :{text}")


def _clock(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))
