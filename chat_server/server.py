"""The server: accepts clients, turns lines into commands, and fans messages out.

Hot path: socket → ``ClientIO.on_event`` (client_io.py) → ``Connection.read_lines`` →
``Server._process``: for a run of ``PRIVMSG #room :text`` lines, ``fast_privmsgs`` and
``relay_run`` (delivery.py); for anything else ``Message.parse`` → handler →
``deliver`` → the room's open batch (fanout.py), the same bytes for every member with
the same tag mode → after the round of I/O, one ``send`` per connection with bytes.
"""

from __future__ import annotations

import logging
import secrets
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterable

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold
from chat_protocol.message import Message, MessageError
from chat_server import lifecycle
from chat_server.accounts.book import AccountBook
from chat_server.background import Background
from chat_server.client_io import ClientIO
from chat_server.commands import COMMANDS
from chat_server.config import ServerConfig
from chat_server.connection import (
    MAX_BODY,
    PAUSED_BACKLOG,
    PAUSED_CLUSTER,
    PAUSED_FLOOD,
    PAUSED_HISTORY,
    PAUSED_ROOM,
    TOO_LONG,
    Connection,
)
from chat_server.deferred import Deferred
from chat_server.delivery import Delivery
from chat_server.dispatch import Dispatcher
from chat_server.flow import FlowControl, SendLimits
from chat_server.handlers import presence
from chat_server.handlers.messaging import fast_privmsgs
from chat_server.handlers.records import HandlerRecords
from chat_server.history import HistoryStore
from chat_server.listener import Listener
from chat_server.loglimit import LogLimiter
from chat_server.loop import EventLoop
from chat_server.model import Channel, User
from chat_server.replies import Replies
from chat_server.room_settings import chan_meta
from chat_server.tls import make_context as make_tls_context

log = logging.getLogger("chat_server")

MAX_CLIENT_TAGS = 4094  # IRCv3 message-tags: bytes of tags a client may send


class Server:
    """One chat server process: all state lives here, touched by one thread only.

    The parts are objects of their own: ``loop`` (sockets and timers), ``io`` (client
    sockets: accepting, TLS handshakes, sending; client_io.py), ``flow`` (send-queue
    limits and backpressure), ``delivery`` (one message to many: msgids, history, room
    batches), ``out`` (replies to one client), ``dispatcher`` (running one command:
    labels, deferred answers; dispatch.py), ``history``, ``records`` (what handlers
    remember: WHOWAS, failed OPERs, LUSERS maxima). The process's life (run, SIGHUP,
    shutdown) is lifecycle.py, the once-a-second sweep timeouts.py.
    """

    def __init__(self, config: ServerConfig, history: HistoryStore | None = None) -> None:
        self.config = config
        self.name = config.server_name
        self.loop = EventLoop()
        self.users: dict[str, User] = {}  # registered users by casefolded nick
        self.channels: dict[str, Channel] = {}
        self.conns: dict[int, Connection] = {}
        limits = SendLimits(config.sendq_max, config.sendq_soft, config.sendq_soft_seconds)
        self.flow = FlowControl(limits, self.resume)
        self.history = history or HistoryStore(None)
        self.delivery = self.make_delivery(config.node_id or secrets.token_hex(4), limits.soft)
        self.delivery.sync = config.history_sync
        self.out = Replies(self, self.delivery)
        self.records = HandlerRecords()
        # Accounts (SASL, REGISTER, owned nicks) in the server's database; password
        # hashing on background threads whose answers come back through the loop.
        self.accounts = AccountBook(self.history)
        self.background = Background(self.loop)
        self.client_log = LogLimiter(log)  # log lines a client's input can cause
        self.created = time.time()
        self.io = ClientIO(self)  # sockets: accepting, TLS handshakes, sending
        self.listener = Listener(config, self.loop, self.io.admit, lambda: len(self.conns))
        # The TLS port's context (tls.py); reload_tls() replaces it on SIGHUP.
        self.tls_context: ssl.SSLContext | None = None
        if config.tls_port and config.tls_cert and config.tls_key:
            self.tls_context = make_tls_context(config.tls_cert, config.tls_key)
        self.unknown_count = 0
        self.mode_counts: Counter[str] = Counter()  # user modes among registered users
        self.commands = COMMANDS  # a cluster node swaps in its own table
        self.fast_path = True  # PRIVMSG to a room without the parser (off in a cluster)
        # Runs commands; holds the one being run (its label, whether it answers later).
        self.dispatcher = Dispatcher(self)

    def make_delivery(self, msgid_prefix: str, soft: int) -> Delivery:
        """The fan-out part; a cluster node's also publishes to the other nodes."""
        return Delivery(self.history, msgid_prefix, soft)

    # -- lifecycle (lifecycle.py) --------------------------------------------------

    def listen(self) -> None:
        """Bind the listening socket (raises OSError when the port is busy)."""
        self.listener.listen()

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT, then shut down cleanly."""
        lifecycle.run(self)

    def reload_tls(self) -> None:
        """Load the TLS certificate and key again (SIGHUP); see lifecycle.py."""
        lifecycle.reload_tls(self)

    def shutdown(self) -> None:
        """Tell every client, flush what we can within a second, and persist history."""
        lifecycle.shutdown(self)

    # -- sending (client_io.py) ----------------------------------------------------

    def flush_dirty(self) -> None:
        """Send every buffer that grew this round, in one call each."""
        self.io.flush_dirty()

    def send_paced(self, conn: Connection, lines: Iterable[bytes]) -> None:
        """Send a long reply as the client drains it; its further lines wait meanwhile."""
        self.io.send_paced(conn, lines)

    # -- lines ---------------------------------------------------------------------

    def _process(self, conn: Connection, lines: list[bytes]) -> None:
        """Handle complete lines in order, within the flood-control budget.

        Every line costs one token, whatever it is (blank, unparsable, too long, PING):
        a client's cost to the server is its lines, not only its valid commands.
        """
        cfg = self.config
        limited = cfg.flood_limit
        if limited:
            conn.refill(cfg.flood_rate, cfg.flood_burst)
        user = conn.user
        assert user is not None
        fast = self.fast_path
        conns = self.conns
        soft = self.flow.limits.soft
        dispatcher = self.dispatcher
        n = len(lines)
        i = 0
        while i < n:
            if conn.closing or conns.get(conn.fd) is not conn:
                return
            if limited and conn.tokens < 1:
                if self.hold(conn, lines[i:], PAUSED_FLOOD):
                    delay = max(0.01, (1 - conn.tokens) / cfg.flood_rate)
                    self.loop.call_later(delay, lambda: self.resume(conn, PAUSED_FLOOD))
                return
            if len(conn.outbuf) > soft or conn.paced:
                # Its own replies pile up: try to send, and if that is not enough, wait
                # for it to read them before handling more of what it sent.
                self.io.send(conn)
                if conns.get(conn.fd) is not conn:
                    return
                if len(conn.outbuf) > soft or conn.paced:
                    self.hold(conn, lines[i:], PAUSED_BACKLOG)
                    return
            raw = lines[i]
            if fast and raw[:8] == b"PRIVMSG " and user.registered:
                # A run of room messages at once; tokens bound how many (each costs one).
                stop = min(n, i + int(conn.tokens)) if limited else n
                done = fast_privmsgs(self, user, lines, i, stop)
                if done > i:
                    if limited:
                        conn.tokens -= done - i
                    i = done
                    continue
            if self.must_wait(conn, raw):
                self.hold(conn, lines[i:], PAUSED_CLUSTER)  # resumed by the backplane
                return
            if limited:
                conn.tokens -= 1
            try:
                self._handle_line(conn, user, raw)
            except Exception:  # a bug must not cost the rest of the read, nor others
                self.delivery.capturing = conn.capture = None
                self.client_log.exception("line", "error handling a line from %s", conn.addr)
            i += 1
            if conn.paused & PAUSED_HISTORY:
                # Its answer comes from the history worker: the next lines wait for it,
                # and a JOIN of a room being loaded runs again (its token back).
                if dispatcher.rerun:
                    dispatcher.rerun = False
                    i -= 1
                    conn.tokens += 1
                conn.hold(lines[i:])
                return

    def must_wait(self, conn: Connection, raw: bytes) -> bool:
        """Whether ``raw`` must wait before it is handled; a cluster node overrides this."""
        return False

    def hold(self, conn: Connection, rest: list[bytes], reason: int) -> bool:
        """Put unhandled lines back and stop reading for ``reason``; False if dropped."""
        if conn.hold(rest) > self.config.recvq_max:
            self.drop(conn, "Excess Flood")
            return False
        self.pause(conn, reason)
        return True

    def pause(self, conn: Connection, reason: int) -> None:
        """Stop reading ``conn`` until ``resume(conn, reason)`` (and every other reason)."""
        was = conn.paused
        conn.paused = was | reason
        if not was:
            self.io.watch(conn)

    def resume(self, conn: Connection, reason: int) -> None:
        """Lift one pause reason; with none left, handle held lines and read again.

        Timers and the backplane hold the connection itself, never its fd: a closed
        connection's late resume does nothing, even when its fd number was reused.
        """
        if not conn.paused & reason:
            return
        conn.paused &= ~reason
        if conn.paused or self.conns.get(conn.fd) is not conn:
            return
        if b"\n" in conn.inbuf:
            # Not now: a resume can come from inside another client's command (a member
            # leaving a room). The held lines are handled from a timer, and only then is
            # the socket read again, so nothing newer overtakes them.
            self.loop.call_later(0, lambda: self._process_held(conn))
        else:
            self.io.watch(conn)

    def _process_held(self, conn: Connection) -> None:
        if conn.paused or self.conns.get(conn.fd) is not conn:
            return  # paused again meanwhile: whoever paused it resumes it
        lines = conn.take_held()
        if lines:
            self._process(conn, lines)
        if not conn.paused and self.conns.get(conn.fd) is conn:
            self.io.watch(conn)

    def _handle_line(self, conn: Connection, user: User, raw: bytes) -> None:
        if raw == TOO_LONG or _over_limits(raw):
            self.out.reply(user, N.ERR_INPUTTOOLONG, "Input line was too long")
            return
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            self.out.send_raw(user, "FAIL * INVALID_UTF8 :Invalid UTF-8 was replaced")
        text = text.rstrip("\r")
        if "\r" in text or "\0" in text:
            text = text.replace("\r", "").replace("\0", "")
        if not text.strip():
            return
        try:
            msg = Message.parse(text)
        except MessageError:
            return
        self.dispatcher.dispatch(user, msg)

    # -- commands (dispatch.py) ----------------------------------------------------

    def dispatch(self, user: User, msg: Message) -> None:
        """Run ``msg``'s command; a labeled one's answer is one labeled response."""
        self.dispatcher.dispatch(user, msg)

    def defer(self, user: User, *, rerun: bool = False) -> Deferred | None:
        """The running command answers later; see ``Dispatcher.defer``."""
        return self.dispatcher.defer(user, rerun=rerun)

    def complete(self, deferred: Deferred, produce: Callable[[], None]) -> None:
        """Send a deferred answer (labeled like its command) and read the client again."""
        self.dispatcher.complete(deferred, produce)

    # -- clients leaving -----------------------------------------------------------

    def drop(self, conn: Connection, reason: str) -> None:
        """Close a client: QUIT to its rooms, ERROR to it, free its nick."""
        if self.conns.get(conn.fd) is not conn:  # gone, or its fd already reused
            return
        self.delivery.write_pending()
        user = conn.user
        if user is not None:
            if user.registered:
                self.quit_user(user, reason)
            else:
                self.unknown_count -= 1
            self.accounts.signed_out(user)
        if reason == "SendQ exceeded":
            self.client_log.warning(
                "sendq", "cut %s (%s): SendQ exceeded, %d bytes unsent%s", conn.addr,
                user.nick if user is not None else "*", len(conn.outbuf),
                f" after {time.monotonic() - conn.congested_since:.1f} s over the soft limit"
                if conn.congested else "",
            )  # fmt: skip
        self.flow.relieve(conn)  # its rooms need not wait for it any more
        self.io.held.discard(conn)
        if reason == "SendQ exceeded":
            conn.outbuf.clear()
            conn.paced.clear()
        if not conn.handshaking:  # no TLS yet: nothing can be said to it
            conn.outbuf += f"ERROR :Closing link: {conn.addr} ({reason})\r\n".encode()
            conn.flush()
        self.on_drop(conn)
        self.io.close_socket(conn)

    def on_drop(self, conn: Connection) -> None:
        """Called as a client goes, before its socket closes; a cluster node cleans up."""

    def quit_user(self, user: User, reason: str) -> None:
        """Remove a registered user from every room and tell the members once each."""
        seen: set[User] = {user}
        peers: list[User] = []
        for chan in list(user.channels.values()):
            for member in chan.members:
                if member not in seen:
                    seen.add(member)
                    peers.append(member)
            self.remove_member(chan, user)
        self.delivery.deliver(peers, user.source, "QUIT", [reason], account=user.account)
        self.records.whowas.remember(user)
        self.users.pop(user.folded, None)
        presence.user_left(self, user)
        self.mode_counts.subtract(user.modes)
        user.registered = False

    # -- rooms ---------------------------------------------------------------------

    def remove_member(self, chan: Channel, user: User) -> None:
        """Take ``user`` out of ``chan``; an empty room is forgotten."""
        chan.remove_member(user)
        if not chan.members:
            self.channels.pop(chan.folded, None)
            self.history.forget(chan.folded)
            return
        conn = user.conn
        if conn is not None:
            if conn.congested:
                self.flow.wake_room(chan)  # the others no longer wait for it here
            if conn.paused & PAUSED_ROOM:
                self.flow.wake(conn)  # it may have waited only for this room

    def room_changed(self, chan: Channel) -> None:
        """A room's modes, key, bans or topic changed: the history file keeps them."""
        self.history.save_room(chan.folded, chan_meta(chan))

    def channel_peers(self, user: User) -> list[User]:
        """Everyone who shares a room with ``user``, once each, ``user`` included."""
        seen: dict[User, None] = {user: None}
        for chan in user.channels.values():
            seen.update(dict.fromkeys(chan.members))
        return list(seen)

    # -- users ---------------------------------------------------------------------

    def change_user_modes(self, user: User, added: str = "", removed: str = "") -> str:
        """Apply user mode letters; returns the ``+x-y`` change actually made."""
        plus = "".join(ch for ch in dict.fromkeys(added) if ch not in user.modes)
        minus = "".join(ch for ch in dict.fromkeys(removed) if ch in user.modes)
        user.modes = "".join(ch for ch in user.modes if ch not in minus) + plus
        self.mode_counts.update(plus)
        self.mode_counts.subtract(minus)
        return ("+" + plus if plus else "") + ("-" + minus if minus else "")

    def account_changed(self, user: User) -> None:
        """A registered local user logged in (a cluster node tells the other nodes)."""

    def nick_refused(self, user: User) -> None:
        """An unregistered user was refused its nick (a cluster node lets go of it)."""

    def server_count(self) -> int:
        """Servers in the network, for LUSERS; a cluster node counts the live nodes."""
        return 1

    def local_user_count(self) -> int:
        """Registered users connected to this server (a cluster node also knows others')."""
        return len(self.users)

    def find_user(self, nick: str) -> User | None:
        return self.users.get(casefold(nick))


def _over_limits(raw: bytes) -> bool:
    """Over 512 bytes of message (CRLF included) or 4094 bytes of client tags."""
    if raw[:1] == b"@":
        space = raw.find(b" ")
        if space > MAX_CLIENT_TAGS + 1:
            return True
        body = len(raw) - space - 1
    else:
        body = len(raw)
    if raw[-1:] == b"\r":
        body -= 1
    return body > MAX_BODY - 2
