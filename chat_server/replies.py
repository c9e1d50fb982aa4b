"""How the server speaks to one client: numerics, raw lines, labeled responses.

``Replies`` is owned by the ``Server`` as ``server.out``. Every write keeps the order
of what a client receives: room messages produced earlier (still in an open room
batch, see fanout.py) go out first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chat_protocol.message import Message, format_tags

if TYPE_CHECKING:
    from chat_server.delivery import Delivery
    from chat_server.model import User
    from chat_server.server import Server


class Replies:
    """The one-recipient half of sending."""

    def __init__(self, server: Server, delivery: Delivery) -> None:
        self.server = server
        self.name = server.name
        self.delivery = delivery
        self.blocks: dict[str, str] = {}  # see replies_block

    def send_raw(self, user: User, line: str) -> None:
        """Send one formatted line (no CRLF) to ``user``."""
        self.send_block(user, line + "\r\n")

    def reply(self, user: User, numeric: str, *params: str) -> None:
        """A numeric from the server to ``user`` (their nick, or ``*`` before NICK)."""
        self.send_raw(user, format_reply(self.name, numeric, user.nick, params))

    def send_block(self, user: User, text: str) -> None:
        """Send several lines (each ending in CRLF) in one write.

        A labeled response must see them as separate lines, so a capturing
        connection gets them one by one.
        """
        self.delivery.write_pending()  # keep order: room messages produced earlier go first
        conn = user.conn
        if conn is None:
            return
        if conn.capture is not None:
            conn.capture.extend(line.encode() + b"\n" for line in text.split("\n")[:-1])
            return
        conn.write(text.encode(), self.delivery.dirty, self.delivery.soft)

    def replies_block(self, nick: str, key: str, replies: ReplySource) -> str:
        """A block of numerics that differ between clients only by nick, for ``nick``.

        The block is formatted once per server (with a placeholder nick) and reused:
        the welcome burst is most of what a registration costs.
        """
        block = self.blocks.get(key)
        if block is None:
            block = self.blocks[key] = "".join(
                format_reply(self.name, numeric, NICK_SLOT, params) + "\r\n"
                for numeric, params in replies(self.server)
            )
        return block.replace(NICK_SLOT, nick)

    def send_replies(self, user: User, key: str, replies: ReplySource) -> None:
        """Send a block of :meth:`replies_block`."""
        self.send_block(user, self.replies_block(user.nick, key, replies))

    def fail(self, user: User, command: str, code: str, *context: str) -> None:
        """An IRCv3 standard reply ``FAIL <command> <code> [context] :<text>``."""
        self.send_raw(user, Message("FAIL", [command, code, *context], self.name).to_str())

    def start_batch(self, user: User, kind: str, *params: str) -> str | None:
        """Open a batch when the client understands them; returns its reference."""
        if "batch" not in user.caps:
            return None
        ref = self.delivery.next_msgid().replace("-", "")
        self.send_raw(user, Message("BATCH", [f"+{ref}", kind, *params], self.name).to_str())
        return ref

    def end_batch(self, user: User, ref: str | None) -> None:
        if ref is not None:
            self.send_raw(user, Message("BATCH", [f"-{ref}"], self.name).to_str())

    def send_labeled(self, user: User, label: str, lines: list[bytes]) -> None:
        """Send a command's response carrying the client's label (labeled-response)."""
        conn = user.conn
        if conn is None:
            return
        tag = f"label={format_tags({'label': label}).split('=', 1)[1]}"
        if not lines:
            out = [f"@{tag} :{self.name} ACK\r\n".encode()]
        elif len(lines) == 1:
            out = [_add_tag(lines[0], tag)]
        elif _is_one_batch(lines):
            out = [_add_tag(lines[0], tag), *lines[1:]]
        else:
            ref = self.delivery.next_msgid().replace("-", "")
            out = [
                f"@{tag} :{self.name} BATCH +{ref} labeled-response\r\n".encode(),
                *(_add_tag(line, f"batch={ref}") for line in lines),
                f":{self.name} BATCH -{ref}\r\n".encode(),
            ]
        if len(out) == 1:
            self.delivery.write_pending()
            conn.write(out[0], self.delivery.dirty, self.delivery.soft)
        else:
            self.server.send_paced(conn, out)


NICK_SLOT = "\0"  # never in a nick (nor in any line we send)
ReplySource = Callable[["Server"], list[tuple[str, tuple[str, ...]]]]


def format_reply(source: str, numeric: str, nick: str, params: tuple[str, ...]) -> str:
    """``:source NUMERIC nick params… :last``, with client-supplied params made safe."""
    parts = [":" + source, numeric, nick]
    if params:
        parts.extend(_safe_middle(p) for p in params[:-1])
        last = params[-1]
        if "\r" in last or "\n" in last or "\0" in last:
            last = last.replace("\r", "").replace("\n", " ").replace("\0", "")
        parts.append(":" + last)
    return " ".join(parts)


def _safe_middle(param: str) -> str:
    """Echoed client input may not fit a middle parameter; make it fit, visibly."""
    if not param:
        return "*"
    if " " in param or param[0] == ":" or "\r" in param or "\n" in param or "\0" in param:
        cleaned = param.replace(" ", "_").replace("\r", "").replace("\n", "").replace("\0", "")
        return cleaned.lstrip(":") or "*"
    return param


def _add_tag(line: bytes, tag: str) -> bytes:
    if line.startswith(b"@"):
        return b"@" + tag.encode() + b";" + line[1:]
    return b"@" + tag.encode() + b" " + line


def _is_one_batch(lines: list[bytes]) -> bool:
    """True when the response is exactly one batch (its own start and end)."""
    first = Message.parse(lines[0])
    last = Message.parse(lines[-1])
    return (
        first.command == "BATCH"
        and last.command == "BATCH"
        and first.param(0).startswith("+")
        and last.param(0) == "-" + first.param(0)[1:]
    )
