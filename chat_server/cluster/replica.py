"""This node's view of users on other nodes, and the JSON documents that describe them.

A remote user is a ``User`` without a connection: it sits in ``server.users`` and in
room member lists like anyone else, so NAMES, WHO, WHOIS, LIST, MODE and KICK work on it
unchanged, while the fan-out (which skips users without a connection) leaves its
delivery to the node that holds its socket.
"""

from __future__ import annotations

import json
from typing import Any

from chat_server.model import Channel, User
from chat_server.room_settings import apply_meta, chan_meta

__all__ = [
    "RemoteUser",
    "apply_meta",
    "chan_meta",
    "channel_from_meta",
    "dumps",
    "update_user",
    "user_doc",
]


class RemoteUser(User):
    """A user whose connection lives on ``node``."""

    __slots__ = ("node",)

    def __init__(self, node: str, doc: dict[str, Any]) -> None:
        super().__init__(None, doc.get("host", "remote"))
        self.node = node
        self.registered = True
        update_user(self, doc)


def user_doc(user: User, *, skip: str | None = None) -> dict[str, Any]:
    """What other nodes need to show ``user``: identity, modes, away, rooms with prefixes."""
    return {
        "nick": user.nick,
        "user": user.username,
        "host": user.host,
        "real": user.realname,
        "modes": user.modes,
        "away": user.away,
        "acct": user.account,
        "signon": user.signon,
        "chans": {f: c.members.get(user, "") for f, c in user.channels.items() if f != skip},
    }


def update_user(user: User, doc: dict[str, Any]) -> None:
    """Copy identity fields from a document (memberships are reconciled separately)."""
    user.username = doc.get("user", "~u")
    user.host = doc.get("host", user.host)
    user.realname = doc.get("real", "")
    user.modes = doc.get("modes", "")
    user.away = doc.get("away")
    user.account = doc.get("acct")
    user.signon = doc.get("signon", user.signon)
    user.set_nick(doc["nick"])


def channel_from_meta(folded: str, meta: dict[str, Any] | None) -> Channel:
    chan = Channel(meta["name"] if meta else folded)
    if meta:
        apply_meta(chan, meta)
    return chan


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
