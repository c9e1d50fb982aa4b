"""What the bot reads back from the server's history (``draft/chathistory``): its
private chats after a restart, a private chat whose memory was dropped, and a room's
recent lines for 'summary'.

A 'forget' said in a private chat still holds when the chat is read back: only what
came after it is reloaded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta

from bot.commands import find_command
from bot.context import Line, Memories, RoomMemory, line_from
from bot.link import ChatLink, is_me
from bot.triggers import Request
from chat_protocol import Message
from chat_protocol.casemap import is_channel
from chat_protocol.client_state import format_time
from chat_protocol.client_types import NotConnected

log = logging.getLogger(__name__)

RELOAD_CONVERSATIONS = 50  # direct chats reloaded from history at start (most recent)
RELOAD_DAYS = 30
HISTORY_TIMEOUT = 10.0
SUMMARY_FETCH = 300  # room lines read for 'summary'


class ServerHistory:
    """Reads the server's history into the bot's memory; ``own_lines`` (msgid -> text
    of the bot's own lines, for replies to them) learns the bot's lines read back."""

    def __init__(
        self, link: ChatLink, memories: Memories, own_lines: MutableMapping[str, str]
    ) -> None:
        self.link = link
        self.memories = memories
        self._own_lines = own_lines

    async def reload_direct_chats(self) -> tuple[int, int]:
        """CHATHISTORY TARGETS, then LATEST for each private chat the server lets us read
        and we do not hold in memory; returns (chats, lines) reloaded.

        What comes back is the server's to decide. Where private history belongs to the
        nick, a restarted bot gets its chats back. Where only the connection that held
        the nick when a message was sent (or the account) may read it, a restarted bot
        gets none until it logs in to an account, and a chat whose memory was dropped
        (least recently used) comes back only within the same connection.
        """
        if "draft/chathistory" not in self.link.caps:
            log.info("the server keeps no history: private chats start fresh")
            return 0, 0
        now = _now()
        query = Message(
            "CHATHISTORY",
            [
                "TARGETS",
                "timestamp=" + format_time(now + timedelta(seconds=1)),
                "timestamp=" + format_time(now - timedelta(days=RELOAD_DAYS)),
                str(RELOAD_CONVERSATIONS),
            ],
        )
        try:
            answer = await self.link.request(query, timeout=HISTORY_TIMEOUT)
        except (TimeoutError, NotConnected, OSError) as exc:
            log.warning("private chats not reloaded: %s", exc)
            return 0, 0
        peers = [
            m.params[1]
            for m in answer
            if m.command == "CHATHISTORY" and m.param(0) == "TARGETS" and len(m.params) >= 2
            if not is_channel(m.params[1]) and not is_me(self.link, m.params[1])
        ]
        chats = lines = 0
        for peer in peers:
            memory = self.memories.get(peer)
            if not memory.reloaded:
                added = await self.reload_direct_chat(peer, memory)
                chats += added > 0
                lines += added
        return chats, lines

    async def reload_direct_chat(self, peer: str, memory: RoomMemory) -> int:
        """Fill ``memory`` with the latest of the private chat with ``peer``; lines added."""
        memory.reloaded = True
        try:
            fetched = await asyncio.wait_for(
                self.link.history_latest(peer, max(1, memory.size)), HISTORY_TIMEOUT
            )
        except (TimeoutError, NotConnected, OSError) as exc:
            log.warning("private chat with %s not reloaded: %s", peer, exc)
            return 0
        lines = [ln for ln in map(line_from, fetched) if ln is not None]
        # A 'forget' in the history still holds: only what came after it is reloaded.
        for i in range(len(lines) - 1, -1, -1):
            ln = lines[i]
            if not is_me(self.link, ln.nick) and is_forget(ln.text):
                lines = lines[i + 1 :]
                break
        added = sum(memory.add(ln, live=False) for ln in lines)
        for ln in lines:
            if ln.msgid and is_me(self.link, ln.nick):
                self._own_lines[ln.msgid] = ln.text
        return added

    async def room_lines(self, request: Request) -> list[Line]:
        """The room's recent lines from history (memory if the server keeps none),
        oldest first, up to the question itself."""
        lines: list[Line] = []
        try:
            fetched = await asyncio.wait_for(
                self.link.history_latest(request.target, SUMMARY_FETCH), HISTORY_TIMEOUT
            )
            lines = [ln for ln in map(line_from, fetched) if ln is not None]
        except (TimeoutError, NotConnected, OSError) as exc:
            log.warning("history of %s not read: %s", request.target, exc)
        if not lines:
            lines = list(self.memories.get(request.target).lines)
        for i, ln in enumerate(lines):
            if request.msgid is not None and ln.msgid == request.msgid:
                return lines[:i]
        return lines


def is_forget(text: str) -> bool:
    """Whether ``text`` is the 'forget' command."""
    command = find_command(text)
    return command is not None and command.name == "forget"


def _now() -> datetime:
    return datetime.now(UTC)
