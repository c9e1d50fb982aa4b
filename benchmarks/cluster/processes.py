"""The processes of one configuration: a single chat-server, or a fresh redis-server and
cluster nodes on it, each pinned to its CPUs; and this benchmark's own pinning."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from chat_server.process import LOOPBACK, DaemonProcess, free_port, pinned
from perf.spawn import SpawnedServer
from tests.support.redis_server import RedisProcess

ROOT = Path(__file__).resolve().parents[2]


def pin_self(cpus: str) -> None:
    """Pin this process (and so the chat-perf it starts, its coordinator and workers,
    which inherit the mask) to the load CPUs, before any thread exists."""
    subprocess.run(["taskset", "-p", "-c", cpus, str(os.getpid())], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def cpu_set(text: str) -> set[int]:
    """taskset's list syntax (``1``, ``0,2``, ``4-7``) as CPU numbers."""
    out: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


def start_redis(work: Path, cpus: str) -> RedisProcess:
    """A fresh redis-server, pinned: every configuration starts from an empty stream."""
    redis = RedisProcess(work)
    redis.argv = pinned(redis.argv, cpus)
    return redis.start()


class ClusterNode(DaemonProcess):
    """``python -m chat_server --redis URL --node-id ID`` on a free loopback port, flood
    limit off as for chat-perf --spawn. Not SpawnedServer: that always passes
    --history-db, which a cluster node refuses (its history is in memory, or in
    PostgreSQL given through --node-args)."""

    def __init__(self, redis_url: str, node_id: str, cpus: str, extra: list[str]) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "chat_server", "--host", LOOPBACK,
                   "--port", str(self.port), "--no-flood-limit", "--redis", redis_url,
                   "--node-id", node_id, *extra]  # fmt: skip
        super().__init__(
            pinned(command, cpus), name=f"node {node_id}", cwd=ROOT, keep_lines=10_000,
            own_session=True, start_timeout=20.0,
        )  # fmt: skip


Server = SpawnedServer | ClusterNode


def start_servers(nodes: int, redis: RedisProcess | None, args: argparse.Namespace) -> list[Server]:
    """One chat-server without Redis (``nodes == 0``) or ``nodes`` cluster nodes, each
    in sync with the cluster before the load starts (node n on ``--node-cpus``'s n-th)."""
    cpus = args.node_cpus
    if redis is None:
        return [SpawnedServer(cpus[0], cwd=ROOT).start()]
    started: list[Server] = []
    try:
        for n in range(nodes):
            node = ClusterNode(redis.url, f"n{n}", cpus[n % len(cpus)], shlex.split(args.node_args))
            started.append(node.start())
            node.wait_log("in sync", timeout=20)
    except BaseException:
        stop_all(started, None)
        raise
    return started


def stop_all(servers: list[Server], redis: RedisProcess | None) -> None:
    """Nodes first, so none of them sees Redis vanish and starts its outage handling."""
    for srv in servers:
        srv.stop()
    if redis is not None:
        redis.stop()
