"""The channels a client rejoins after every reconnect, and the gap fill after each rejoin.

The rejoin list follows what the server says we are in: our JOIN adds a channel (so one
joined by a raw ``JOIN`` or by the server is rejoined too), our PART or KICK removes
it. After a reconnect each channel is joined again and, when the server keeps history,
``CHATHISTORY AFTER`` the last message seen there fills the gap; until the answer is in,
that channel's replay and live messages are held back (``ChannelHold``), so a reader
sees it in order with nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from chat_protocol.casemap import is_channel
from chat_protocol.client_history import ChannelHold, history_limit, history_only
from chat_protocol.client_state import Batch, SessionState, format_time, parse_time
from chat_protocol.client_types import ClientConfig, NotConnected
from chat_protocol.message import Message

Write = Callable[[Message], None]
Request = Callable[[Message, float], Awaitable[list[Message]]]
EmitMessage = Callable[[Message, bool], None]

_MESSAGE_COMMANDS = frozenset({"PRIVMSG", "NOTICE", "TAGMSG"})
_HISTORY_BATCHES = frozenset({"chathistory", "draft/chathistory"})


def channel_name(channel: str) -> str:
    """``room`` means ``#room``; a name with a channel prefix stays as it is."""
    return channel if is_channel(channel) else "#" + channel


class ChannelRejoin:
    """What to rejoin, and the holds of the gap fills under way; lives as long as the
    client, across connections."""

    def __init__(
        self,
        config: ClientConfig,
        state: SessionState,
        write: Write,
        request: Request,
        emit_message: EmitMessage,
    ) -> None:
        self._config = config
        self._state = state
        self._write = write
        self._request = request
        self._emit_message = emit_message
        self.holds: dict[str, ChannelHold] = {}  # folded channel -> messages kept back
        self._wanted: dict[str, tuple[str, str | None]] = {}  # folded -> (name, key)
        self._gap_from: dict[str, str] = {}  # folded -> time of the last message seen
        self._fills: set[asyncio.Task[None]] = set()
        for name in config.channels:
            self.want(channel_name(name), None)

    def want(self, name: str, key: str | None) -> None:
        self._wanted[self._state.casefold(name)] = (name, key)

    def forget(self, name: str) -> None:
        self._wanted.pop(self._state.casefold(name), None)

    def rejoin(self) -> None:
        """Registered: JOIN every channel on the list, noting where each gap starts."""
        self._gap_from = {}
        for folded, (name, key) in self._wanted.items():
            last = self._state.last_seen.get(folded)
            if last is not None and last.time is not None:
                self._gap_from[folded] = last.time
            self._write(Message("JOIN", [name, key] if key else [name]))

    def track(self, msg: Message) -> None:
        """Keep the list in step with a live (not replayed) JOIN, PART or KICK of ours."""
        if msg.command == "JOIN" and self._state.is_me(msg.nick):
            self._joined(msg)
        elif (msg.command == "PART" and self._state.is_me(msg.nick)) or (
            msg.command == "KICK" and self._state.is_me(msg.param(1))
        ):
            self.forget(msg.param(0))

    def route(self, msg: Message, history: bool, chain: list[Batch]) -> bool:
        """Keep ``msg`` back while its channel's gap is being filled; True when kept
        (or dropped: the frame of a replay that will be re-ordered)."""
        hold = self.holds.get(self._hold_key(msg, chain) or "") if self.holds else None
        if hold is None:
            return False
        if msg.command == "BATCH":
            return True  # the replay is re-ordered with the gap fill, its frame would be wrong
        if history:
            hold.history.append(msg)
            return True
        if msg.command in _MESSAGE_COMMANDS:
            hold.live.append(msg)
            return True
        return False

    def connection_lost(self) -> None:
        """No answer will come: stop the fills and let go of what they held."""
        for task in list(self._fills):
            task.cancel()
        for folded in list(self.holds):
            self._release(folded, [])

    def _joined(self, msg: Message) -> None:
        folded = self._state.casefold(msg.param(0))
        if folded not in self._wanted:
            self.want(msg.param(0), None)
        since = self._gap_from.pop(folded, None)
        if since is not None and "draft/chathistory" in self._state.caps:
            self.holds[folded] = ChannelHold()
            task = asyncio.create_task(self._fill_gap(folded, msg.param(0), since))
            self._fills.add(task)
            task.add_done_callback(self._fills.discard)

    async def _fill_gap(self, folded: str, name: str, since: str) -> None:
        """CHATHISTORY AFTER the last message we saw; one ms earlier, dedupe does the rest."""
        fetched: list[Message] = []
        try:
            start = parse_time(since)
            ref = format_time(start - timedelta(milliseconds=1)) if start else since
            limit = history_limit(self._state.isupport, self._config.gap_fill_limit)
            query = Message("CHATHISTORY", ["AFTER", name, "timestamp=" + ref, str(limit)])
            reply = await self._request(query, self._config.connect_timeout)
            fetched = history_only(reply)
        except (TimeoutError, NotConnected, OSError):
            pass
        finally:
            self._release(folded, fetched)

    def _release(self, folded: str, fetched: list[Message]) -> None:
        hold = self.holds.pop(folded, None)
        if hold is not None:
            for msg, history in hold.release(fetched):
                self._emit_message(msg, history)

    def _hold_key(self, msg: Message, chain: list[Batch]) -> str | None:
        for batch in chain:
            if batch.type in _HISTORY_BATCHES and batch.params:
                return self._state.casefold(batch.params[0])
        return self._state.channel_of(msg)
