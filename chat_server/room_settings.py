"""A room's settings as a JSON-ready dict: for the other nodes of a cluster, and for
the history file, which keeps them so a room with history comes back as it was (its
key, invite-only and ban list included) after it empties or the server restarts."""

from __future__ import annotations

from typing import Any

from chat_server.model import Channel


def chan_meta(chan: Channel) -> dict[str, Any]:
    """A room's settings, for rooms created or changed here."""
    return {
        "name": chan.name,
        "topic": chan.topic,
        "by": chan.topic_set_by,
        "at": chan.topic_set_at,
        "created": chan.created,
        "modes": "".join(sorted(chan.modes)),
        "key": chan.key,
        "limit": chan.limit,
        "bans": [[ban.mask, ban.set_by, ban.set_at] for ban in chan.bans.values()],
    }


def apply_meta(chan: Channel, meta: dict[str, Any]) -> None:
    chan.topic = meta.get("topic", "")
    chan.topic_set_by = meta.get("by", "")
    chan.topic_set_at = meta.get("at", 0.0)
    chan.created = meta.get("created", chan.created)
    chan.modes = set(meta.get("modes", "nt"))
    chan.key = meta.get("key")
    chan.limit = meta.get("limit")
    bans = meta.get("bans")
    if bans is not None and [ban.mask for ban in chan.bans.values()] != [b[0] for b in bans]:
        for ban in list(chan.bans.values()):
            chan.remove_ban(ban.mask)
        for mask, set_by, set_at in bans:
            chan.add_ban(mask, set_by, set_at)
