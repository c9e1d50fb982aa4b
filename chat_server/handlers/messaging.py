"""PRIVMSG, NOTICE and TAGMSG to rooms and nicks: the hot path of the server."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold
from chat_protocol.message import Message
from chat_server.commands import command
from chat_server.history import dm_key

if TYPE_CHECKING:
    from chat_server.model import User
    from chat_server.server import Server

MAX_TARGETS = 4
MAX_CLIENT_TAGS = 4094


def _client_tags(msg: Message) -> dict[str, str]:
    tags = msg.tags
    if not tags:
        return {}
    return {k: v for k, v in tags.items() if k[:1] == "+"}


def _relay(server: Server, user: User, msg: Message, command_name: str) -> None:
    """Deliver PRIVMSG/NOTICE/TAGMSG; NOTICE never gets automatic error replies."""
    is_notice = command_name == "NOTICE"
    is_tagmsg = command_name == "TAGMSG"
    if not msg.params or not msg.params[0]:
        if not is_notice:
            server.reply(user, N.ERR_NORECIPIENT, f"No recipient given ({command_name})")
        return
    if not is_tagmsg and (len(msg.params) < 2 or msg.params[1] == ""):
        if not is_notice:
            server.reply(user, N.ERR_NOTEXTTOSEND, "No text to send")
        return
    client_tags = _client_tags(msg)
    if is_tagmsg and not client_tags:
        return
    text = "" if is_tagmsg else msg.params[1]
    echo = "echo-message" in user.caps
    targets = msg.params[0].split(",")
    if len(targets) > MAX_TARGETS:
        if not is_notice:
            server.reply(user, "407", msg.params[0], "Too many targets")
        return
    user.last_spoke = time.time()
    for target in targets:
        first = target[:1]
        if first == "#" or first == "&":
            _to_channel(server, user, command_name, target, text, client_tags, echo)
        else:
            _to_nick(server, user, command_name, target, text, client_tags, echo)


def _to_channel(
    server: Server,
    user: User,
    command_name: str,
    target: str,
    text: str,
    client_tags: dict[str, str],
    echo: bool,
) -> None:
    chan = server.channels.get(casefold(target))
    if chan is None:
        if command_name != "NOTICE":
            server.reply(user, N.ERR_NOSUCHCHANNEL, target, "No such channel")
        return
    if not chan.can_speak(user):
        if command_name != "NOTICE":
            server.reply(user, N.ERR_CANNOTSENDTOCHAN, chan.name, "Cannot send to channel")
        return
    params = [chan.name] if command_name == "TAGMSG" else [chan.name, text]
    if command_name == "TAGMSG":
        msgid, when = server.next_msgid(), None
    else:
        msgid, when = server.store(user, command_name, chan.name, chan.folded, text, client_tags)
    server.deliver(
        chan,
        user.source,
        command_name,
        params,
        client_tags=client_tags,
        msgid=msgid,
        when=when,
        bot=user.is_bot,
        sender=user,
        echo=echo,
        tags_only=command_name == "TAGMSG",
    )


def _to_nick(
    server: Server,
    user: User,
    command_name: str,
    target: str,
    text: str,
    client_tags: dict[str, str],
    echo: bool,
) -> None:
    recipient = server.find_user(target)
    if recipient is None:
        if command_name != "NOTICE":
            server.reply(user, N.ERR_NOSUCHNICK, target, "No such nick/channel")
        return
    params = [recipient.nick] if command_name == "TAGMSG" else [recipient.nick, text]
    if command_name == "TAGMSG":
        msgid, when = server.next_msgid(), None
    else:
        key = dm_key(user.nick, recipient.nick)
        msgid, when = server.store(user, command_name, recipient.nick, key, text, client_tags)
    server.deliver(
        [recipient, user] if recipient is not user else [user],
        user.source,
        command_name,
        params,
        client_tags=client_tags,
        msgid=msgid,
        when=when,
        bot=user.is_bot,
        sender=user,
        echo=echo or recipient is user,
        tags_only=command_name == "TAGMSG",
    )
    if command_name == "PRIVMSG" and recipient.away is not None:
        server.reply(user, N.RPL_AWAY, recipient.nick, recipient.away)


@command("PRIVMSG")
def handle_privmsg(server: Server, user: User, msg: Message) -> None:
    _relay(server, user, msg, "PRIVMSG")


@command("NOTICE")
def handle_notice(server: Server, user: User, msg: Message) -> None:
    _relay(server, user, msg, "NOTICE")


@command("TAGMSG")
def handle_tagmsg(server: Server, user: User, msg: Message) -> None:
    _relay(server, user, msg, "TAGMSG")
