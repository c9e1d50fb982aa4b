"""The server: accepts clients, turns lines into commands, and fans messages out.

Hot path: socket → ``Connection.read_lines`` → for a run of ``PRIVMSG #room :text``
lines, ``fast_privmsgs`` and ``relay_run`` (delivery.py); for anything else
``Message.parse`` → handler → ``deliver`` → the room's open batch (fanout.py), the
same bytes for every member with the same tag mode → after the round of I/O, one
``send`` per connection that has bytes.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import secrets
import signal
import socket
import time
from collections import Counter

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold
from chat_protocol.message import Message, MessageError
from chat_server.commands import COMMANDS, HandlerFunc, load_handlers
from chat_server.config import ServerConfig
from chat_server.connection import MAX_BODY, TOO_LONG, Connection
from chat_server.delivery import Delivery
from chat_server.fanout import RoomBatches
from chat_server.handlers.messaging import fast_privmsgs
from chat_server.history import HistoryStore
from chat_server.loop import EventLoop
from chat_server.model import Channel, User
from chat_server.replies import Replies

log = logging.getLogger("chat_server")

MAX_CLIENT_TAGS = 4094  # IRCv3 message-tags: bytes of tags a client may send
_READ = 1  # selectors.EVENT_READ
_WRITE = 2  # selectors.EVENT_WRITE


class Server(Replies, Delivery):
    """One chat server process: all state lives here, touched by one thread only."""

    def __init__(self, config: ServerConfig, history: HistoryStore | None = None) -> None:
        self.config = config
        self.name = config.server_name
        self.loop = EventLoop()
        self.users: dict[str, User] = {}  # registered users by casefolded nick
        self.channels: dict[str, Channel] = {}
        self.conns: dict[int, Connection] = {}
        self.per_address: dict[str, int] = {}
        self.dirty: list[Connection] = []
        self._paused: set[int] = set()  # fds whose reading waits for flood tokens
        self._batches = RoomBatches(config.sendq_max)  # room messages not yet in buffers
        self.history = history or HistoryStore(None)
        self.created = time.time()
        # Message ids are "<prefix>-<n in hex>"; a stored message's n is its history
        # sequence number (see store), so n continues from the history on disk.
        self._msgid_format = (config.node_id or secrets.token_hex(4))[:16] + "-{:x}"
        self._msgid_seq = self.history.next_seq - 1
        self.listeners: list[socket.socket] = []
        self.unknown_count = 0
        self.mode_counts: Counter[str] = Counter()  # user modes among registered users
        load_handlers()
        self.commands = COMMANDS  # a cluster node swaps in its own table
        self.fast_path = True  # PRIVMSG to a room without the parser (off in a cluster)
        self.reply_blocks: dict[str, str] = {}  # see Replies.replies_block

    # -- lifecycle -----------------------------------------------------------------

    def listen(self) -> None:
        """Bind the listening socket (raises OSError when the port is busy)."""
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        sock.listen(4096)
        sock.setblocking(False)
        self.listeners.append(sock)
        self.loop.add_reader(sock, lambda mask, s=sock: self._accept(s))
        self.config.port = sock.getsockname()[1]

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT, then shut down cleanly."""
        rsock, wsock = socket.socketpair()
        rsock.setblocking(False)
        wsock.setblocking(False)
        self.loop.add_reader(rsock, lambda mask: self._drain_wakeup(rsock))
        old_fd = signal.set_wakeup_fd(wsock.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self.loop.after_io(self.flush_dirty)
        self.loop.call_every(1.0, self._check_timeouts)
        log.info("listening on %s:%d", self.config.host, self.config.port)
        try:
            self.loop.run()
        finally:
            signal.set_wakeup_fd(old_fd)
            self.shutdown()
            rsock.close()
            wsock.close()

    def _on_signal(self, signum: int, frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        self.loop.stop()

    @staticmethod
    def _drain_wakeup(rsock: socket.socket) -> None:
        try:
            while rsock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def shutdown(self) -> None:
        """Tell every client, flush what we can within a second, and persist history."""
        self.write_pending()
        farewell = b"ERROR :Server shutting down\r\n"
        for conn in list(self.conns.values()):
            conn.outbuf += farewell
        deadline = time.monotonic() + 1.0
        pending = [c for c in self.conns.values() if c.outbuf]
        while pending and time.monotonic() < deadline:
            pending = [c for c in pending if not c.flush() and not c.closing]
            if pending:
                time.sleep(0.005)
        for conn in list(self.conns.values()):
            self._close_socket(conn)
        for sock in self.listeners:
            sock.close()
        self.history.close()
        log.info("stopped; %d messages in history written", self.history.stats.get("written", 0))

    # -- connections ---------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        """Accept until EAGAIN so that a storm of connects drains in one round."""
        cfg = self.config
        while True:
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("cannot accept: %s", exc)
                    return
                raise
            host = addr[0]
            if host.startswith(":"):
                host = "0" + host
            if len(self.conns) >= cfg.max_clients:
                self._refuse(sock, "Too many connections on this server")
                continue
            count = self.per_address.get(host, 0)
            if cfg.flood_limit and cfg.max_per_address and count >= cfg.max_per_address:
                self._refuse(sock, "Too many connections from your address")
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock, host)
            conn.tokens = cfg.flood_burst
            conn.user = User(conn, host)
            self.conns[conn.fd] = conn
            self.per_address[host] = count + 1
            self.unknown_count += 1
            self.loop.add_reader(sock, lambda mask, c=conn: self._on_event(c, mask))

    @staticmethod
    def _refuse(sock: socket.socket, reason: str) -> None:
        try:
            sock.setblocking(False)
            sock.send(f"ERROR :Closing link: {reason}\r\n".encode())
        except OSError:
            pass
        sock.close()

    def _on_event(self, conn: Connection, mask: int) -> None:
        if mask & _WRITE:
            self._on_writable(conn)
        if mask & _READ and conn.fd in self.conns:
            lines = conn.read_lines()
            if lines is None:
                self.drop(conn, "Connection closed")
            elif lines:
                self._process(conn, lines)

    def _on_writable(self, conn: Connection) -> None:
        if conn.flush() and conn.writing:
            conn.writing = False
            self._watch(conn)
        if conn.closing and conn.fd in self.conns:
            self.drop(conn, conn.closing)

    def _watch(self, conn: Connection) -> None:
        """Watch for reads unless the client is held (flood, cluster), writes while bytes wait."""
        events = (0 if conn.fd in self._paused else _READ) | (_WRITE if conn.writing else 0)
        self.loop.set_events(conn.sock, events, lambda mask, c=conn: self._on_event(c, mask))

    def flush_dirty(self) -> None:
        """Send every buffer that grew this round, in one call each."""
        self.write_pending()
        dirty = self.dirty
        if not dirty:
            return
        self.dirty = []
        conns = self.conns
        for conn in dirty:
            if conns.get(conn.fd) is not conn:
                continue
            if conn.closing:
                self.drop(conn, conn.closing)
            elif not conn.flush() and not conn.writing:
                conn.writing = True
                self._watch(conn)
            elif conn.closing:
                self.drop(conn, conn.closing)

    def _process(self, conn: Connection, lines: list[bytes]) -> None:
        """Handle complete lines in order, within the flood-control budget."""
        cfg = self.config
        limited = cfg.flood_limit
        if limited:
            conn.refill(cfg.flood_rate, cfg.flood_burst)
        user = conn.user
        assert user is not None
        fast = self.fast_path
        conns = self.conns
        n = len(lines)
        i = 0
        while i < n:
            if conn.closing or conn.fd not in conns:
                return
            if limited and conn.tokens < 1:
                if self.hold(conn, lines[i:]):
                    delay = max(0.01, (1 - conn.tokens) / cfg.flood_rate)
                    self.loop.call_later(delay, lambda: self._resume(conn))
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
                self.hold(conn, lines[i:])  # resumed by whoever made it wait
                return
            self._handle_line(conn, user, raw)
            i += 1

    def must_wait(self, conn: Connection, raw: bytes) -> bool:
        """Whether ``raw`` must wait before it is handled; a cluster node overrides this."""
        return False

    def hold(self, conn: Connection, rest: list[bytes]) -> bool:
        """Put unhandled lines back and stop reading until ``_resume``; False if dropped."""
        backlog = b"\n".join(rest) + b"\n" + conn.inbuf
        if len(backlog) > self.config.recvq_max:
            self.drop(conn, "Excess Flood")
            return False
        conn.inbuf = bytearray(backlog)
        self._paused.add(conn.fd)
        self._watch(conn)
        return True

    def _resume(self, conn: Connection) -> None:
        self._paused.discard(conn.fd)
        if conn.fd not in self.conns:
            return
        self._watch(conn)
        lines = conn.inbuf.split(b"\n")
        conn.inbuf = bytearray(lines.pop())
        if lines:
            self._process(conn, lines)

    def _handle_line(self, conn: Connection, user: User, raw: bytes) -> None:
        if raw == TOO_LONG or _over_limits(raw):
            self.reply(user, N.ERR_INPUTTOOLONG, "Input line was too long")
            return
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            self.send_raw(user, "FAIL * INVALID_UTF8 :Invalid UTF-8 was replaced")
        text = text.rstrip("\r")
        if "\r" in text or "\0" in text:
            text = text.replace("\r", "").replace("\0", "")
        if not text.strip():
            return
        try:
            msg = Message.parse(text)
        except MessageError:
            return
        self.dispatch(user, msg)

    def dispatch(self, user: User, msg: Message) -> None:
        """Run the handler of ``msg.command`` with the standard error numerics."""
        spec = self.commands.get(msg.command)
        if spec is None:
            if user.registered:
                self.reply(user, N.ERR_UNKNOWNCOMMAND, msg.command, "Unknown command")
            else:
                self.reply(user, N.ERR_NOTREGISTERED, "You have not registered")
            return
        if spec.registered and not user.registered:
            self.reply(user, N.ERR_NOTREGISTERED, "You have not registered")
            return
        if self.config.flood_limit and not spec.free:
            user.conn.tokens -= 1  # type: ignore[union-attr]
        if len(msg.params) < spec.min_params:
            self.reply(user, N.ERR_NEEDMOREPARAMS, msg.command, "Not enough parameters")
            return
        label = msg.tags.get("label") if "labeled-response" in user.caps else None
        if label is None:
            self._run(spec.func, user, msg)
            return
        conn = user.conn
        assert conn is not None
        conn.capture = captured = []
        try:
            self._run(spec.func, user, msg)
        finally:
            conn.capture = None
        self.send_labeled(user, label, captured)

    def _run(self, func: HandlerFunc, user: User, msg: Message) -> None:
        """Run a handler; a bug in one command answers 400 and hurts nobody else."""
        try:
            func(self, user, msg)
        except Exception:
            log.exception("handler for %s from %s failed", msg.command, user.source)
            self.reply(user, N.ERR_UNKNOWNERROR, msg.command, "Internal error handling command")

    def drop(self, conn: Connection, reason: str) -> None:
        """Close a client: QUIT to its rooms, ERROR to it, free its nick."""
        if self.conns.get(conn.fd) is not conn:  # gone, or its fd already reused
            return
        self.write_pending()
        user = conn.user
        if user is not None:
            if user.registered:
                self.quit_user(user, reason)
            else:
                self.unknown_count -= 1
        if reason == "SendQ exceeded":
            conn.outbuf.clear()
        conn.outbuf += f"ERROR :Closing link: {conn.addr} ({reason})\r\n".encode()
        conn.flush()
        self._close_socket(conn)

    def _close_socket(self, conn: Connection) -> None:
        self.conns.pop(conn.fd, None)
        self._paused.discard(conn.fd)
        left = self.per_address.get(conn.addr, 1) - 1
        if left > 0:
            self.per_address[conn.addr] = left
        else:
            self.per_address.pop(conn.addr, None)
        self.loop.remove(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.close()
        conn.closing = conn.closing or "closed"

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
        self.deliver(peers, user.source, "QUIT", [reason])
        self.users.pop(user.folded, None)
        self.mode_counts.subtract(user.modes)
        user.registered = False

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        cfg = self.config
        for conn in list(self.conns.values()):
            user = conn.user
            if user is None or not user.registered:
                if now - conn.created > cfg.registration_timeout:
                    self.drop(conn, "Registration timed out")
                continue
            idle = now - conn.last_active
            if conn.ping_sent:
                if now - conn.ping_sent > cfg.ping_timeout:
                    self.drop(conn, f"Ping timeout: {int(now - conn.ping_sent)} seconds")
            elif idle > cfg.ping_interval:
                conn.ping_sent = now
                self.send_raw(user, f"PING :{self.name}")

    # -- rooms ---------------------------------------------------------------------

    def remove_member(self, chan: Channel, user: User) -> None:
        chan.members.pop(user, None)
        chan.groups = None
        user.channels.pop(chan.folded, None)
        if not chan.members:
            self.channels.pop(chan.folded, None)

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
