"""The connection side of the client: owns the ``IRCClient``, does all network I/O.

The UI calls ``submit`` (never awaits the network); a sender task sends in order.
``run`` turns every client event into a Textual message, so widgets are only touched
on the UI side. Nothing here imports a widget.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from textual.message import Message

from chat_protocol import Message as IRCMessage
from chat_protocol import casefold
from chat_protocol.client import IRCClient
from chat_protocol.client_account import register_account
from chat_protocol.client_search import SearchQuery
from chat_protocol.client_types import ClientConfig, Event, NotConnected, Received
from chat_tui.config import Settings
from chat_tui.effects import Join, Part, Say, Send
from chat_tui.messages import (
    AccountRegistered,
    AroundLoaded,
    ClientEvent,
    HistoryLoaded,
    SendFailed,
    TargetsLoaded,
)

HISTORY_PAGE = 100
AROUND_LINES = 50  # lines shown around a message found by search
GAP_LINES = 500  # at most this many lines join them to the lines already loaded
TARGETS_DAYS = 30  # direct conversations with messages this recent come back on connect
TARGETS_LIMIT = 50
Post = Callable[[Message], object]


@dataclass(frozen=True, slots=True)
class Typing:
    """A +typing notification for ``target`` (active, paused or done)."""

    target: str
    state: str


Outgoing = Say | Send | Join | Part | Typing


class ChatSession:
    """One logical connection (it reconnects by itself) and its send queue."""

    def __init__(self, settings: Settings, client: IRCClient | None = None) -> None:
        self.settings = settings
        self.client = client or IRCClient(
            ClientConfig(
                servers=list(settings.servers),
                nick=settings.nick,
                password=settings.password,
                channels=list(settings.rooms),
                tls_ca=settings.tls_ca,
                tls_verify=settings.tls_verify,
                account=settings.account if settings.account_password else None,
                account_password=settings.account_password if settings.account else None,
                sasl_mechanism=settings.sasl_mechanism,
            )
        )
        self._outbox: asyncio.Queue[Outgoing] = asyncio.Queue()

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def has_history(self) -> bool:
        """Whether the server keeps history we can page through (CHATHISTORY)."""
        return "draft/chathistory" in self.client.caps

    @property
    def read_markers(self) -> bool:
        """Whether the server keeps the reader's read position (draft/read-marker)."""
        return "draft/read-marker" in self.client.caps

    @property
    def can_search(self) -> bool:
        """Whether the server searches its whole history (soju.im/search)."""
        return self.client.can_search

    @property
    def echoes(self) -> bool:
        """Whether the server echoes what we send (so a refusal can be matched)."""
        return "echo-message" in self.client.caps

    @property
    def lag(self) -> float | None:
        return self.client.lag

    def submit(self, item: Outgoing) -> None:
        """Queue something to send; returns at once (safe in a UI handler)."""
        self._outbox.put_nowait(item)

    async def run(self, post: Post) -> None:
        """Connect (and reconnect) until closed, posting every event to the UI."""
        runner = asyncio.create_task(self.client.run())
        sender = asyncio.create_task(self._send_loop(post))
        try:
            async for event in self.client.events():
                self._follow_nick(event)
                post(ClientEvent(event))
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            if not runner.done():
                await self.client.close("client stopped")
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner

    def _follow_nick(self, event: Event) -> None:
        """After our own /nick, a reconnect registers with the new nick, not the
        configured one (the client registers with ``config.nick``)."""
        if not isinstance(event, Received) or event.history:
            return
        msg = event.message
        client = self.client
        if msg.command == "NICK" and casefold(msg.param(0)) == casefold(client.nick):
            client.config.nick = client.nick

    async def close(self, reason: str) -> None:
        """QUIT with ``reason``; waits at most a few seconds for the server."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.client.close(reason), 5.0)

    async def _send_loop(self, post: Post) -> None:
        while True:
            item = await self._outbox.get()
            try:
                await self._send(item)
            except NotConnected:
                if isinstance(item, Say):
                    post(SendFailed(item.text, "offline — your text is back in the input"))
            except (ValueError, OSError) as exc:
                text = item.text if isinstance(item, Say) else ""
                post(SendFailed(text, f"could not send: {exc}"))

    async def _send(self, item: Outgoing) -> None:
        client = self.client
        match item:
            case Say(target, text, True):
                await client.action(target, text)
            case Say(target, text, False):
                await client.privmsg(target, text)
            case Send(line):
                await client.send(line)
            case Join(room, key):
                await client.join(room, key)
            case Part(room, reason):
                await client.part(room, reason)
            case Typing(target, state):
                await client.tagmsg(target, {"+typing": state})

    async def load_older(self, room: str, before: str | None, post: Post) -> None:
        """Fetch a page of history before ``before`` (a msgid; None: the latest page)."""
        try:
            if before is None:
                messages = await self.client.history_latest(room, HISTORY_PAGE)
            else:
                messages = await self.client.history_before(room, before, HISTORY_PAGE)
        except (NotConnected, TimeoutError, OSError) as exc:
            post(HistoryLoaded(room, [], failed=str(exc) or type(exc).__name__))
            return
        post(HistoryLoaded(room, messages))

    async def load_targets(self, post: Post) -> None:
        """Ask which conversations had messages in the last ``TARGETS_DAYS`` days."""
        since = datetime.now(UTC) - timedelta(days=TARGETS_DAYS)
        try:
            found = await self.client.history_targets(since, limit=TARGETS_LIMIT)
        except (NotConnected, TimeoutError, OSError):
            return  # nothing to reopen; the rooms themselves still work
        post(TargetsLoaded([name for name, _ in found]))

    async def register(self, password: str, email: str | None, post: Post) -> None:
        """REGISTER an account named like our nick; the answer (or why there was none)
        is posted. After a success every reconnect logs in to it."""
        try:
            reply = await register_account(self.client, password, email=email)
        except (NotConnected, TimeoutError, OSError, ValueError) as exc:
            post(AccountRegistered(None, str(exc) or type(exc).__name__))
            return
        post(AccountRegistered(reply))

    async def search(self, query: SearchQuery) -> list[IRCMessage]:
        """The server's matches for ``query``, oldest first (SearchFailed on a refusal)."""
        return await self.client.search(query)

    async def load_around(
        self, room: str, msgid: str, post: Post, *, fill: bool, until: str | None = None
    ) -> None:
        """Fetch the lines around ``msgid``; with ``fill``, also those from there up to the
        loaded line ``until`` (None: up to now), so no unseen hole is left between them."""
        gap: list[IRCMessage] = []
        try:
            window = await self.client.history_around(room, msgid, AROUND_LINES)
            ids = {m.tags.get("msgid") for m in window}
            newest = window[-1].tags.get("msgid") if window else None
            if fill and newest and (until is None or until not in ids):
                gap = await self.client.history_between(room, newest, until, GAP_LINES)
        except (NotConnected, TimeoutError, OSError) as exc:
            post(AroundLoaded(room, msgid, [], failed=str(exc) or type(exc).__name__))
            return
        post(AroundLoaded(room, msgid, window + gap, cut=len(gap) >= GAP_LINES))
