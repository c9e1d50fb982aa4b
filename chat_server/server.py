"""The server: accepts clients, turns lines into commands, and fans messages out.

Hot path: socket → ``Connection.read_lines`` → for a run of ``PRIVMSG #room :text``
lines, ``fast_privmsgs`` and ``relay_run`` (delivery.py); for anything else
``Message.parse`` → handler → ``deliver`` → the room's open batch (fanout.py), the
same bytes for every member with the same tag mode → after the round of I/O, one
``send`` per connection that has bytes.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial

from chat_protocol import numerics as N
from chat_protocol.casemap import casefold
from chat_protocol.message import Message, MessageError
from chat_server.accounts.book import AccountBook
from chat_server.background import Background
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
from chat_server.flow import FlowControl, SendLimits, chunk_lines
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
from chat_server.tls import DONE as TLS_DONE
from chat_server.tls import WANT_WRITE as TLS_WANT_WRITE
from chat_server.tls import TlsError, describe_failure
from chat_server.tls import advance as tls_advance
from chat_server.tls import buffered as tls_buffered
from chat_server.tls import make_context as make_tls_context

log = logging.getLogger("chat_server")

MAX_CLIENT_TAGS = 4094  # IRCv3 message-tags: bytes of tags a client may send
_READ = 1  # selectors.EVENT_READ
_WRITE = 2  # selectors.EVENT_WRITE


class Server:
    """One chat server process: all state lives here, touched by one thread only.

    The parts are objects of their own: ``loop`` (sockets and timers), ``flow``
    (send-queue limits and backpressure), ``delivery`` (one message to many: msgids,
    history, room batches), ``out`` (replies to one client), ``history``, ``records``
    (what handlers remember: WHOWAS, failed OPERs, LUSERS maxima).
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
        self._held: set[Connection] = set()  # senders whose output waits for a commit
        self.out = Replies(self, self.delivery)
        self.records = HandlerRecords()
        # Accounts (SASL, REGISTER, owned nicks) in the server's database; password
        # hashing on background threads whose answers come back through the loop.
        self.accounts = AccountBook(self.history)
        self.background = Background(self.loop)
        self.client_log = LogLimiter(log)  # log lines a client's input can cause
        self.created = time.time()
        self.listener = Listener(config, self.loop, self._admit, lambda: len(self.conns))
        # The TLS port's context (tls.py); reload_tls() replaces it on SIGHUP.
        self.tls_context: ssl.SSLContext | None = None
        if config.tls_port and config.tls_cert and config.tls_key:
            self.tls_context = make_tls_context(config.tls_cert, config.tls_key)
        self.unknown_count = 0
        self.mode_counts: Counter[str] = Counter()  # user modes among registered users
        self.commands = COMMANDS  # a cluster node swaps in its own table
        self.fast_path = True  # PRIVMSG to a room without the parser (off in a cluster)
        # The command being run: its label, and whether its answer comes later (defer).
        self._label: str | None = None
        self._deferred = False
        self._rerun = False

    def make_delivery(self, msgid_prefix: str, soft: int) -> Delivery:
        """The fan-out part; a cluster node's also publishes to the other nodes."""
        return Delivery(self.history, msgid_prefix, soft)

    # -- lifecycle -----------------------------------------------------------------

    def listen(self) -> None:
        """Bind the listening socket (raises OSError when the port is busy)."""
        self.listener.listen()

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT, then shut down cleanly."""
        rsock, wsock = socket.socketpair()
        rsock.setblocking(False)
        wsock.setblocking(False)
        self.loop.add_reader(rsock, lambda mask: self._drain_wakeup(rsock))
        old_fd = signal.set_wakeup_fd(wsock.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        # SIGHUP reloads the TLS certificate: the handler does nothing itself (a timer
        # or a context swap from inside a signal handler could interrupt the loop
        # mid-change); the wakeup byte it leaves is seen by _drain_wakeup, in the loop.
        signal.signal(signal.SIGHUP, lambda signum, frame: None)
        self.listener.fit_fd_limit()
        self.history.attach(self.loop)  # its hook first: messages reach its pipe before echoes
        self.accounts.start(self.loop, self.background)
        self.loop.after_io(self.flush_dirty)
        self.loop.call_every(1.0, self._check_timeouts)
        log.info("listening on %s:%d", self.config.host, self.config.port)
        if self.tls_context is not None:
            log.info("TLS on %s:%d", self.config.host, self.config.tls_port)
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

    def _drain_wakeup(self, rsock: socket.socket) -> None:
        """Empty the signal wakeup socket (each byte is a signal's number)."""
        signals = b""
        try:
            while chunk := rsock.recv(4096):
                signals += chunk
        except (BlockingIOError, InterruptedError):
            pass
        if signal.SIGHUP in signals:
            self.reload_tls()
            self.accounts.refresh()  # accounts added or removed with 'chat-server account'

    def reload_tls(self) -> None:
        """Load the TLS certificate and key again (after a renewal); new connections
        use them, established ones keep theirs. A file that does not load leaves the
        old certificate in use and says why."""
        cfg = self.config
        if not (cfg.tls_port and cfg.tls_cert and cfg.tls_key):
            log.info("SIGHUP: no TLS configured, nothing to reload")
            return
        try:
            self.tls_context = make_tls_context(cfg.tls_cert, cfg.tls_key)
        except TlsError as exc:
            log.error("SIGHUP: %s; the previous certificate stays in use", exc)
            return
        log.info("SIGHUP: TLS certificate reloaded from %s", cfg.tls_cert)

    def shutdown(self) -> None:
        """Tell every client, flush what we can within a second, and persist history."""
        self.delivery.write_pending()
        # History first: what is echoed below (held echoes with history_sync) is then
        # on disk before it leaves.
        self.history.close()
        farewell = b"ERROR :Server shutting down\r\n"
        for conn in list(self.conns.values()):
            conn.paced.clear()
            conn.outbuf += farewell
        deadline = time.monotonic() + 1.0
        pending = [c for c in self.conns.values() if c.outbuf]
        while pending and time.monotonic() < deadline:
            pending = [c for c in pending if not c.flush() and not c.closing]
            if pending:
                time.sleep(0.005)
        for conn in list(self.conns.values()):
            self._close_socket(conn)
        self.listener.close()
        self.background.close()
        log.info("stopped; %d messages in history written", self.history.stats.get("written", 0))

    # -- connections ---------------------------------------------------------------

    def _admit(self, sock: socket.socket, host: str, tls: bool = False) -> None:
        """A client the listener accepted: its connection, not yet registered (a TLS
        one not even through its handshake, which the loop drives: tls.py)."""
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            assert self.tls_context is not None
            try:
                sock = self.tls_context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
            except OSError as exc:
                self.client_log.info("tls", "TLS from %s refused: %s", host, describe_failure(exc))
                sock.close()
                self.listener.released(host)
                return
        conn = Connection(sock, host)
        conn.tls = conn.handshaking = tls
        conn.tokens = self.config.flood_burst
        conn.user = User(conn, host)
        self.conns[conn.fd] = conn
        self.unknown_count += 1
        self.loop.add_reader(sock, partial(self._on_event, conn))

    def _on_event(self, conn: Connection, mask: int) -> None:
        if conn.handshaking:
            self._handshake(conn)
            return
        if mask & _WRITE:
            self._send(conn)
        if mask & _READ and self.conns.get(conn.fd) is conn and not conn.paused:
            if self.flow.congested and self.flow.room_is_congested(conn):
                self.pause(conn, PAUSED_ROOM)  # its messages would pile up on a slow reader
                return
            lines = conn.read_lines(self.config.read_budget)
            if lines is None:
                self.drop(conn, "Connection closed")
            elif lines:
                self._process(conn, lines)
            if conn.tls:
                self._read_buffered(conn)

    def _handshake(self, conn: Connection) -> None:
        """One step of a TLS handshake (tls.py); a failed one closes the connection."""
        if self.conns.get(conn.fd) is not conn:
            return
        try:
            state = tls_advance(conn.sock)  # type: ignore[arg-type]
        except OSError as exc:
            self.client_log.info(
                "tls", "TLS handshake with %s failed: %s", conn.addr, describe_failure(exc)
            )
            self.drop(conn, "TLS handshake failed")
            return
        if state == TLS_DONE:
            conn.handshaking = False
            conn.last_active = time.monotonic()
            self._watch(conn)  # and reads what came with the handshake (_read_buffered)
        else:
            events = _READ | (_WRITE if state == TLS_WANT_WRITE else 0)
            self.loop.set_events(conn.sock, events, partial(self._on_event, conn))

    def _read_buffered(self, conn: Connection) -> None:
        """Read a TLS connection again next round when decrypted bytes wait in its SSL
        object: they no longer make the socket readable (see tls.py)."""
        if not conn.paused and self.conns.get(conn.fd) is conn and tls_buffered(conn.sock):
            self.loop.call_later(0, partial(self._on_event, conn, _READ))

    def _watch(self, conn: Connection) -> None:
        """Watch for reads unless the client is paused, for writes while bytes wait."""
        if self.conns.get(conn.fd) is not conn:
            return  # closed: its fd may already belong to someone else
        events = (0 if conn.paused else _READ) | (_WRITE if conn.writing else 0)
        self.loop.set_events(conn.sock, events, partial(self._on_event, conn))
        if conn.tls:
            self._read_buffered(conn)  # resumed: bytes may wait where epoll cannot see

    def flush_dirty(self) -> None:
        """Send every buffer that grew this round, in one call each."""
        dirty = self.delivery.take_dirty()
        if not dirty:
            return
        conns = self.conns
        now = time.monotonic()
        for conn in dirty:
            if conns.get(conn.fd) is conn:
                self._send(conn, now)

    def _send(self, conn: Connection, now: float | None = None) -> None:
        """One send attempt, then the flow-control verdict on what is left (flow.py)."""
        if conn.held_for:
            if conn.held_for > self.history.committed_seq:
                self._hold(conn)
                return
            conn.held_for = 0
        flow = self.flow
        for _ in range(4):  # again only when a paced reply refilled an emptied buffer
            if conn.closing:
                self.drop(conn, conn.closing)
                return
            sent_all = conn.flush()
            reason = conn.closing or flow.check(conn, now)
            if reason:
                self.drop(conn, reason)
                return
            if not (sent_all and conn.outbuf):
                break
        writing = bool(conn.outbuf)
        if writing != conn.writing:
            conn.writing = writing
            self._watch(conn)
        if conn.paused & PAUSED_BACKLOG and not conn.paced and len(conn.outbuf) <= flow.limits.low:
            self.resume(conn, PAUSED_BACKLOG)

    def _hold(self, conn: Connection) -> None:
        """history_sync: keep a sender's output (its echo, its labeled reply) until its
        messages are committed, so an echo means the message is on disk. The hold is
        short (one commit); the backlog limits still apply meanwhile."""
        if conn.writing:
            conn.writing = False
            self._watch(conn)  # nothing may go out: do not wake for writability
        reason = conn.closing or self.flow.check(conn, None)
        if reason:
            self.drop(conn, reason)
            return
        if conn not in self._held:
            self._held.add(conn)
            self.history.when_committed(conn.held_for, partial(self._release, conn))

    def _release(self, conn: Connection) -> None:
        self._held.discard(conn)
        if self.conns.get(conn.fd) is conn:
            self._send(conn)  # holds it again if it stored newer messages meanwhile

    def send_paced(self, conn: Connection, lines: Iterable[bytes]) -> None:
        """Send a long reply as the client drains it; its further lines wait meanwhile."""
        if conn.capture is not None:
            conn.capture.extend(lines)
            return
        if conn.closing:
            return
        self.delivery.write_pending()  # room messages produced before the reply go first
        self.flow.queue_paced(conn, chunk_lines(lines))
        self.delivery.dirty.append(conn)  # sent, and the rest pumped, after this round
        if conn.paced:
            self.pause(conn, PAUSED_BACKLOG)

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
                self._send(conn)
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
                if self._rerun:
                    self._rerun = False
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
            self._watch(conn)

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
            self._watch(conn)

    def _process_held(self, conn: Connection) -> None:
        if conn.paused or self.conns.get(conn.fd) is not conn:
            return  # paused again meanwhile: whoever paused it resumes it
        lines = conn.take_held()
        if lines:
            self._process(conn, lines)
        if not conn.paused and self.conns.get(conn.fd) is conn:
            self._watch(conn)

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
        self.dispatch(user, msg)

    def dispatch(self, user: User, msg: Message) -> None:
        """Run ``msg``'s command; with a label, everything it answers is captured and
        sent as one labeled response (errors such as 421 included)."""
        label = msg.tags.get("label") if "labeled-response" in user.caps else None
        conn = user.conn
        if not label or conn is None:  # an empty label is no label
            self._run(user, msg)
            return
        captured: list[bytes] = []
        conn.capture = captured
        self.delivery.capturing = conn
        self._label = label
        self._deferred = False
        try:
            self._run(user, msg)
        finally:
            conn.capture = None
            self.delivery.capturing = None
            self._label = None
        if not self._deferred:  # else the answer carries the label when it comes
            self.out.send_labeled(user, label, captured)

    def defer(self, user: User, *, rerun: bool = False) -> Deferred | None:
        """The running command answers later (a history query): stop reading its client
        until ``complete`` (or, with ``rerun``, run the command again once ``resume``d).
        None when there is no connection to answer."""
        conn = user.conn
        if conn is None:
            return None
        self._deferred = True
        self._rerun = rerun
        self.pause(conn, PAUSED_HISTORY)
        return Deferred(conn, user, self._label)

    def complete(self, deferred: Deferred, produce: Callable[[], None]) -> None:
        """Send a deferred answer (labeled like its command) and read the client again."""
        conn = deferred.conn
        if self.conns.get(conn.fd) is not conn or conn.closing:
            return
        if deferred.label is None:
            produce()
        else:
            captured: list[bytes] = []
            conn.capture = captured
            self.delivery.capturing = conn
            try:
                produce()
            finally:
                conn.capture = None
                self.delivery.capturing = None
            self.out.send_labeled(deferred.user, deferred.label, captured)
        self.resume(conn, PAUSED_HISTORY)

    def _run(self, user: User, msg: Message) -> None:
        """The handler with the standard error numerics; a bug in one command answers
        400 and hurts nobody else."""
        spec = self.commands.get(msg.command)
        if spec is None:
            if user.registered:
                self.out.reply(user, N.ERR_UNKNOWNCOMMAND, msg.command, "Unknown command")
            else:
                self.out.reply(user, N.ERR_NOTREGISTERED, "You have not registered")
            return
        if spec.registered and not user.registered:
            self.out.reply(user, N.ERR_NOTREGISTERED, "You have not registered")
            return
        extra = spec.cost - 1
        if extra > 0 and self.config.flood_limit and user.conn is not None:
            user.conn.tokens -= extra  # costly commands (masked WHO) cost more lines
        if len(msg.params) < spec.min_params:
            self.out.reply(user, N.ERR_NEEDMOREPARAMS, msg.command, "Not enough parameters")
            return
        try:
            spec.func(self, user, msg)
        except Exception:
            self.client_log.exception(
                "handler", "handler for %s from %s failed", msg.command, user.source
            )
            self.out.reply(user, N.ERR_UNKNOWNERROR, msg.command, "Internal error handling command")

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
        self._held.discard(conn)
        if reason == "SendQ exceeded":
            conn.outbuf.clear()
            conn.paced.clear()
        if not conn.handshaking:  # no TLS yet: nothing can be said to it
            conn.outbuf += f"ERROR :Closing link: {conn.addr} ({reason})\r\n".encode()
            conn.flush()
        self.on_drop(conn)
        self._close_socket(conn)

    def on_drop(self, conn: Connection) -> None:
        """Called as a client goes, before its socket closes; a cluster node cleans up."""

    def _close_socket(self, conn: Connection) -> None:
        self.conns.pop(conn.fd, None)
        self.listener.released(conn.addr)
        self.flow.relieve(conn)
        conn.paced.clear()
        conn.fast_head = None
        conn.batch = None
        self.loop.remove(conn.sock)
        if conn.tls and not conn.handshaking:
            # Say goodbye the TLS way (close_notify), without waiting for the answer.
            with contextlib.suppress(OSError, ValueError):
                conn.sock.unwrap()  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            conn.sock.close()
        conn.closing = conn.closing or "closed"
        # Break the Connection <-> User cycle so that both are freed at once by
        # reference counting, not at a rare full collection (see cli.tune_gc).
        user = conn.user
        if user is not None:
            user.conn = None
        conn.user = None

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

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        cfg = self.config
        for conn in self.flow.expired(now):
            self.drop(conn, "SendQ exceeded")
        for conn in list(self.conns.values()):
            if conn.writing and conn.outbuf:
                # Not writable since its last send: judge what piled up meanwhile.
                reason = self.flow.check(conn, now)
                if reason:
                    self.drop(conn, reason)
                    continue
            if conn.handshaking and now - conn.created > cfg.tls_handshake_timeout:
                self.drop(conn, "TLS handshake timed out")
                continue
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
                self.out.send_raw(user, f"PING :{self.name}")

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
