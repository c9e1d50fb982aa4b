"""PRIVMSG, NOTICE and TAGMSG to rooms and nicks: the hot path of the server.

The checks (``checked_relay``, ``speakable_channel``, ``reachable_user``) are shared
with the cluster node, which sequences the message through Redis instead of
delivering it here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold
from chat_protocol.message import Message
from chat_server.history import dm_key

if TYPE_CHECKING:
    from chat_server.model import Channel, User
    from chat_server.server import Server

MAX_TARGETS = 4
# The longest line without tags, CR LF not counted (RFC 1459's 512 with them).
MAX_TEXT_LINE = 510


@dataclass(slots=True)
class Relay:
    """A PRIVMSG/NOTICE/TAGMSG that passed the checks common to all its targets."""

    command: str
    targets: list[str]
    text: str
    tags: dict[str, str]

    @property
    def quiet(self) -> bool:
        """NOTICE never gets automatic error replies."""
        return self.command == "NOTICE"


def checked_relay(server: Server, user: User, msg: Message, command_name: str) -> Relay | None:
    """Validate the message as a whole; reply with the error numeric and return None."""
    quiet = command_name == "NOTICE"
    is_tagmsg = command_name == "TAGMSG"
    if not msg.params or not msg.params[0]:
        if not quiet:
            server.out.reply(user, N.ERR_NORECIPIENT, f"No recipient given ({command_name})")
        return None
    if not is_tagmsg and (len(msg.params) < 2 or msg.params[1] == ""):
        if not quiet:
            server.out.reply(user, N.ERR_NOTEXTTOSEND, "No text to send")
        return None
    tags = {k: v for k, v in msg.tags.items() if k[:1] == "+"} if msg.tags else {}
    if is_tagmsg and not tags:
        return None
    targets = msg.params[0].split(",")
    if len(targets) > MAX_TARGETS:
        if not quiet:
            server.out.reply(user, "407", msg.params[0], "Too many targets")
        return None
    user.last_spoke = time.time()
    return Relay(command_name, targets, "" if is_tagmsg else msg.params[1], tags)


def speakable_channel(server: Server, user: User, relay: Relay, target: str) -> Channel | None:
    """The room ``target`` if ``user`` may send to it, else None (after the numeric)."""
    # Keys are casefolded; most clients already send the folded name.
    chan = server.channels.get(target) or server.channels.get(casefold(target))
    if chan is None:
        if not relay.quiet:
            server.out.reply(user, N.ERR_NOSUCHCHANNEL, target, "No such channel")
        return None
    if not chan.can_speak(user):
        if not relay.quiet:
            server.out.reply(user, N.ERR_CANNOTSENDTOCHAN, chan.name, "Cannot send to channel")
        return None
    return chan


def reachable_user(server: Server, user: User, relay: Relay, target: str) -> User | None:
    """The user ``target``, or None (after the numeric)."""
    recipient = server.find_user(target)
    if recipient is None and not relay.quiet:
        server.out.reply(user, N.ERR_NOSUCHNICK, target, "No such nick/channel")
    return recipient


def _relay(server: Server, user: User, msg: Message, command_name: str) -> None:
    relay = checked_relay(server, user, msg, command_name)
    if relay is None:
        return
    for target in relay.targets:
        if target[:1] in ("#", "&"):
            chan = speakable_channel(server, user, relay, target)
            if chan is not None:
                _to_channel(server, user, relay, chan)
        else:
            recipient = reachable_user(server, user, relay, target)
            if recipient is not None:
                _to_nick(server, user, relay, recipient)


def fast_privmsgs(server: Server, user: User, lines: list[bytes], start: int, stop: int) -> int:
    """Relay a run of the everyday shape ``PRIVMSG #room :text`` without the parser.

    Most traffic is exactly this: no tags, one room the sender may speak in, often
    several lines of one read to the same room. Lines ``start`` to ``stop`` (exclusive)
    are taken while they have that shape and the first one's target; the index of the
    first line not taken is returned, so ``start`` means none was, having changed
    nothing, and the full parser and handler take that line with every error reply
    they give. The caller has checked that ``lines[start]`` starts with ``PRIVMSG `` and
    that ``user`` is registered.
    """
    raw = lines[start]
    conn = user.conn
    assert conn is not None
    last = conn.fast_head  # (b"PRIVMSG #room :", "#room", room) of its last fast run
    if (
        last is not None
        and raw.startswith(last[0])
        and server.channels.get(last[1]) is last[2]
        and user in last[2].members  # an outsider's echo is the handlers' work
        and last[2].can_speak(user)
    ):
        head, _, chan = last
    else:
        space = raw.find(b" ", 8)
        if space < 9 or raw[8] != 35 or raw[space + 1 : space + 2] != b":":  # 35 is "#"
            return start
        if b"," in raw[8:space] or b"\0" in raw[8:space]:
            return start
        try:
            target = raw[8:space].decode()
        except UnicodeDecodeError:
            return start
        found = server.channels.get(target)
        if found is None or user not in found.members or not found.can_speak(user):
            return start
        chan = found
        head = raw[: space + 2]
        conn.fast_head = (head, target, chan)
    cut = len(head)
    texts: list[str] = []
    for i in range(start, stop):
        raw = lines[i]
        if not raw.startswith(head):
            break
        end = len(raw) - 1 if raw[-1] == 13 else len(raw)  # 13 is CR
        if end <= cut or end > MAX_TEXT_LINE:
            break
        try:
            text = raw[cut:end].decode()
        except UnicodeDecodeError:
            break
        if "\r" in text or "\0" in text:
            break
        texts.append(text)
    if texts:
        server.delivery.relay_run(user, chan, texts)
    return start + len(texts)


def _to_channel(server: Server, user: User, relay: Relay, chan: Channel) -> None:
    command_name = relay.command
    if command_name == "TAGMSG":
        params = [chan.name]
        msgid, when = server.delivery.next_msgid(), None
    else:
        params = [chan.name, relay.text]
        msgid, when = server.delivery.store(
            user, command_name, chan.name, chan.folded, relay.text, relay.tags
        )
    server.delivery.deliver(
        chan,
        user.source,
        command_name,
        params,
        client_tags=relay.tags,
        msgid=msgid,
        when=when,
        bot=user.is_bot,
        sender=user,
        echo="echo-message" in user.caps,
        tags_only=command_name == "TAGMSG",
        account=user.account,
    )


def _to_nick(server: Server, user: User, relay: Relay, recipient: User) -> None:
    command_name = relay.command
    if command_name == "TAGMSG":
        params = [recipient.nick]
        msgid, when = server.delivery.next_msgid(), None
    else:
        params = [recipient.nick, relay.text]
        key = dm_key(user.nick, recipient.nick)
        msgid, when = server.delivery.store(
            user, command_name, recipient.nick, key, relay.text, relay.tags
        )
    echo = "echo-message" in user.caps
    for copy in ("echo", "delivery") if recipient is user and echo else ("both",):
        # To oneself with echo-message, the message comes back twice, as to anyone
        # else: the echo answers the command (with its label), the delivery does not.
        server.delivery.deliver(
            [recipient, user] if recipient is not user else [user],
            user.source,
            command_name,
            params,
            client_tags=relay.tags,
            msgid=msgid,
            when=when,
            bot=user.is_bot,
            sender=user if copy != "delivery" else None,
            echo=echo or recipient is user,
            tags_only=command_name == "TAGMSG",
            labeled=copy != "delivery",
            account=user.account,
        )
    if command_name == "PRIVMSG" and recipient.away is not None:
        server.out.reply(user, N.RPL_AWAY, recipient.nick, recipient.away)


def handle_privmsg(server: Server, user: User, msg: Message) -> None:
    _relay(server, user, msg, "PRIVMSG")


def handle_notice(server: Server, user: User, msg: Message) -> None:
    _relay(server, user, msg, "NOTICE")


def handle_tagmsg(server: Server, user: User, msg: Message) -> None:
    _relay(server, user, msg, "TAGMSG")
