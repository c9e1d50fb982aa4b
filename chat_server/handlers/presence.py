"""Presence: MONITOR, and the ``away-notify`` and ``setname`` capabilities.

MONITOR (IRCv3 monitor) tells a client when nicks on its list come and go, so buddy
lists need no ISON polling. ``away-notify`` sends AWAY changes to room peers, so
clients need no WHO polling; ``setname`` lets a client change its realname.

Besides the two commands, this module is a set of hooks the places that change
presence call, each in one line: registration (``user_online``), NICK
(``nick_changed``), QUIT and every drop (``user_left``), AWAY (``away_changed``),
JOIN (``joined``); a cluster node calls the same hooks for users on other nodes
(``user_online``, ``nick_changed``, ``remote_updated``), so local watchers and peers
hear of remote users too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold, valid_nick
from chat_protocol.message import Message, split_source
from chat_server.replies import format_reply

if TYPE_CHECKING:
    from chat_server.model import Channel, User
    from chat_server.server import Server

AWAY_NOTIFY = "away-notify"
SETNAME = "setname"
# Longest realname, in UTF-8 bytes (ISUPPORT NAMELEN): with the longest nick, user
# and host, a WHO or WHOIS line carrying it still fits in 512 bytes.
REALNAME_LEN = 100
_LINE = 510  # bytes of a line before its CRLF


# -- MONITOR ---------------------------------------------------------------------------


def handle_monitor(server: Server, user: User, msg: Message) -> None:
    """``MONITOR + targets``, ``- targets``, ``C``, ``L`` or ``S``.

    One line adds at most what fits in 512 bytes (about 250 one-letter nicks), each a
    validation and two dict updates, and the list never holds more than
    ``monitor_max``: its answers are bounded like a NAMES reply.
    """
    sub = msg.params[0].upper()
    if sub in ("+", "-"):
        if len(msg.params) < 2 or not msg.params[1]:
            server.out.reply(user, N.ERR_NEEDMOREPARAMS, "MONITOR", "Not enough parameters")
        elif sub == "+":
            _monitor_add(server, user, msg.params[1].split(","))
        else:
            _monitor_remove(server, user, msg.params[1].split(","))
    elif sub == "C":
        server.records.monitors.clear(user)
    elif sub == "L":
        listed = list(server.records.monitors.targets(user).values())
        end = format_reply(server.name, N.RPL_ENDOFMONLIST, user.nick, ("End of MONITOR list",))
        server.out.send_block(user, _list_lines(server, user, N.RPL_MONLIST, listed) + end + "\r\n")
    elif sub == "S":
        _send_status(server, user, server.records.monitors.targets(user).items())
    else:
        server.out.fail(
            user, "MONITOR", "INVALID_PARAMS", _shown(sub), "Unknown MONITOR subcommand"
        )


def _monitor_add(server: Server, user: User, targets: list[str]) -> None:
    """Add the valid targets while the list has room; 734 names those that did not fit.
    The status of every valid target follows, as with ``MONITOR S``."""
    index = server.records.monitors
    limit = server.config.monitor_max
    nick_len = server.config.nick_len
    wanted: dict[str, str] = {}
    refused: list[str] = []
    invalid = 0
    first_invalid = ""
    for nick in targets:
        if not nick:
            continue
        if not valid_nick(nick, nick_len):
            invalid += 1
            first_invalid = first_invalid or nick
            continue
        folded = casefold(nick)
        if folded in wanted:
            continue
        if not index.watches(user, folded):
            if index.count(user) >= limit:
                refused.append(nick)
                continue
            index.add(user, folded, nick)
        wanted[folded] = nick
    if refused:
        text = "Monitor list is full."
        bare = format_reply(server.name, N.ERR_MONLISTFULL, user.nick, (str(limit), "*", text))
        shown = _fit(refused, _LINE - len(bare.encode()) + 1)  # "*" stands for the list
        server.out.reply(user, N.ERR_MONLISTFULL, str(limit), shown, text)
    if invalid:
        first = _shown(first_invalid)
        text = f"{invalid} target(s) ignored, not valid nicknames (first: {first})"
        server.out.fail(user, "MONITOR", "INVALID_TARGET", text)
    _send_status(server, user, wanted.items())


def _monitor_remove(server: Server, user: User, targets: list[str]) -> None:
    index = server.records.monitors
    for nick in targets:
        if nick:
            index.remove(user, casefold(nick))


def _send_status(server: Server, user: User, targets: Iterable[tuple[str, str]]) -> None:
    """730 for the targets online (``nick!user@host``), 731 for the others, in one write."""
    online: list[str] = []
    offline: list[str] = []
    for folded, nick in targets:
        found = server.users.get(folded)
        if found is not None and found.registered:
            online.append(found.source)
        else:
            offline.append(nick)
    block = _list_lines(server, user, N.RPL_MONONLINE, online)
    block += _list_lines(server, user, N.RPL_MONOFFLINE, offline)
    if block:
        server.out.send_block(user, block)


def _list_lines(server: Server, user: User, numeric: str, items: list[str]) -> str:
    """``:server numeric nick :a,b,c`` lines (CRLF each), as many as 512 bytes need."""
    if not items:
        return ""
    budget = _LINE - len(format_reply(server.name, numeric, user.nick, ("",)).encode())
    lines: list[str] = []
    chunk: list[str] = []
    size = -1
    for item in items:
        length = len(item.encode())
        if chunk and size + 1 + length > budget:
            lines.append(format_reply(server.name, numeric, user.nick, (",".join(chunk),)))
            chunk, size = [], -1
        chunk.append(item)
        size += 1 + length
    lines.append(format_reply(server.name, numeric, user.nick, (",".join(chunk),)))
    return "\r\n".join(lines) + "\r\n"


def _fit(items: list[str], budget: int) -> str:
    """As many of ``items`` (valid nicks: ASCII) as fit in ``budget`` bytes, comma-separated."""
    out: list[str] = []
    size = -1
    for item in items:
        if size + 1 + len(item) > budget:
            break
        out.append(item)
        size += 1 + len(item)
    return ",".join(out)


def _shown(text: str) -> str:
    """Client input quoted back in a reply: short, and one middle parameter."""
    return text[:32].replace(" ", "_").lstrip(":") or "*"


def _notify(server: Server, folded: str, numeric: str, item: str) -> None:
    for watcher in server.records.monitors.watchers(folded):
        if watcher.conn is not None:
            server.out.reply(watcher, numeric, item)


# -- hooks: where users come, change and go ----------------------------------------------


def user_online(server: Server, user: User) -> None:
    """``user`` registered (here, or on another node): its watchers get 730."""
    _notify(server, user.folded, N.RPL_MONONLINE, user.source)


def nick_changed(server: Server, user: User, old_source: str) -> None:
    """The old nick went offline and the new one came online (a change of case only
    is a 730 with the new spelling)."""
    old_nick = split_source(old_source)[0]
    old_folded = casefold(old_nick)
    if old_folded != user.folded:
        _notify(server, old_folded, N.RPL_MONOFFLINE, old_nick)
    _notify(server, user.folded, N.RPL_MONONLINE, user.source)


def user_left(server: Server, user: User) -> None:
    """``user`` quit or was dropped (or its node went): its own watch list goes, and
    its watchers get 731."""
    server.records.monitors.clear(user)
    _notify(server, user.folded, N.RPL_MONOFFLINE, user.nick)


# -- away-notify ---------------------------------------------------------------------------


def away_changed(server: Server, user: User, before: str | None) -> None:
    """Room peers with ``away-notify`` get ``AWAY [:message]`` when the state or the
    message changed."""
    if user.away == before:
        return
    peers = [p for p in server.channel_peers(user) if p is not user and AWAY_NOTIFY in p.caps]
    if peers:
        params = [user.away] if user.away is not None else []
        server.delivery.deliver(peers, user.source, "AWAY", params, account=user.account)


def joined(server: Server, user: User, chan: Channel) -> None:
    """After an away user's JOIN, the room's members with ``away-notify`` get its AWAY."""
    if user.away is None:
        return
    members = [m for m in chan.members if m is not user and AWAY_NOTIFY in m.caps]
    if members:
        server.delivery.deliver(members, user.source, "AWAY", [user.away], account=user.account)


# -- setname -------------------------------------------------------------------------------


def valid_realname(realname: str) -> bool:
    """Not empty nor blank, and at most REALNAME_LEN bytes of UTF-8."""
    return bool(realname.strip()) and len(realname.encode()) <= REALNAME_LEN


def handle_setname(server: Server, user: User, msg: Message) -> None:
    """``SETNAME :realname``, for clients that negotiated ``setname``: confirmed to the
    sender and to room peers with the capability, refused with a FAIL otherwise."""
    if SETNAME not in user.caps:
        server.out.fail(
            user, "SETNAME", "CANNOT_CHANGE_REALNAME", "Request the setname capability first"
        )
        return
    realname = msg.params[0]
    if not valid_realname(realname):
        server.out.fail(user, "SETNAME", "INVALID_REALNAME", "Realname is not valid")
        return
    before = user.realname
    user.realname = realname
    realname_changed(server, user, before)


def realname_changed(server: Server, user: User, before: str) -> None:
    """Tell ``user`` (when local) and its room peers with ``setname`` the new realname;
    the sender hears back even when nothing changed (its confirmation)."""
    peers = [
        p
        for p in server.channel_peers(user)
        if SETNAME in p.caps and (p is user or user.realname != before)
    ]
    if peers:
        server.delivery.deliver(
            peers, user.source, "SETNAME", [user.realname], account=user.account
        )


def remote_updated(server: Server, user: User, away: str | None, realname: str) -> None:
    """A user on another node changed what others see (cluster ``user`` event): local
    peers hear of a new away state or realname as if it were here."""
    away_changed(server, user, away)
    if user.realname != realname:
        realname_changed(server, user, realname)
