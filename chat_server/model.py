"""The chat model: users, rooms (channels) and who is in which, with IRC's rules of names."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from chat_protocol.casemap import casefold

if TYPE_CHECKING:
    from chat_server.connection import Connection

# How a client wants a relayed message formatted: bit 0 = message-tags (msgid, client
# tags, bot), bit 1 = server-time. The fan-out formats a message once per mode in use.
TAGS_MSG = 1
TAGS_TIME = 2


class User:
    """One client's identity and state, registered or not yet."""

    __slots__ = (
        "away",
        "cap_negotiating",
        "cap_version",
        "caps",
        "channels",
        "conn",
        "folded",
        "host",
        "last_spoke",
        "modes",
        "nick",
        "pass_ok",
        "realname",
        "registered",
        "signon",
        "source",
        "tag_mode",
        "username",
    )

    def __init__(self, conn: Connection | None, host: str) -> None:
        self.conn = conn
        self.nick = "*"
        self.folded = ""
        self.username = ""
        self.realname = ""
        self.host = host
        self.source = "*"
        self.registered = False
        self.cap_negotiating = False
        self.cap_version = 0
        self.caps: frozenset[str] = frozenset()
        self.tag_mode = 0
        self.pass_ok = False
        self.modes = ""
        self.away: str | None = None
        self.channels: dict[str, Channel] = {}
        self.signon = time.time()
        self.last_spoke = self.signon

    def set_nick(self, nick: str) -> None:
        self.nick = nick
        self.folded = casefold(nick)
        self.update_source()

    def update_source(self) -> None:
        self.source = f"{self.nick}!{self.username or '~u'}@{self.host}"

    def set_caps(self, caps: frozenset[str]) -> None:
        self.caps = caps
        mode = 0
        if "message-tags" in caps:
            mode |= TAGS_MSG
        if "server-time" in caps:
            mode |= TAGS_TIME
        self.tag_mode = mode

    @property
    def is_oper(self) -> bool:
        return "o" in self.modes

    @property
    def is_bot(self) -> bool:
        return "B" in self.modes

    @property
    def invisible(self) -> bool:
        return "i" in self.modes

    def __repr__(self) -> str:
        return f"<User {self.source}>"


class Channel:
    """A room: members with their prefixes (``@`` op, ``+`` voice), topic and modes."""

    __slots__ = (
        "created",
        "folded",
        "groups",
        "invites",
        "key",
        "limit",
        "members",
        "modes",
        "name",
        "topic",
        "topic_set_at",
        "topic_set_by",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.folded = casefold(name)
        self.members: dict[User, str] = {}
        self.topic = ""
        self.topic_set_by = ""
        self.topic_set_at = 0.0
        self.created = time.time()
        self.modes = set("nt")
        self.key: str | None = None
        self.limit: int | None = None
        self.invites: set[str] = set()
        self.groups: list[list[Connection]] | None = None

    def fanout_groups(self) -> list[list[Connection]]:
        """Member connections grouped by tag mode, cached until membership changes."""
        groups = self.groups
        if groups is None:
            groups = self.groups = group_by_tag_mode(self.members)
        return groups

    def is_op(self, user: User) -> bool:
        return "@" in self.members.get(user, "")

    def can_speak(self, user: User) -> bool:
        """Whether ``user`` may send to the room under +n and +m."""
        prefix = self.members.get(user)
        if prefix is None:
            return "n" not in self.modes and "m" not in self.modes
        return "m" not in self.modes or bool(prefix)

    def mode_string(self, with_key: bool = True) -> tuple[str, list[str]]:
        """The ``+modes`` string and its parameters, for 324 replies."""
        letters = "".join(sorted(self.modes))
        params: list[str] = []
        if self.key is not None:
            letters += "k"
            params.append(self.key if with_key else "*")
        if self.limit is not None:
            letters += "l"
            params.append(str(self.limit))
        return "+" + letters, params


def group_by_tag_mode(users: Iterable[User]) -> list[list[Connection]]:
    """Connections of ``users`` in four lists, one per tag mode (see TAGS_MSG/TAGS_TIME)."""
    groups: list[list[Connection]] = [[], [], [], []]
    for user in users:
        if user.conn is not None:
            groups[user.tag_mode].append(user.conn)
    return groups


def member_prefix(prefix: str, multi: bool) -> str:
    """The NAMES/WHO prefix: all of them with multi-prefix, else the highest."""
    if multi or len(prefix) < 2:
        return prefix
    return prefix[0]
