"""Which Redis stream a room's messages go to.

Room messages are most of a cluster's traffic, and a node needs only those of rooms it
has members in. So they are spread over ``cluster_shards`` streams (``dc:m:<shard>``) by
a stable hash of the casefolded room name, and a node reads only the shards of its
rooms. Direct messages and every state event stay in ``dc:events``, which every node
reads. The hash is CRC-32: the same in every process and every Python, unlike
``hash()``, and cheap. Every node of a cluster must use the same shard count (RESYNC
refuses a node whose count differs from the one recorded in ``dc:shards``).
"""

from __future__ import annotations

import zlib

from chat_server.cluster.scripts import EVENTS
from chat_server.history.model import dm_parties

SHARD_PREFIX = "dc:m:"


def shard_of(folded_room: str, count: int) -> int:
    """The shard of a room (its casefolded name)."""
    return zlib.crc32(folded_room.encode()) % count


def shard_stream(shard: int) -> str:
    return f"{SHARD_PREFIX}{shard}"


def stream_of(folded_room: str, count: int) -> str:
    """The stream a room's messages are written to."""
    return shard_stream(shard_of(folded_room, count))


def streams_read(shards: set[int] | frozenset[int]) -> tuple[str, ...]:
    """What a node reading ``shards`` reads: the event stream, then those shards."""
    return (EVENTS, *(shard_stream(s) for s in sorted(shards)))


def keys_of_stream(stream: str, keys: list[str], count: int) -> list[str]:
    """The conversation keys (``dc:h:<key>``) whose messages go to ``stream``: direct
    conversations for the event stream, the shard's rooms for a shard."""
    if stream == EVENTS:
        return [k for k in keys if dm_parties(k) is not None]
    rooms = [k for k in keys if dm_parties(k) is None]
    return [k for k in rooms if shard_stream(shard_of(k, count)) == stream]
