"""UTF-8-safe splitting of long text into lines that fit the 512-byte IRC limit."""

from __future__ import annotations

LINE_LIMIT = 512
# What a server adds in front of a relayed line when it knows nothing better: a
# source of nick (30) + user (10) + host (63) and the separators.
DEFAULT_SOURCE_BUDGET = 1 + 30 + 1 + 10 + 1 + 63


def text_budget(command: str, target: str, source: str | None = None) -> int:
    """Bytes left for the text of ``:source COMMAND target :text\\r\\n``."""
    src_len = len(source.encode()) + 1 if source else DEFAULT_SOURCE_BUDGET
    overhead = src_len + 1 + len(command) + 1 + len(target.encode()) + 2 + 2
    return max(1, LINE_LIMIT - overhead)


def cut_utf8(data: bytes, limit: int) -> int:
    """Largest cut point <= limit that does not split a UTF-8 sequence."""
    if len(data) <= limit:
        return len(data)
    cut = limit
    while cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


def split_utf8(text: str, max_bytes: int) -> list[str]:
    """Split ``text`` into chunks of at most ``max_bytes`` UTF-8 bytes.

    Prefers to break at the last space of a chunk (the space is dropped), falls back
    to a hard cut between characters. Newlines start a new chunk; empty lines are
    dropped. Joining the chunks with single spaces gives back the words of the text.
    """
    if max_bytes < 4:
        raise ValueError("max_bytes must leave room for one UTF-8 character")
    chunks: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        data = line.encode("utf-8")
        while data:
            if len(data) <= max_bytes:
                chunks.append(data.decode("utf-8"))
                break
            cut = cut_utf8(data, max_bytes)
            space = data.rfind(b" ", 0, cut + 1)
            head = data[:space].rstrip(b" ") if space > 0 else b""
            if head:
                chunks.append(head.decode("utf-8"))
                data = data[space + 1 :].lstrip(b" ")
            elif data[:1] == b" ":
                # Only spaces before the break: drop them rather than send a blank
                # line or cut the next word when it would fit on its own.
                data = data.lstrip(b" ")
            else:
                chunks.append(data[:cut].decode("utf-8"))
                data = data[cut:]
            if not data.strip(b" "):
                break
    return [c for c in chunks if c]


def split_message(command: str, target: str, text: str, source: str | None = None) -> list[str]:
    """Split ``text`` so that each ``COMMAND target :chunk`` fits with ``source``."""
    return split_utf8(text, text_budget(command, target, source))
