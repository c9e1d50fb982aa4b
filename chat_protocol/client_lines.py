"""Lines on the wire: the server's byte stream as parsed messages (split at newlines,
bounded, never fatal), and ours checked against the IRC limits before they go out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from chat_protocol.message import Message, MessageError, format_tags
from chat_protocol.split import LINE_LIMIT

MAX_BUFFERED = 64 * 1024  # an unterminated line longer than this is a broken peer
CLIENT_TAG_LIMIT = 4094


def outgoing_line(msg: Message, caps: set[str]) -> bytes:
    """``msg`` as the bytes to send: no source, only the tags the server enabled (it
    would read others as garbage). ValueError over 512 bytes (tags excluded), over the
    client tag limit, or with unsendable params (CR/LF/NUL)."""
    tags = {
        k: v
        for k, v in msg.tags.items()
        if (k == "label" and "labeled-response" in caps)
        or (k != "label" and "message-tags" in caps)
    }
    body = Message(msg.command, msg.params).to_str()
    if len(body.encode()) + 2 > LINE_LIMIT:
        raise ValueError(f"line longer than {LINE_LIMIT} bytes: {body[:40]!r}...")
    if len(format_tags(tags).encode()) > CLIENT_TAG_LIMIT:
        raise ValueError(f"tags longer than {CLIENT_TAG_LIMIT} bytes")
    return Message(msg.command, msg.params, None, tags).to_bytes()


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
