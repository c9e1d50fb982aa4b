"""Registering a node's whole state in Redis, whatever its size, in one atomic script.

Split from the link because it is one self-contained piece of Redis work: stage the
state in keys nobody else reads, run RESYNC on them (scripts.py), and, for a node
that starts empty, read the newest history of every direct conversation.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from chat_server.cluster.scripts import SYNC_PART
from chat_server.history.model import dm_parties

STAGE_CHUNK = 1000  # users, claims or rooms per command when a resync stages its state
STAGE_TTL_MS = 60_000  # a staging left behind by a lost connection goes away by itself


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """What RESYNC needs to know of the node besides its state."""

    node_id: str
    generation: str
    fence: str
    ttl_ms: int
    shards: int  # cluster_shards: RESYNC refuses a node whose count is not the cluster's


def stage_and_resync(
    client: redis.Redis,
    connect: Callable[[float], redis.Redis],
    sha: str,
    me: NodeIdentity,
    state: list[Any],
) -> Any:
    """Run RESYNC with ``state`` = ``[users, claims, rooms]``; returns its result.

    ``users`` is flat ``folded, doc, ...``, ``claims`` a list of distinct folded nicks,
    ``rooms`` flat ``folded, meta, ...``. However many there are, they never become one
    script's arguments (Lua cannot unpack more than ~8000 values): they are first
    staged, in chunks, in keys under a name of this attempt that no other node reads,
    and the script then reads the staging and makes every change the others can see
    (nicks, state, rooms, the sync event) in one atomic run. Staging is pipelined with
    the script, so this is one round trip. Any failure raises.
    """
    users, claims, chans = state
    stage = f"dc:resync:{me.node_id}:{secrets.token_hex(8)}"
    # The script runs about 20 us per user or room in Redis: allow for that (2 s for
    # 100,000) on a connection of its own rather than take a slow answer for a lost link.
    size = (len(users) + len(chans)) // 2 + len(claims)
    own = connect(5.0 + size / 20_000) if size > 20_000 else None
    pipe = (own or client).pipeline(transaction=False)
    step = 2 * STAGE_CHUNK
    for key, flat in ((stage + ":u", users), (stage + ":m", chans)):
        for i in range(0, len(flat), step):
            pipe.hset(key, items=flat[i : i + step])
            pipe.pexpire(key, STAGE_TTL_MS)
    for i in range(0, len(claims), STAGE_CHUNK):
        pipe.sadd(stage + ":c", *claims[i : i + STAGE_CHUNK])
        pipe.pexpire(stage + ":c", STAGE_TTL_MS)
    args: list[str | int] = [me.node_id, me.ttl_ms, stage]
    args += [len(users) // 2, len(claims), len(chans) // 2, SYNC_PART, me.generation, me.fence]
    args.append(me.shards)
    pipe.evalsha(sha, 0, *args)
    try:
        return pipe.execute()[-1]
    finally:
        if own is not None:
            own.close()


def load_history(client: redis.Redis, upto: str, per_key: int) -> dict[str, list[Any]]:
    """The newest messages of every direct conversation, up to the snapshot's position.
    (A room's history is loaded when the node starts keeping it: subscriptions.py.)"""
    keys = sorted(k for k in map(str, client.smembers("dc:histkeys")) if dm_parties(k))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.xrevrange("dc:h:" + key, max=upto, min="-", count=per_key)
    return {key: list(reversed(rows)) for key, rows in zip(keys, pipe.execute(), strict=True)}
