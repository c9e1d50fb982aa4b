"""IRC messages with IRCv3 tags: parse from and format to wire lines.

A line is ``[@tags] [:source] COMMAND [params...] [:trailing]``. Tag values use the
IRCv3 escaping (``\\:`` for ``;``, ``\\s`` for space, ``\\\\``, ``\\r``, ``\\n``).
Parsing is lenient (it never raises on text a peer sends, beyond an empty line);
formatting is strict so that we never put a broken line on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_ESCAPE_VALUE = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"})
_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


class MessageError(ValueError):
    """Raised for a line that cannot be a message at all (empty, no command)."""


def escape_tag_value(value: str) -> str:
    """Escape a tag value for the wire."""
    return value.translate(_ESCAPE_VALUE)


def unescape_tag_value(raw: str) -> str:
    """Undo IRCv3 tag-value escaping; a lone trailing backslash is dropped."""
    if "\\" not in raw:
        return raw
    out: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        ch = raw[i]
        if ch == "\\":
            i += 1
            if i < n:
                nxt = raw[i]
                out.append(_UNESCAPES.get(nxt, nxt))
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def parse_tags(raw: str) -> dict[str, str]:
    """Parse the tag section (without the leading ``@``) into a dict."""
    tags: dict[str, str] = {}
    for item in raw.split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        tags[key] = unescape_tag_value(value) if sep else ""
    return tags


def last_param(param: str) -> str:
    """The last parameter as written on the wire: with a ``:`` only where it needs one
    (empty, a space in it, or a leading ``:``). The caller has ruled out CR, LF, NUL."""
    if not param or " " in param or param[0] == ":":
        return ":" + param
    return param


def format_tags(tags: dict[str, str]) -> str:
    """Format tags as ``key=value;key2`` (no leading ``@``)."""
    parts = []
    for key, value in tags.items():
        if value:
            parts.append(f"{key}={escape_tag_value(value)}")
        else:
            parts.append(key)
    return ";".join(parts)


@dataclass(slots=True)
class Message:
    """One IRC message. ``command`` is upper-cased; numerics stay as 3-digit strings."""

    command: str
    params: list[str] = field(default_factory=list)
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, line: str | bytes) -> Message:
        """Parse one line (with or without CRLF). Raises MessageError when empty."""
        if isinstance(line, (bytes, bytearray)):
            line = bytes(line).decode("utf-8", "replace")
        line = line.rstrip("\r\n")
        tags: dict[str, str] = {}
        source: str | None = None
        pos = 0
        n = len(line)
        while pos < n and line[pos] == " ":
            pos += 1
        if pos < n and line[pos] == "@":
            end = line.find(" ", pos)
            if end < 0:
                raise MessageError("message has tags but no command")
            tags = parse_tags(line[pos + 1 : end])
            pos = end
            while pos < n and line[pos] == " ":
                pos += 1
        if pos < n and line[pos] == ":":
            end = line.find(" ", pos)
            if end < 0:
                raise MessageError("message has a source but no command")
            source = line[pos + 1 : end]
            pos = end
            while pos < n and line[pos] == " ":
                pos += 1
        rest = line[pos:]
        if not rest:
            raise MessageError("empty message")
        trailing: str | None = None
        idx = rest.find(" :")
        if idx >= 0:
            trailing = rest[idx + 2 :]
            rest = rest[:idx]
        elif rest.startswith(":"):
            raise MessageError("message has no command")
        # Only SPACE separates parameters; str.split() would also cut at tabs and NBSP.
        words = [w for w in rest.split(" ") if w]
        if not words:
            raise MessageError("message has no command")
        params = words[1:]
        if trailing is not None:
            params.append(trailing)
        return cls(words[0].upper(), params, source, tags)

    def to_str(self) -> str:
        """Format without the CRLF. Raises ValueError on params that cannot be sent."""
        parts: list[str] = []
        if self.tags:
            parts.append("@" + format_tags(self.tags))
        if self.source:
            parts.append(":" + self.source)
        parts.append(self.command)
        params = self.params
        if params:
            for p in params[:-1]:
                if not p or " " in p or p[0] == ":" or "\r" in p or "\n" in p or "\0" in p:
                    raise ValueError(f"middle parameter cannot be sent: {p!r}")
                parts.append(p)
            last = params[-1]
            if "\r" in last or "\n" in last or "\0" in last:
                raise ValueError("parameter contains CR, LF or NUL")
            parts.append(last_param(last))
        return " ".join(parts)

    def to_bytes(self) -> bytes:
        """Format as a wire line, CRLF included."""
        return (self.to_str() + "\r\n").encode("utf-8")

    def __str__(self) -> str:
        return self.to_str()

    @property
    def nick(self) -> str | None:
        """The nick part of the source (``nick!user@host``), if any."""
        if self.source is None:
            return None
        return self.source.split("!", 1)[0]

    def param(self, index: int, default: str = "") -> str:
        """The parameter at ``index``, or ``default`` when absent."""
        return self.params[index] if index < len(self.params) else default


def split_source(source: str) -> tuple[str, str, str]:
    """Split ``nick!user@host`` into its three parts (missing parts are empty)."""
    nick, _, rest = source.partition("!")
    user, _, host = rest.partition("@")
    if not rest and "@" in nick:
        nick, _, host = nick.partition("@")
    return nick, user, host
