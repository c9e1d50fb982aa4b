"""The asyncio IRC client connection shared by chat-tui, chat-bot and chat-perf.

``IRCClient.run()`` owns the connection: it tries the configured servers in order,
negotiates capabilities, logs in to an account (SASL, ``client_caps``), registers
(falling back to another nick when ours is taken, and taking it back once free:
``client_nick``), rejoins channels and fills the gap with ``CHATHISTORY AFTER`` after a
reconnect (``client_rejoin``), answers PING and measures lag. Callers read ``events()``
and call the send methods; they never see a socket. The contract is docs/client-api.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import TypeVar

from chat_protocol import numerics as n
from chat_protocol.client_caps import CapNegotiation
from chat_protocol.client_history import history_limit, history_only, history_ref
from chat_protocol.client_lines import outgoing_line, read_messages
from chat_protocol.client_nick import NickReclaim, fallback_nick
from chat_protocol.client_rejoin import ChannelRejoin, channel_name
from chat_protocol.client_requests import PendingRequest, RequestTracker
from chat_protocol.client_search import (
    SEARCH_BATCH,
    SEARCH_CAP,
    SearchFailed,
    SearchQuery,
    search_results,
)
from chat_protocol.client_state import Batch, SeenIds, SessionState, format_time
from chat_protocol.client_tls import tls_context
from chat_protocol.client_types import (
    WANTED_CAPS,
    AccountChanged,
    ChannelState,
    ClientConfig,
    Connected,
    Disconnected,
    Event,
    LoginFailed,
    NickFallback,
    NickReclaimed,
    NotConnected,
    Received,
    RegistrationError,
    ServerAddress,
    parse_servers,
)
from chat_protocol.message import Message
from chat_protocol.split import split_message, split_utf8, text_budget

__all__ = [
    "AccountChanged",
    "ChannelState",
    "ClientConfig",
    "Connected",
    "Disconnected",
    "Event",
    "IRCClient",
    "LoginFailed",
    "NickFallback",
    "NickReclaimed",
    "NotConnected",
    "Received",
    "RegistrationError",
    "SearchFailed",
    "SearchQuery",
    "ServerAddress",
    "fallback_nick",
    "parse_servers",
]

T = TypeVar("T")


class _Stopped(Exception):
    """close() was called while run() waited for something."""


def _in_search_batch(msg: Message, chain: list[Batch]) -> bool:
    if msg.command == "BATCH" and msg.param(0).startswith("+"):
        return msg.param(1) == SEARCH_BATCH
    return any(b.type == SEARCH_BATCH for b in chain)


class IRCClient:
    """One logical IRC connection that survives server restarts and failovers."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.server: ServerAddress | None = None
        self.lag: float | None = None
        self._state = SessionState(config.nick)
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._writer: asyncio.StreamWriter | None = None
        self._connected = False
        self._running = False
        self._stop = asyncio.Event()
        self._finished = asyncio.Event()
        self._final_sent = False
        self._close_reason = "closed"
        self._drop_reason: str | None = None
        self._seen = SeenIds()
        self._requests = RequestTracker()
        self._fence_lock = asyncio.Lock()
        self._rejoin = ChannelRejoin(
            config, self._state, self._write, self.request, self._emit_message
        )
        self._reclaim = NickReclaim(config, self._state, self._write, self.request, self._emit)

    # -- state, read-only for callers ------------------------------------------------

    @property
    def nick(self) -> str:
        return self._state.nick

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def account(self) -> str | None:
        """The account the server says we are logged in to (None: none)."""
        return self._state.account

    @property
    def offered_caps(self) -> dict[str, str]:
        """What the server's CAP LS (and NEW) offered: name -> value."""
        return self._state.offered

    @property
    def caps(self) -> set[str]:
        return self._state.caps

    @property
    def isupport(self) -> dict[str, str]:
        return self._state.isupport

    @property
    def channels(self) -> dict[str, ChannelState]:
        return self._state.channels

    def casefold(self, name: str) -> str:
        """Fold a name as the server does; the key to use with ``channels``."""
        return self._state.casefold(name)

    # -- lifetime --------------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        """Every event once, in order; ends after the final Disconnected(retry_in=None)."""
        while True:
            event = await self._events.get()
            if event is None:
                self._events.put_nowait(None)  # later iterators end too
                return
            yield event

    async def run(self) -> None:
        """Connect, register, read; reconnect with backoff until close()."""
        if self._running or self._stop.is_set():
            raise RuntimeError("run() is already running or the client was closed")
        self._running = True
        servers = self.config.servers
        index = failures = 0
        try:
            while not self._stop.is_set():
                server = servers[index]
                registered, reason = await self._attempt(server)
                if self._stop.is_set():
                    break
                if registered:
                    failures = 0
                    delay = self._jitter(self.config.reconnect_min)
                else:
                    failures += 1
                    index = (index + 1) % len(servers)
                    rounds, rest = divmod(failures, len(servers))
                    delay = 0.0 if rest else self._backoff(rounds)
                self._emit(Disconnected(f"{server}: {reason}", delay))
                if delay:
                    with contextlib.suppress(_Stopped):
                        await self._unless_stopped(asyncio.sleep(delay))
        finally:
            self._running = False
            self._finish()

    async def close(self, reason: str = "bye") -> None:
        """Say QUIT, stop run() and end events(); safe to call more than once."""
        if self._stop.is_set():
            if self._running:
                await self._finished.wait()
            return
        self._close_reason = reason
        self._stop.set()
        writer = self._writer
        if writer is not None and self._connected:
            with contextlib.suppress(OSError, ValueError):
                writer.write(Message("QUIT", [reason]).to_bytes())
        if not self._running:
            self._finish()
            return
        try:
            await asyncio.wait_for(self._finished.wait(), 3.0)
        except TimeoutError:  # the server did not hang up after QUIT: do it ourselves
            if self._writer is not None:
                self._writer.transport.abort()
            await self._finished.wait()

    def _finish(self) -> None:
        if not self._final_sent:
            self._final_sent = True
            self._emit(Disconnected(self._close_reason, None))
            self._events.put_nowait(None)
        self._finished.set()

    def _backoff(self, rounds: int) -> float:
        base = self.config.reconnect_min * 2 ** max(0, rounds - 1)
        return min(self.config.reconnect_max, self._jitter(base))

    @staticmethod
    def _jitter(delay: float) -> float:
        # Spread reconnects so that a restarted server is not hit by everyone at once.
        return delay * random.uniform(0.8, 1.2)

    async def _unless_stopped(self, aw: Awaitable[T]) -> T:
        """Await ``aw`` but give up (raise _Stopped) as soon as close() is called."""
        task = asyncio.ensure_future(aw)
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise _Stopped
        return task.result()

    # -- one connection --------------------------------------------------------------

    async def _attempt(self, server: ServerAddress) -> tuple[bool, str]:
        """One connection to ``server``: (whether it registered, why it ended)."""
        try:
            tls = tls_context(self.config) if server.tls else None
            reader, writer = await self._unless_stopped(
                asyncio.wait_for(
                    asyncio.open_connection(
                        server.host, server.port, ssl=tls,
                        server_hostname=server.host if tls else None,
                    ),
                    self.config.connect_timeout,
                )
            )  # fmt: skip
        except _Stopped:
            return False, "closed"
        except TimeoutError:
            return False, "connect timed out"
        except ssl.SSLCertVerificationError as exc:
            return False, f"TLS certificate not trusted: {exc.verify_message}"
        except ssl.SSLError as exc:
            return False, f"TLS failed: {exc.reason or exc}"
        except OSError as exc:
            return False, exc.strerror or str(exc)
        self._writer = writer
        self._state.reset_connection()
        self._state.nick = self.config.nick
        self._drop_reason = None
        lines = read_messages(reader)
        registered = False
        pinger: asyncio.Task[None] | None = None
        try:
            await self._unless_stopped(
                asyncio.wait_for(self._register(lines), self.config.connect_timeout)
            )
            registered = True
            self.server = server
            self._connected = True
            self._after_registration(server)
            pinger = asyncio.create_task(self._ping_loop())
            async for msg in lines:
                self._dispatch(msg)
            return True, self._drop_reason or "connection closed by server"
        except _Stopped:
            return registered, "closed"
        except TimeoutError:
            return False, "registration timed out"
        except (OSError, RegistrationError) as exc:
            return registered, self._drop_reason or str(exc) or type(exc).__name__
        finally:
            self._connected = False
            if pinger is not None:
                pinger.cancel()
            self._reclaim.stop()
            self._rejoin.connection_lost()
            self._requests.fail_all(NotConnected("connection lost"))
            self._writer = None
            writer.close()
            with contextlib.suppress(Exception):
                await lines.aclose()

    async def _register(self, lines: AsyncIterator[Message]) -> None:
        """CAP LS 302, PASS, NICK, USER, CAP REQ, SASL, CAP END; returns at the end of
        the MOTD."""
        cfg = self.config
        self._write(Message("CAP", ["LS", "302"]))
        if cfg.password:
            self._write(Message("PASS", [cfg.password]))
        self._write(Message("NICK", [cfg.nick]))
        self._write(Message("USER", [cfg.username or cfg.nick, "0", "*", cfg.realname]))
        caps = CapNegotiation(cfg, WANTED_CAPS, self._write, self._emit)
        refusals = 0
        welcomed = False
        try:
            async for msg in lines:
                if msg.command != "AUTHENTICATE":  # SASL's payloads are nobody's news
                    self._dispatch(msg)
                if not welcomed:
                    await caps.feed(msg)
                cmd = msg.command
                if cmd in (n.ERR_NICKNAMEINUSE, "436") and not welcomed:
                    refusals += 1
                    if refusals > 20:
                        raise RegistrationError("no free nick found")
                    self._state.nick = fallback_nick(cfg.nick, refusals)
                    self._write(Message("NICK", [self._state.nick]))
                elif cmd == n.ERR_ERRONEUSNICKNAME and not welcomed:
                    raise RegistrationError(f"server refused nick {self._state.nick!r}")
                elif cmd == n.ERR_PASSWDMISMATCH:
                    raise RegistrationError("password refused")
                elif cmd == "ERROR":
                    raise RegistrationError(msg.param(0, "server sent ERROR"))
                elif cmd == n.RPL_WELCOME:
                    welcomed = True
                elif cmd in (n.RPL_ENDOFMOTD, n.ERR_NOMOTD) and welcomed:
                    return
        finally:
            caps.close()
        raise ConnectionError("connection closed during registration")

    def _after_registration(self, server: ServerAddress) -> None:
        if self.nick != self.config.nick:
            self._emit(NickFallback(self.config.nick, self.nick))
        self._emit(Connected(server, self.nick))
        bot_mode = self._state.isupport.get("BOT")
        if self.config.bot and bot_mode:
            self._write(Message("MODE", [self.nick, "+" + bot_mode]))
        self._rejoin.rejoin()
        self._reclaim.start()

    async def _ping_loop(self) -> None:
        """PING every ping_interval; a PING still unanswered one interval later is fatal."""
        interval = self.config.ping_interval
        while True:
            await asyncio.sleep(interval)
            waited = self._requests.oldest_ping_age()
            if waited is not None and waited >= interval:
                self._drop_reason = f"ping timeout ({interval:.0f}s)"
                if self._writer is not None:
                    self._writer.transport.abort()
                return
            with contextlib.suppress(OSError, NotConnected):
                self._write(Message("PING", [self._requests.new_ping(lag=True)]))

    # -- incoming ----------------------------------------------------------------------

    def _dispatch(self, msg: Message) -> None:
        """Route one message: protocol chores, request replies, state, then events."""
        if msg.command == "PING":
            self._write(Message("PONG", msg.params or [""]))
        elif msg.command == "PONG" and self._pong(msg):
            return
        elif msg.command == "CAP" and msg.param(1).upper() == "NEW" and self._connected:
            new = [c.split("=", 1)[0] for c in msg.params[-1].split()]
            wanted = [c for c in WANTED_CAPS if c in new and c not in self.caps]
            if wanted:
                self._write(Message("CAP", ["REQ", " ".join(wanted)]))
        chain = self._state.batch_chain(msg)
        history = self._state.is_history(msg)
        if not history:
            self._rejoin.track(msg)
        claimed = self._reclaim.claim(msg) or self._requests.claim(msg, chain)
        nick, account = self.nick, self._state.account
        self._state.apply(msg)
        if not claimed:
            self._deliver(msg, history, chain)
        if self._state.account != account:
            self._emit(AccountChanged(self._state.account))
        if self.nick != nick:
            self._reclaim.nick_changed(nick, self.nick)

    def _pong(self, msg: Message) -> bool:
        """Settle our own PINGs (lag or request fence); True when the PONG was ours."""
        ours, lag = self._requests.pong(msg)
        if lag is not None:
            self.lag = lag
        return ours

    def _deliver(self, msg: Message, history: bool, chain: list[Batch]) -> None:
        if _in_search_batch(msg, chain):
            return  # the answer to a search that gave up waiting: results, not news
        if not self._rejoin.route(msg, history, chain):
            self._emit_message(msg, history)

    def _emit_message(self, msg: Message, history: bool) -> None:
        msgid = msg.tags.get("msgid")
        if msgid is not None and not self._seen.add(msgid):
            return
        self._emit(Received(msg, history))

    def _emit(self, event: Event) -> None:
        self._events.put_nowait(event)

    # -- sending ---------------------------------------------------------------------

    def _write(self, msg: Message) -> None:
        """Queue one line on the socket; checks the IRC limits first."""
        writer = self._writer
        if writer is None or writer.is_closing():
            raise NotConnected("not connected")
        writer.write(outgoing_line(msg, self.caps))

    async def _drain(self) -> None:
        writer = self._writer
        if writer is None:
            raise NotConnected("not connected")
        try:
            await writer.drain()
        except (ConnectionError, OSError) as exc:
            raise NotConnected(str(exc)) from exc

    def _check_online(self) -> None:
        if not self._connected:
            raise NotConnected("not connected")

    async def send(self, msg: Message | str) -> None:
        """Send one raw message (a ``Message`` or a line such as ``"WHO #room"``)."""
        self._check_online()
        self._write(Message.parse(msg) if isinstance(msg, str) else msg)
        await self._drain()

    async def _send_text(
        self, command: str, target: str, chunks: list[str], tags: dict[str, str]
    ) -> None:
        self._check_online()
        if not chunks:
            raise ValueError("nothing to send")
        for chunk in chunks:
            self._write(Message(command, [target, chunk], tags=dict(tags)))
        if "echo-message" not in self.caps:
            # Without echo-message the server never shows us our own line: show it here.
            source = self._state.source or self.nick
            for chunk in chunks:
                self._emit(Received(Message(command, [target, chunk], source)))
        await self._drain()

    async def privmsg(self, target: str, text: str, *, tags: dict[str, str] | None = None) -> None:
        """Send text to a channel or nick, split into lines that fit (UTF-8 safe)."""
        chunks = split_message("PRIVMSG", target, text, self._state.source)
        await self._send_text("PRIVMSG", target, chunks, tags or {})

    async def notice(self, target: str, text: str) -> None:
        """Send a NOTICE (bots use these so that other bots do not answer them)."""
        chunks = split_message("NOTICE", target, text, self._state.source)
        await self._send_text("NOTICE", target, chunks, {})

    async def action(self, target: str, text: str) -> None:
        """Send ``/me text`` as CTCP ACTION; each split line is its own ACTION."""
        budget = text_budget("PRIVMSG", target, self._state.source) - len("\x01ACTION \x01")
        chunks = [f"\x01ACTION {c}\x01" for c in split_utf8(text, max(4, budget))]
        await self._send_text("PRIVMSG", target, chunks, {})

    async def tagmsg(self, target: str, tags: dict[str, str]) -> None:
        """Send a TAGMSG (e.g. typing); does nothing when the server has no message-tags."""
        self._check_online()
        if "message-tags" in self.caps:
            self._write(Message("TAGMSG", [target], tags=dict(tags)))
            await self._drain()

    async def join(self, channel: str, key: str | None = None) -> None:
        """JOIN (``room`` means ``#room``); the channel is rejoined after reconnects."""
        self._check_online()
        name = channel_name(channel)
        self._write(Message("JOIN", [name, key] if key else [name]))
        self._rejoin.want(name, key)
        await self._drain()

    async def part(self, channel: str, reason: str = "") -> None:
        """PART; the channel is no longer rejoined after reconnects."""
        self._check_online()
        name = channel_name(channel)
        self._write(Message("PART", [name, reason] if reason else [name]))
        self._rejoin.forget(name)
        await self._drain()

    async def request(self, msg: Message | str, timeout: float = 10.0) -> list[Message]:
        """Send ``msg`` and return its reply; the reply is not also sent to events()."""
        self._check_online()
        msg = Message.parse(msg) if isinstance(msg, str) else msg
        loop = asyncio.get_running_loop()
        if "labeled-response" in self.caps:
            label = self._requests.new_label()
            pending = PendingRequest(loop.create_future())
            self._requests.labeled[label] = pending
            try:
                self._write(Message(msg.command, msg.params, None, {**msg.tags, "label": label}))
                return await asyncio.wait_for(pending.future, timeout)
            finally:
                self._requests.labeled.pop(label, None)
        async with self._fence_lock:
            self._check_online()
            pending = PendingRequest(loop.create_future(), command=msg.command)
            self._requests.fenced = pending
            try:
                self._write(msg)
                self._write(Message("PING", [self._requests.new_ping(lag=False)]))
                return await asyncio.wait_for(pending.future, timeout)
            finally:
                if self._requests.fenced is pending:
                    self._requests.fenced = None

    def _limit(self, limit: int) -> int:
        return history_limit(self._state.isupport, limit)

    async def history_before(
        self, target: str, msgid_or_time: str, limit: int = 100
    ) -> list[Message]:
        """Older messages (oldest first) for scrollback; [] when the server keeps none."""
        if "draft/chathistory" not in self.caps:
            return []
        ref = history_ref(msgid_or_time)
        query = Message("CHATHISTORY", ["BEFORE", target, ref, str(self._limit(limit))])
        return history_only(await self.request(query))

    async def history_latest(self, target: str, limit: int = 100) -> list[Message]:
        """The newest messages of ``target`` (oldest first); [] without chathistory."""
        if "draft/chathistory" not in self.caps:
            return []
        query = Message("CHATHISTORY", ["LATEST", target, "*", str(self._limit(limit))])
        return history_only(await self.request(query))

    async def history_around(
        self, target: str, msgid_or_time: str, limit: int = 50
    ) -> list[Message]:
        """Messages around one (oldest first; it is among them); [] without chathistory."""
        if "draft/chathistory" not in self.caps:
            return []
        ref = history_ref(msgid_or_time)
        query = Message("CHATHISTORY", ["AROUND", target, ref, str(self._limit(limit))])
        return history_only(await self.request(query))

    async def history_between(
        self, target: str, start: str, end: str | None, limit: int = 100
    ) -> list[Message]:
        """Messages after ``start`` and before ``end`` (None: up to now), oldest first,
        both exclusive; [] without chathistory."""
        if "draft/chathistory" not in self.caps:
            return []
        size = str(self._limit(limit))
        if end is None:
            query = Message("CHATHISTORY", ["AFTER", target, history_ref(start), size])
        else:
            refs = [history_ref(start), history_ref(end)]
            query = Message("CHATHISTORY", ["BETWEEN", target, *refs, size])
        return history_only(await self.request(query))

    async def history_targets(
        self, since: datetime, until: datetime | None = None, limit: int = 50
    ) -> list[tuple[str, str]]:
        """Conversations (rooms we are in and direct ones) with messages between ``since``
        and ``until`` (None: now), as (target, time of the latest message), from
        ``CHATHISTORY TARGETS``; [] without chathistory."""
        if "draft/chathistory" not in self.caps:
            return []
        end = datetime.now(UTC) if until is None else until
        refs = ["timestamp=" + format_time(since), "timestamp=" + format_time(end)]
        query = Message("CHATHISTORY", ["TARGETS", *refs, str(self._limit(limit))])
        return [
            (m.param(1), m.param(2))
            for m in await self.request(query)
            if m.command == "CHATHISTORY" and m.param(0).upper() == "TARGETS" and m.param(1)
        ]

    @property
    def can_search(self) -> bool:
        """Whether the server searches its history for us (``soju.im/search``)."""
        return SEARCH_CAP in self.caps

    async def search(self, query: SearchQuery, timeout: float = 10.0) -> list[Message]:
        """The messages matching ``query``, oldest first, as the server stored them (with
        time and msgid). SearchFailed when the server refuses the query or has no search."""
        if not self.can_search:
            raise SearchFailed(f"the server does not offer {SEARCH_CAP}")
        return search_results(await self.request(query.to_message(), timeout))
