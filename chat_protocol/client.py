"""The asyncio IRC client connection shared by chat-tui, chat-bot and chat-perf.

``IRCClient.run()`` owns the connection: it tries the configured servers in order,
negotiates capabilities, logs in to an account (SASL, ``client_caps``), registers
(falling back to another nick when ours is taken), rejoins channels and fills the gap
with ``CHATHISTORY AFTER`` after a reconnect, answers PING and measures lag. Callers
read ``events()`` and call the send methods; they never see a socket. The contract is
docs/client-api.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from chat_protocol import numerics as n
from chat_protocol.casemap import is_channel
from chat_protocol.client_caps import CapNegotiation
from chat_protocol.client_history import ChannelHold, history_only, history_ref
from chat_protocol.client_lines import read_messages
from chat_protocol.client_requests import PendingRequest, RequestTracker
from chat_protocol.client_search import (
    SEARCH_BATCH,
    SEARCH_CAP,
    SearchFailed,
    SearchQuery,
    search_results,
)
from chat_protocol.client_state import Batch, SeenIds, SessionState, format_time, parse_time
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
    NotConnected,
    Received,
    RegistrationError,
    ServerAddress,
    parse_servers,
)
from chat_protocol.message import Message, format_tags
from chat_protocol.split import LINE_LIMIT, split_message, split_utf8, text_budget

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
    "NotConnected",
    "Received",
    "RegistrationError",
    "SearchFailed",
    "SearchQuery",
    "ServerAddress",
    "parse_servers",
]

T = TypeVar("T")
CLIENT_TAG_LIMIT = 4094
_MESSAGE_COMMANDS = frozenset({"PRIVMSG", "NOTICE", "TAGMSG"})


class _Stopped(Exception):
    """close() was called while run() waited for something."""


def fallback_nick(wanted: str, attempt: int, max_len: int = 30) -> str:
    """The nick to try after ``attempt`` refusals: ``nick_``, ``nick__``, then ``nick1``..."""
    suffix = "_" * attempt if attempt <= 2 else str(attempt - 2)
    return wanted[: max(1, max_len - len(suffix))] + suffix


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
        self._wanted: dict[str, tuple[str, str | None]] = {}
        for name in config.channels:
            self._want(self._channel_name(name), None)
        self._seen = SeenIds()
        self._requests = RequestTracker()
        self._fence_lock = asyncio.Lock()
        self._pings: deque[tuple[str, float]] = deque()
        self._ping_ids = itertools.count(1)
        self._holds: dict[str, ChannelHold] = {}
        self._gap_from: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

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
            for task in list(self._tasks):
                task.cancel()
            self._requests.fail_all(NotConnected("connection lost"))
            for folded in list(self._holds):
                self._release_hold(folded, [])
            self._pings.clear()
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
        self._gap_from = {}
        for folded, (name, key) in self._wanted.items():
            last = self._state.last_seen.get(folded)
            if last is not None and last.time is not None:
                self._gap_from[folded] = last.time
            self._write(Message("JOIN", [name, key] if key else [name]))

    async def _ping_loop(self) -> None:
        """PING every ping_interval; a PING still unanswered one interval later is fatal."""
        interval = self.config.ping_interval
        while True:
            await asyncio.sleep(interval)
            if self._pings and time.monotonic() - self._pings[0][1] >= interval:
                self._drop_reason = f"ping timeout ({interval:.0f}s)"
                if self._writer is not None:
                    self._writer.transport.abort()
                return
            token = f"lag{next(self._ping_ids)}"
            self._pings.append((token, time.monotonic()))
            with contextlib.suppress(OSError, NotConnected):
                self._write(Message("PING", [token]))

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
            self._track_own_membership(msg)
        claimed = self._requests.claim(msg, chain)
        account = self._state.account
        self._state.apply(msg)
        if not claimed:
            self._deliver(msg, history, chain)
        if self._state.account != account:
            self._emit(AccountChanged(self._state.account))

    def _pong(self, msg: Message) -> bool:
        """Settle our own PINGs (lag or request fence); True when the PONG was ours."""
        if not self._pings:
            return False
        token = msg.params[-1] if msg.params else ""
        tokens = [t for t, _ in self._pings]
        # Servers answer in order; one that does not echo the token answers the oldest.
        upto = tokens.index(token) if token in tokens else 0
        for _ in range(upto + 1):
            token, sent = self._pings.popleft()
            if token.startswith("lag"):
                self.lag = time.monotonic() - sent
            elif self._requests.fenced is not None:
                fenced = self._requests.fenced
                fenced.finish(fenced.messages)
        return True

    def _track_own_membership(self, msg: Message) -> None:
        """Keep the rejoin list in step with what the server says we are in."""
        if msg.command == "JOIN" and self._state.is_me(msg.nick):
            self._on_own_join(msg)
        elif (msg.command == "PART" and self._state.is_me(msg.nick)) or (
            msg.command == "KICK" and self._state.is_me(msg.param(1))
        ):
            self._wanted.pop(self.casefold(msg.param(0)), None)

    def _on_own_join(self, msg: Message) -> None:
        folded = self.casefold(msg.param(0))
        if folded not in self._wanted:
            self._want(msg.param(0), None)  # a raw JOIN or a server-side join: keep it
        since = self._gap_from.pop(folded, None)
        if since is not None and "draft/chathistory" in self.caps:
            self._holds[folded] = ChannelHold()
            task = asyncio.create_task(self._fill_gap(folded, msg.param(0), since))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fill_gap(self, folded: str, name: str, since: str) -> None:
        """CHATHISTORY AFTER the last message we saw; one ms earlier, dedupe does the rest."""
        fetched: list[Message] = []
        try:
            start = parse_time(since)
            ref = format_time(start - timedelta(milliseconds=1)) if start else since
            limit = self._history_limit(self.config.gap_fill_limit)
            query = Message("CHATHISTORY", ["AFTER", name, "timestamp=" + ref, str(limit)])
            fetched = history_only(await self.request(query, self.config.connect_timeout))
        except (TimeoutError, NotConnected, OSError):
            pass
        finally:
            self._release_hold(folded, fetched)

    def _release_hold(self, folded: str, fetched: list[Message]) -> None:
        hold = self._holds.pop(folded, None)
        if hold is not None:
            for msg, history in hold.release(fetched):
                self._emit_message(msg, history)

    def _deliver(self, msg: Message, history: bool, chain: list[Batch]) -> None:
        if _in_search_batch(msg, chain):
            return  # the answer to a search that gave up waiting: results, not news
        hold = self._holds.get(self._hold_key(msg, chain) or "") if self._holds else None
        if hold is None:
            self._emit_message(msg, history)
        elif msg.command == "BATCH":
            pass  # the replay is re-ordered with the gap fill, its frame would be wrong
        elif history:
            hold.history.append(msg)
        elif msg.command in _MESSAGE_COMMANDS:
            hold.live.append(msg)
        else:
            self._emit_message(msg, history)

    def _hold_key(self, msg: Message, chain: list[Batch]) -> str | None:
        for batch in chain:
            if batch.type in ("chathistory", "draft/chathistory") and batch.params:
                return self.casefold(batch.params[0])
        return self._state.channel_of(msg)

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
        # Clients never send a source; tags only when the server enabled them.
        msg = Message(msg.command, msg.params, None, self._allowed_tags(msg.tags))
        body = Message(msg.command, msg.params).to_str()
        if len(body.encode()) + 2 > LINE_LIMIT:
            raise ValueError(f"line longer than {LINE_LIMIT} bytes: {body[:40]!r}...")
        if len(format_tags(msg.tags).encode()) > CLIENT_TAG_LIMIT:
            raise ValueError(f"tags longer than {CLIENT_TAG_LIMIT} bytes")
        writer.write(msg.to_bytes())

    def _allowed_tags(self, tags: dict[str, str]) -> dict[str, str]:
        # A server that did not enable tags would read them as garbage: drop them.
        return {
            k: v
            for k, v in tags.items()
            if (k == "label" and "labeled-response" in self.caps)
            or (k != "label" and "message-tags" in self.caps)
        }

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

    @staticmethod
    def _channel_name(channel: str) -> str:
        return channel if is_channel(channel) else "#" + channel

    def _want(self, name: str, key: str | None) -> None:
        self._wanted[self.casefold(name)] = (name, key)

    async def join(self, channel: str, key: str | None = None) -> None:
        """JOIN (``room`` means ``#room``); the channel is rejoined after reconnects."""
        self._check_online()
        name = self._channel_name(channel)
        self._write(Message("JOIN", [name, key] if key else [name]))
        self._want(name, key)
        await self._drain()

    async def part(self, channel: str, reason: str = "") -> None:
        """PART; the channel is no longer rejoined after reconnects."""
        self._check_online()
        name = self._channel_name(channel)
        self._write(Message("PART", [name, reason] if reason else [name]))
        self._wanted.pop(self.casefold(name), None)
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
            token = f"req{next(self._ping_ids)}"
            self._requests.fenced = pending
            try:
                self._write(msg)
                self._pings.append((token, time.monotonic()))
                self._write(Message("PING", [token]))
                return await asyncio.wait_for(pending.future, timeout)
            finally:
                if self._requests.fenced is pending:
                    self._requests.fenced = None

    def _history_limit(self, limit: int) -> int:
        most = self._state.isupport.get("CHATHISTORY", "")
        if most.isdigit() and int(most) > 0:
            return max(1, min(limit, int(most)))
        return max(1, limit)

    async def history_before(
        self, target: str, msgid_or_time: str, limit: int = 100
    ) -> list[Message]:
        """Older messages (oldest first) for scrollback; [] when the server keeps none."""
        if "draft/chathistory" not in self.caps:
            return []
        ref = history_ref(msgid_or_time)
        query = Message("CHATHISTORY", ["BEFORE", target, ref, str(self._history_limit(limit))])
        return history_only(await self.request(query))

    async def history_latest(self, target: str, limit: int = 100) -> list[Message]:
        """The newest messages of ``target`` (oldest first); [] without chathistory."""
        if "draft/chathistory" not in self.caps:
            return []
        query = Message("CHATHISTORY", ["LATEST", target, "*", str(self._history_limit(limit))])
        return history_only(await self.request(query))

    async def history_around(
        self, target: str, msgid_or_time: str, limit: int = 50
    ) -> list[Message]:
        """Messages around one (oldest first; it is among them); [] without chathistory."""
        if "draft/chathistory" not in self.caps:
            return []
        ref = history_ref(msgid_or_time)
        query = Message("CHATHISTORY", ["AROUND", target, ref, str(self._history_limit(limit))])
        return history_only(await self.request(query))

    async def history_between(
        self, target: str, start: str, end: str | None, limit: int = 100
    ) -> list[Message]:
        """Messages after ``start`` and before ``end`` (None: up to now), oldest first,
        both exclusive; [] without chathistory."""
        if "draft/chathistory" not in self.caps:
            return []
        size = str(self._history_limit(limit))
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
        query = Message("CHATHISTORY", ["TARGETS", *refs, str(self._history_limit(limit))])
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
