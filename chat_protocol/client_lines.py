"""The server's byte stream as parsed messages: split at newlines, bounded, never fatal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from chat_protocol.message import Message, MessageError

MAX_BUFFERED = 64 * 1024  # an unterminated line longer than this is a broken peer


async def read_messages(reader: asyncio.StreamReader) -> AsyncGenerator[Message, None]:
    """Every line from ``reader`` as a Message until EOF; a line that does not parse is
    skipped (garbage from the peer is never fatal), an endless one is a ConnectionError."""
    buf = bytearray()
    while True:
        data = await reader.read(65536)
        if not data:
            return
        buf += data
        if b"\n" not in data:
            if len(buf) > MAX_BUFFERED:
                raise ConnectionError("server sent an overlong line")
            continue
        *complete, rest = bytes(buf).split(b"\n")
        buf = bytearray(rest)
        for raw in complete:
            if not raw.strip():
                continue
            try:
                yield Message.parse(raw)
            except MessageError:
                continue
