"""What an operator can see of a node's cluster link: ``STATS c`` and the log lines.

``STATS c`` is the query Modern IRC reserves for a server's links ("servers which the
server may connect to or allow connections from"); a node's only link is Redis, so its
answer is that link: one ``249 RPL_STATSDEBUG`` line per figure (free-form, as
hybrid-family servers use it for their own figures), then ``219 RPL_ENDOFSTATS``.
Opers only (``481`` for others), like the links queries of most servers. Other letters
get the bare ``219``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chat_protocol import numerics as N
from chat_protocol.message import Message

if TYPE_CHECKING:
    from chat_server.cluster.node import ClusterServer
    from chat_server.model import User
    from chat_server.server import Server

log = logging.getLogger("chat_server.cluster")

RPL_STATSDEBUG = "249"
RPL_ENDOFSTATS = "219"
LAG_WARN_MS = 5000  # a reader this far behind the stream's newest entry is logged ...
LAG_LOG_EVERY = 60.0  # ... at most once a minute
FAIL_LOG_EVERY = 10.0  # refused messages are counted in one line at most this often


@dataclass(slots=True)
class LinkStats:
    """Figures the link threads keep (they write, the loop only reads them)."""

    connects: int = 0
    resyncs: int = 0
    last_resync_ms: float = 0.0
    reaps: int = 0  # nodes this node declared dead
    gaps: int = 0
    stream_length: int = 0
    stream_span_s: float = 0.0  # from the oldest entry kept to the newest
    lag_ms: int | None = None  # newest id given out minus the newest read; None: paused
    lag_logged: float = 0.0
    entries_read: dict[str, int] = field(default_factory=dict)  # stream -> entries read

    def saw_stream(
        self, length: int, first: str | None, last: str | None, newest: str | None,
        read: str | None,
    ) -> None:  # fmt: skip
        """The event stream as of a heartbeat (its size), and how far behind the newest
        id given out to any stream our reader is."""
        self.stream_length = length
        self.stream_span_s = (_ms(last) - _ms(first)) / 1000 if first and last else 0.0
        newest = newest or last
        self.lag_ms = max(0, _ms(newest) - _ms(read)) if newest and read else None
        now = time.monotonic()
        lagging = self.lag_ms is not None and self.lag_ms > LAG_WARN_MS
        if lagging and now - self.lag_logged >= LAG_LOG_EVERY:
            self.lag_logged = now
            log.warning(
                "cluster: event reader %.1f s behind the stream (%d entries kept)",
                (self.lag_ms or 0) / 1000,
                length,
            )


@dataclass(slots=True)
class LoopStats:
    """Figures the loop keeps: what clients were told, and the nodes it saw go."""

    fails: int = 0  # FAIL ... CLUSTER_UNAVAILABLE sent
    fails_logged: int = 0
    fails_log_at: float = 0.0
    late: int = 0  # messages delivered after their sender was told they might not be
    dropped_nodes: int = 0  # other nodes whose users quit here (reaped or left)
    held_long: int = 0  # clients released after waiting HOLD_TIMEOUT for Redis

    def failed(self, user: User, target: str, why: str) -> None:
        self.fails += 1
        now = time.monotonic()
        if now - self.fails_log_at >= FAIL_LOG_EVERY:
            log.warning(
                "cluster: FAIL CLUSTER_UNAVAILABLE to %s for %s (%s); %d refused since the"
                " last such line",
                user.nick,
                target,
                why,
                self.fails - self.fails_logged,
            )
            self.fails_logged = self.fails
            self.fails_log_at = now


def _ms(entry_id: str | None) -> int:
    return int(entry_id.partition("-")[0]) if entry_id else 0


def stats_lines(node: ClusterServer) -> list[str]:
    """The figures of ``STATS c``, one ``key=value ...`` text each."""
    bp = node.backplane
    link = node.link
    ls = link.stats
    lp = bp.stats
    lag = "paused" if ls.lag_ms is None else f"{ls.lag_ms}ms"
    return [
        f"link state={bp.state} redis={link.where} node={bp.node_id} connects={ls.connects}"
        f" other_nodes={len(bp.live_nodes)}",
        f"stream lag={lag} entries={ls.stream_length} span={ls.stream_span_s:.0f}s"
        f" keep={link.keep_ms // 1000}s gaps={ls.gaps}",
        f"shards count={link.shard_count} read={','.join(map(str, sorted(bp.subs.shards))) or '-'}"
        f" rooms_held={len(bp.subs.held)}",
        "read " + " ".join(f"{s}={n}" for s, n in sorted(ls.entries_read.items())),
        f"clients held={len(bp.holds)} held_past_timeout={lp.held_long}"
        f" in_flight={len(bp.messages.sent)} in_doubt={bp.messages.in_doubt()}",
        f"fails sent={lp.fails} delivered_late={lp.late}",
        f"reaps by_this_node={ls.reaps} nodes_dropped_here={lp.dropped_nodes}",
        f"resync count={ls.resyncs} last={ls.last_resync_ms:.0f}ms",
    ]


def handle_stats(server: Server, user: User, msg: Message) -> None:
    """``STATS <query>``: ``c`` is this node's cluster link (opers only)."""
    query = msg.params[0][:1] if msg.params else ""
    if not query:
        server.out.reply(user, N.ERR_NEEDMOREPARAMS, "STATS", "Not enough parameters")
        return
    if query == "c":
        if not user.is_oper:
            text = "Permission Denied- You're not an IRC operator"
            server.out.reply(user, N.ERR_NOPRIVILEGES, text)
            return
        node: ClusterServer = server  # type: ignore[assignment]
        for line in stats_lines(node):
            server.out.reply(user, RPL_STATSDEBUG, "c", line)
    server.out.reply(user, RPL_ENDOFSTATS, query, "End of /STATS report")
