"""Running our Lua scripts (scripts.py) in Redis by their SHA, whatever Redis forgot.

A Redis that restarted, even with its data (AOF), and a replica promoted by a failover
have no scripts cached: ``EVALSHA`` answers NOSCRIPT, and the script did not run. So a
request that got NOSCRIPT is safe to run again: the scripts are loaded again and those
requests run again, in their order (in one pipeline every request after the first
NOSCRIPT got one too, since nothing loads scripts in between). Before this, each message
sent in that window was refused as "Not delivered" and the heartbeat's error made the
node declare an outage.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis
from redis.exceptions import NoScriptError

from chat_server.cluster.scripts import SCRIPTS

log = logging.getLogger("chat_server.cluster")

# A script to run: its name in SCRIPTS and its arguments.
Call = tuple[str, Sequence[Any]]


class ScriptRunner:
    """The SHAs of our scripts on the Redis we are connected to."""

    def __init__(self) -> None:
        self.shas: dict[str, str] = {}

    def load(self, client: redis.Redis, *, again: bool = False) -> None:
        """Load every script (at each connection; ``again``: Redis lost them)."""
        if again:
            log.info("cluster: redis had lost our scripts (a restart or a failover); loaded")
        self.shas = {name: client.script_load(src) for name, src in SCRIPTS.items()}

    def sha(self, name: str) -> str:
        return self.shas[name]

    def run(self, client: redis.Redis, calls: Sequence[Call]) -> list[Any]:
        """Every call's result (or its error), pipelined, in order."""
        pipe = client.pipeline(transaction=False)
        for name, args in calls:
            pipe.evalsha(self.shas[name], 0, *args)
        results: list[Any] = pipe.execute(raise_on_error=False)
        again = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if again:
            self.load(client, again=True)
            pipe = client.pipeline(transaction=False)
            for i in again:
                name, args = calls[i]
                pipe.evalsha(self.shas[name], 0, *args)
            for i, result in zip(again, pipe.execute(raise_on_error=False), strict=True):
                results[i] = result
        return results

    def call(self, client: redis.Redis, name: str, *args: Any) -> Any:
        """One script's result; its error raised."""
        (result,) = self.run(client, [(name, args)])
        if isinstance(result, Exception):
            raise result
        return result
