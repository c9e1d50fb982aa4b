"""The chat model: users, rooms (channels) and who is in which, with IRC's rules of names."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from chat_protocol.casemap import casefold
from chat_server.masks import compile_mask

if TYPE_CHECKING:
    from chat_server.connection import Connection

# How a client wants a relayed message formatted: bit 0 = message-tags (msgid, client
# tags, bot), bit 1 = server-time, bit 2 = account-tag (the sender's account). The
# fan-out formats a message once per mode in use.
TAGS_MSG = 1
TAGS_TIME = 2
TAGS_ACCOUNT = 4
TAG_MODES = 8

MAX_BANS = 100  # per room (ISUPPORT MAXLIST=b:100): every JOIN and ban check walks them


class User:
    """One client's identity and state, registered or not yet."""

    __slots__ = (
        "account",
        "account_history_from",
        "away",
        "cap_negotiating",
        "cap_version",
        "caps",
        "channels",
        "conn",
        "folded",
        "history_floor",
        "host",
        "join_markers",
        "last_spoke",
        "modes",
        "nick",
        "pass_ok",
        "realname",
        "registered",
        "sasl",
        "signon",
        "source",
        "tag_mode",
        "username",
        "wanted_nick",
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
        # The lowest history sequence of direct messages this user may read: those
        # sent since it took its nick (see handlers/chathistory.py).
        self.history_floor = 0
        # While a JOIN runs: its rooms' read markers (draft/read-marker), fetched from
        # history before it ran, sent after each JOIN line (channels.join).
        self.join_markers: dict[str, int | None] | None = None
        # The account this connection is logged into (its name as registered), and
        # a SASL exchange in progress (handlers/sasl.py).
        self.account: str | None = None
        self.account_history_from = 0
        self.sasl: Any = None
        # The last nick asked for before registration, taken or not (REGISTER * names
        # the account after it).
        self.wanted_nick = ""

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
        if "account-tag" in caps:
            mode |= TAGS_ACCOUNT
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
        "ban_checks",
        "bans",
        "congested",
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
        self.bans: dict[str, Ban] = {}  # by casefolded mask, in the order they were set
        # Whether a user is banned, for the ``source`` it was worked out for; emptied
        # when the bans change. Speaking asks on every message: no regex per message.
        self.ban_checks: dict[User, tuple[str, bool]] = {}
        # Members whose send backlog is over the soft limit: while above 0, the server
        # stops reading from the room's members (flow control, see server.py).
        self.congested = 0

    # -- membership: the only place that changes ``members`` --------------------------

    def add_member(self, user: User, prefix: str = "") -> None:
        """Put ``user`` in the room (or change nothing but the prefix if already in)."""
        joined = user not in self.members
        self.members[user] = prefix
        if joined:
            user.channels[self.folded] = self
            self.invites.discard(user.folded)
            self.groups = None
            conn = user.conn
            if conn is not None and conn.congested:
                self.congested += 1

    def remove_member(self, user: User) -> bool:
        """Take ``user`` out of the room; True when it was a member."""
        if self.members.pop(user, None) is None:
            return False
        user.channels.pop(self.folded, None)
        self.groups = None
        conn = user.conn
        if conn is not None and conn.congested:
            self.congested -= 1
        return True

    def set_prefix(self, user: User, prefix: str) -> None:
        """Change a member's ``@``/``+`` prefix (no effect on non-members)."""
        if user in self.members:
            self.members[user] = prefix

    def members_changed(self) -> None:
        """A member's tag mode or connection changed: rebuild the fan-out groups."""
        self.groups = None

    def fanout_groups(self) -> list[list[Connection]]:
        """Member connections grouped by tag mode, cached until membership changes."""
        groups = self.groups
        if groups is None:
            groups = self.groups = group_by_tag_mode(self.members)
        return groups

    def is_op(self, user: User) -> bool:
        return "@" in self.members.get(user, "")

    def can_speak(self, user: User) -> bool:
        """Whether ``user`` may send to the room: the one check of every sending path
        (the fast path, the PRIVMSG/NOTICE/TAGMSG handlers and the cluster node).

        +n keeps outsiders out, +m needs voice or op, a ban silences everyone but the
        voiced and ops. A room without bans pays one truth test for them.
        """
        prefix = self.members.get(user)
        if prefix:  # voice or op: past +m and bans
            return True
        modes = self.modes
        if "m" in modes or (prefix is None and "n" in modes):
            return False
        return not self.bans or not self.is_banned(user)

    # -- bans ----------------------------------------------------------------------

    def is_banned(self, user: User) -> bool:
        """Whether a ban matches ``user``'s ``nick!user@host``, worked out once per
        identity (``User.source`` changes with the nick) and ban list."""
        if not self.bans:
            return False
        source = user.source
        checks = self.ban_checks
        known = checks.get(user)
        if known is not None and known[0] == source:
            return known[1]
        banned = any(ban.pattern.match(source) for ban in self.bans.values())
        if len(checks) >= 2 * len(self.members) + 64:
            # People who left (or spoke from outside) fall out of the cache here.
            checks = self.ban_checks = {u: c for u, c in checks.items() if u in self.members}
        checks[user] = (source, banned)
        return banned

    def add_ban(self, mask: str, set_by: str, set_at: float) -> bool:
        """Add a normalized ``nick!user@host`` mask; False when already there or full."""
        folded = casefold(mask)
        if folded in self.bans or len(self.bans) >= MAX_BANS:
            return False
        self.bans[folded] = Ban(mask, set_by, set_at, compile_mask(mask))
        self.ban_checks = {}
        return True

    def remove_ban(self, mask: str) -> Ban | None:
        """Remove the ban on ``mask`` (compared casefolded); the ban, or None."""
        ban = self.bans.pop(casefold(mask), None)
        if ban is not None:
            self.ban_checks = {}
        return ban

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


class Ban(NamedTuple):
    """One entry of a room's ban list (RPL_BANLIST shows mask, setter and time)."""

    mask: str
    set_by: str
    set_at: float
    pattern: re.Pattern[str]


def group_by_tag_mode(users: Iterable[User]) -> list[list[Connection]]:
    """Connections of ``users`` in one list per tag mode (see TAGS_MSG)."""
    groups: list[list[Connection]] = [[] for _ in range(TAG_MODES)]
    for user in users:
        if user.conn is not None:
            groups[user.tag_mode].append(user.conn)
    return groups


def member_prefix(prefix: str, multi: bool) -> str:
    """The NAMES/WHO prefix: all of them with multi-prefix, else the highest."""
    if multi or len(prefix) < 2:
        return prefix
    return prefix[0]
