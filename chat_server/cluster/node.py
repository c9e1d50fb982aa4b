"""``ClusterServer``: the server with a Redis backplane, as a subclass of ``Server``.

Only a node started with ``--redis`` is one of these, so a single server runs exactly
the code it always ran. The overrides are small: publish replicated deliveries, free
nicks on quit, and hold a client's further lines while Redis answers it.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

from chat_server.accounts.book import AccountBook
from chat_server.accounts.redis_store import RedisAccounts, ThreadedStore
from chat_server.cluster import changes
from chat_server.cluster import handlers as cluster_handlers
from chat_server.cluster.backplane import Backplane
from chat_server.cluster.handlers import cluster_commands, node_only_commands
from chat_server.cluster.redis_link import RedisLink
from chat_server.cluster.rooms import finish_plan
from chat_server.config import ServerConfig
from chat_server.connection import PAUSED_CLUSTER, Connection
from chat_server.delivery import Delivery
from chat_server.history import Durability, HistoryStore
from chat_server.history.worker import stream_seq
from chat_server.model import Channel, User
from chat_server.server import Server

log = logging.getLogger("chat_server.cluster")

MESSAGE_WINDOW = 32  # messages one client may have on their way to Redis at once
_MESSAGE_COMMANDS = frozenset({b"PRIVMSG", b"NOTICE", b"TAGMSG"})


class ClusterDelivery(Delivery):
    """Local fan-out, then the room and user changes published to the other nodes."""

    def __init__(self, node: ClusterServer, history: HistoryStore, prefix: str, soft: int) -> None:
        super().__init__(history, prefix, soft)
        self.node = node

    def history_floor(self) -> int:
        """Cluster messages are numbered by their Redis stream ids (time first)."""
        return stream_seq(int(time.time() * 1000), 0)

    def deliver(
        self,
        recipients: Channel | Iterable[User],
        source: str,
        command: str,
        params: list[str],
        **kwargs: Any,
    ) -> None:
        if not isinstance(recipients, Channel):
            recipients = list(recipients)
        super().deliver(recipients, source, command, params, **kwargs)
        if command in changes.REPLICATED:
            node = self.node
            changes.local_delivery(node, node.backplane, recipients, source, command, params)


class ClusterServer(Server):
    """One node of a cluster; see chat_server/cluster/__init__.py for the design."""

    def __init__(self, config: ServerConfig) -> None:
        assert config.redis and config.node_id
        keep = max(config.history_cache, config.chathistory_max, config.history_on_join, 1)
        if config.history_postgres:
            # Shared, durable history: every node's worker writes what it reads from the
            # event stream to the one database and answers queries from it.
            durability = Durability(
                sync=config.history_sync,
                max_age_days=config.history_max_age_days or None,
                max_per_room=config.history_max_per_room or None,
            )
        else:
            # Without it, each node keeps the newest ``keep`` messages of every
            # conversation in memory, filled from the event stream in stream order.
            durability = Durability(max_per_room=keep)
        store = HistoryStore(
            None,
            replay=config.history_on_join,
            cache_bytes=config.history_cache_bytes,
            durability=durability,
            stream_ids=True,
            postgres=config.history_postgres,
        )
        super().__init__(config, store)
        self.link = RedisLink(
            config.redis,
            config.node_id,
            ttl=config.cluster_timeout,
            grace=config.cluster_grace,
            history_max=keep,
            stream_keep=config.cluster_stream_keep,
            preload=not config.history_postgres,
            shards=config.cluster_shards,
        )
        self.refusal: str | None = None  # why Redis would not let us be this node
        self.backplane = Backplane(self, self.link)
        # Accounts are the cluster's, in Redis (every node logs in every account).
        self.accounts = AccountBook(ThreadedStore(RedisAccounts(config.redis), self.background))
        self.commands = {**cluster_commands(), **node_only_commands()}
        self.fast_path = False  # room messages are sequenced through Redis

    def make_delivery(self, msgid_prefix: str, soft: int) -> Delivery:
        return ClusterDelivery(self, self.history, msgid_prefix, soft)

    def run(self) -> None:
        if not self.config.history_postgres:
            log.warning(
                "cluster: history lives in each node's memory only (the newest %d messages"
                " of each conversation) and is gone when the last node stops;"
                " --history-postgres URL keeps all of it, the same on every node",
                self.link.history_max,
            )
        self.loop.add_reader(self.link.rsock, lambda mask: self.backplane.on_readable())
        self.loop.call_every(1.0, self.backplane.check_timeouts)
        self.link.start()
        super().run()
        if self.refusal is not None:
            print(f"chat-server: error: {self.refusal}", file=sys.stderr)
            raise SystemExit(1)

    def answer_later(self, user: User) -> tuple[str, list[bytes]] | None:
        """The running command's labeled response comes later, with its messages'
        echoes (inflight.py): no ACK now. Returns its label and the list that holds
        what it answered so far (and goes on capturing until the command returns);
        None when the command has no label."""
        conn = user.conn
        label = self.dispatcher.label
        if label is None or conn is None or conn.capture is None:
            return None
        self.dispatcher.deferred = True
        return label, conn.capture

    def refuse(self, reason: str) -> None:
        """Another process is this node (a duplicate ``--node-id``, or one that replaced
        us while we were cut off): stop serving as it; ``run`` exits with ``reason``."""
        self.refusal = reason
        self.loop.stop()

    def shutdown(self) -> None:
        self.link.stop(leave=True)  # the others see our users quit now, not on expiry
        super().shutdown()

    # -- LUSERS ------------------------------------------------------------------------

    def account_changed(self, user: User) -> None:
        cluster_handlers.announce_user(self, user)

    def nick_refused(self, user: User) -> None:
        """An account's nick refused at registration: its claim in Redis goes too, or
        the owner would find it "in use" until the refused connection times out."""
        folded = self.backplane.claims.pop(user, None)
        if folded is not None:
            self.backplane.release(folded)

    def server_count(self) -> int:
        """This node and the others whose heartbeat is fresh (as of our last heartbeat)."""
        return 1 + len(self.backplane.live_nodes)

    def local_user_count(self) -> int:
        """Registered users connected to this node (``users`` also holds the others')."""
        return max(0, len(self.conns) - max(0, self.unknown_count))

    # -- publishing --------------------------------------------------------------------

    def quit_user(self, user: User, reason: str) -> None:
        local = user.conn is not None
        super().quit_user(user, reason)
        if local:
            changes.local_quit(self.backplane, user, reason)

    def on_drop(self, conn: Connection) -> None:
        bp = self.backplane
        bp.holds.pop(conn, None)
        bp.claim_holds.discard(conn)
        user = conn.user
        if user is not None:
            folded = bp.claims.pop(user, None)
            if folded is not None:
                bp.release(folded)
            bp.messages.forget_user(user)
            plan = bp.room_plans.pop(user, None)
            if plan is not None:
                finish_plan(self, bp, user, plan)

    # -- holding a client while Redis answers -------------------------------------------

    def must_wait(self, conn: Connection, raw: bytes) -> bool:
        """A held client's line waits unless it is a message that may go ahead."""
        return conn in self.backplane.holds and not self._may_pass(conn, raw)

    def _may_pass(self, conn: Connection, raw: bytes) -> bool:
        """Whether a held client's next line may go ahead anyway.

        Messages queue behind the client's earlier messages in the one FIFO to Redis, so
        they keep their order without waiting (up to a window); anything else (a JOIN,
        a PART, a nick change) waits until the messages before it are delivered.
        """
        bp = self.backplane
        if conn in bp.claim_holds or bp.holds.get(conn, 0) >= MESSAGE_WINDOW:
            return False
        if raw[:1] == b"@":
            raw = raw.partition(b" ")[2].lstrip(b" ")
        if raw[:1] == b":":
            raw = raw.partition(b" ")[2].lstrip(b" ")
        return bytes(raw[:8]).upper().split(b" ", 1)[0] in _MESSAGE_COMMANDS

    def resume_held(self, conn: Connection) -> None:
        """Redis answered: read again and handle the lines that waited."""
        self.resume(conn, PAUSED_CLUSTER)
