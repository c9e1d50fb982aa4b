"""The commands that behave differently in a cluster, wrapped around the normal ones.

Messages are sequenced through Redis instead of delivered at once (their labeled
response waits for the echo, see inflight.py); a nick is claimed in Redis before it is
taken; a room's creator is decided in Redis (rooms.py); registration, AWAY, SETNAME and
nick changes are announced. A node also answers ``STATS c`` (stats.py), a command of its
own beside the wrapped table. Everything else runs
the single-server handler on the replicated model, and the changes it makes are
published from ``ClusterServer.deliver`` (see ``changes.py``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold, valid_nick
from chat_protocol.message import Message
from chat_server.cluster.backplane import DOWN_NOTICE
from chat_server.cluster.inflight import LabeledAnswer, Sent
from chat_server.cluster.replica import user_doc
from chat_server.cluster.rooms import handle_cluster_join
from chat_server.cluster.stats import handle_stats
from chat_server.commands import COMMANDS, CommandSpec, HandlerFunc
from chat_server.handlers.messaging import checked_relay, reachable_user, speakable_channel
from chat_server.handlers.presence import handle_setname
from chat_server.handlers.queries import handle_away
from chat_server.handlers.registration import handle_nick
from chat_server.history import dm_key

if TYPE_CHECKING:
    from chat_server.cluster.node import ClusterServer
    from chat_server.model import User
    from chat_server.server import Server


def cluster_commands() -> dict[str, CommandSpec]:
    """The command table of a cluster node: the normal one with a few wrapped entries."""
    table = dict(COMMANDS)
    replaced: dict[str, HandlerFunc] = {
        "PRIVMSG": lambda s, u, m: _relay(s, u, m, "PRIVMSG"),
        "NOTICE": lambda s, u, m: _relay(s, u, m, "NOTICE"),
        "TAGMSG": lambda s, u, m: _relay(s, u, m, "TAGMSG"),
        "NICK": _nick,
        "AWAY": _away,
        "SETNAME": _setname,
        "USER": _announce_registration(COMMANDS["USER"].func),
        "CAP": _announce_registration(COMMANDS["CAP"].func),
        "JOIN": handle_cluster_join,
    }
    for name, func in replaced.items():
        table[name] = dataclasses.replace(table[name], func=func)
    return table


def node_only_commands() -> dict[str, CommandSpec]:
    """Commands a single server does not have: ``STATS`` (``c``: the cluster link)."""
    return {"STATS": CommandSpec("STATS", handle_stats)}


# -- messages ------------------------------------------------------------------------


def _relay(server: Server, user: User, msg: Message, command_name: str) -> None:
    """PRIVMSG/NOTICE/TAGMSG with the single-server checks, then off to be sequenced."""
    relay = checked_relay(server, user, msg, command_name)
    if relay is None:
        return
    sent: list[Sent] = []
    for target in relay.targets:
        data: dict[str, object] = {"c": command_name, "s": user.source, "f": user.folded}
        if relay.text:
            data["t"] = relay.text
        if relay.tags:
            data["g"] = relay.tags
        if user.is_bot:
            data["b"] = 1
        if target[:1] in ("#", "&"):
            chan = speakable_channel(server, user, relay, target)
            if chan is not None:
                data.update(x=chan.name, ch=chan.folded, k=chan.folded)
                _sequence(server, user, command_name, target, data, chan.folded, sent)
            continue
        recipient = reachable_user(server, user, relay, target)
        if recipient is None:
            continue
        key = dm_key(user.nick, recipient.nick)
        data.update(x=recipient.nick, r=recipient.folded, k=key)
        ok = _sequence(server, user, command_name, target, data, key, sent)
        if ok and command_name == "PRIVMSG" and recipient.away is not None:
            server.out.reply(user, N.RPL_AWAY, recipient.nick, recipient.away)
    if sent:
        _answer_later(server, user, sent)


def _sequence(
    server: Server,
    user: User,
    command_name: str,
    target: str,
    data: dict[str, object],
    key: str,
    sent: list[Sent],
) -> bool:
    bp = _node(server).backplane
    hist_key = "" if command_name == "TAGMSG" else key
    one = bp.send_message(user, command_name, target, data, hist_key)
    if one is not None:
        sent.append(one)
        return True
    bp.stats.failed(user, target, "link down")
    server.out.fail(
        user, command_name, "CLUSTER_UNAVAILABLE", target, "Cluster link down; not sent"
    )
    return False


def _answer_later(server: Server, user: User, sent: list[Sent]) -> None:
    """A labeled message's response is its echo (labeled-response), which comes with
    its event: the response waits for every message the command sent."""
    found = _node(server).answer_later(user)
    if found is None:
        return
    label, lines = found
    answer = LabeledAnswer(user, label, lines, len(sent))
    for one in sent:
        one.answer = answer


# -- nicks, registration, away -------------------------------------------------------


def _node(server: Server) -> ClusterServer:
    return server  # type: ignore[return-value]


def _nick(server: Server, user: User, msg: Message) -> None:
    """Claim the nick in Redis first; the normal handler runs once it is ours."""
    bp = _node(server).backplane
    nick = msg.params[0] if msg.params else ""
    folded = casefold(nick)
    other = server.find_user(nick) if nick else None
    if (
        not nick
        or not valid_nick(nick, server.config.nick_len)
        or bp.claims.get(user) == folded
        or (other is not None and other is not user)
    ):
        _run_nick(server, user, msg)
        return

    def claimed(ok: bool | None) -> None:
        conn = user.conn
        alive = conn is not None and server.conns.get(conn.fd) is conn
        if ok and not alive:
            bp.release(folded)
        if not alive:
            return
        if ok is None:
            server.out.reply(user, "437", nick, "Nick is temporarily unavailable")
            return
        if not ok:
            server.out.reply(user, N.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
            return
        old = bp.claims.get(user)
        bp.claims[user] = folded
        _run_nick(server, user, msg)
        if user.folded != folded:  # the handler refused after all
            bp.release(folded)
            if old is not None:
                bp.claims[user] = old
        elif old is not None and old != folded and not user.registered:
            bp.release(old)

    bp.claim(user, folded, claimed)


def _run_nick(server: Server, user: User, msg: Message) -> None:
    bp = _node(server).backplane
    was_registered = user.registered
    old_folded, old_source, old_nick = user.folded, user.source, user.nick
    handle_nick(server, user, msg)
    if not was_registered:
        if user.registered:
            _registered(server, user)
        return
    if user.nick == old_nick:
        return
    ops = bp.doc_ops(user)
    if old_folded != user.folded:
        ops += [*bp.undoc_ops(old_folded), *bp.release_ops(old_folded)]
    data = {"o": old_folded, "os": old_source, "u": user_doc(user)}
    bp.publish("nick", data, ops)


def _announce_registration(func: HandlerFunc) -> HandlerFunc:
    def wrapper(server: Server, user: User, msg: Message) -> None:
        was = user.registered
        func(server, user, msg)
        if not was and user.registered:
            _registered(server, user)

    return wrapper


def _registered(server: Server, user: User) -> None:
    """A user just registered here: tell the cluster, or tell the user it is cut off."""
    bp = _node(server).backplane
    announce_user(server, user)
    if bp.state == "down":
        server.out.send_raw(user, f":{server.name} NOTICE {user.nick} :{DOWN_NOTICE}")


def announce_user(server: Server, user: User) -> None:
    """A user registered here or changed what others see (away, modes)."""
    bp = _node(server).backplane
    bp.publish("user", {"u": user_doc(user)}, bp.doc_ops(user))


def _away(server: Server, user: User, msg: Message) -> None:
    before = user.away
    handle_away(server, user, msg)
    if user.away != before:
        announce_user(server, user)


def _setname(server: Server, user: User, msg: Message) -> None:
    """The other nodes see a new realname in the user's document (and tell their
    members with ``setname``, see presence.remote_updated)."""
    before = user.realname
    handle_setname(server, user, msg)
    if user.realname != before:
        announce_user(server, user)
