"""Turn a stream of text deltas into IRC-sized lines as soon as each line is complete.

An answer streams in as small pieces; a line is sent when it is known to be whole: at
a line break from the model, or when the text outgrows the byte budget (then it is cut
at the last space, never inside a UTF-8 sequence). Cutting is byte-exact because the
512-byte limit is in bytes, and the budget comes from ``chat_protocol.split``.
"""

from __future__ import annotations

from bot.sanitize import clean_text
from chat_protocol.split import split_utf8

CUT_NOTE = " … (cut)"
_LONGEST_COLOUR = len("\x04RRGGBB,RRGGBB")


def _utf8_cut(data: bytes, limit: int) -> int:
    """The largest cut point <= limit that does not split a UTF-8 sequence."""
    if len(data) <= limit:
        return len(data)
    cut = limit
    while cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


class LineAssembler:
    """Feed text deltas, get back whole lines of at most ``budget`` UTF-8 bytes."""

    def __init__(self, budget: int) -> None:
        if budget < 8:
            raise ValueError("line budget too small")
        self.budget = budget
        self._buf = ""
        self._raw_tail = ""  # a colour code that may go on in the next delta

    def feed(self, delta: str) -> list[str]:
        """Add a piece of the answer; return the lines it completed (maybe none)."""
        raw = self._raw_tail + delta
        start = max(raw.rfind("\x03"), raw.rfind("\x04"))
        if start >= 0 and len(raw) - start <= _LONGEST_COLOUR:
            raw, self._raw_tail = raw[:start], raw[start:]
        else:
            self._raw_tail = ""
        self._buf += clean_text(raw)
        lines: list[str] = []
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            lines.extend(self._whole(line))
        lines.extend(self._overflow())
        return lines

    def flush(self) -> list[str]:
        """The end of the answer: whatever is left, as lines."""
        rest = self._buf + clean_text(self._raw_tail)
        self._buf = self._raw_tail = ""
        return self._whole(rest)

    def _whole(self, line: str) -> list[str]:
        line = line.strip()
        return split_utf8(line, self.budget) if line else []

    def _overflow(self) -> list[str]:
        """Cut full-width lines off the front of the unfinished line."""
        out: list[str] = []
        data = self._buf.lstrip(" ").encode("utf-8")
        while len(data) > self.budget:
            cut = _utf8_cut(data, self.budget)
            space = data.rfind(b" ", 0, cut + 1)
            if space > 0:
                head, data = data[:space], data[space + 1 :]
            else:
                head, data = data[:cut], data[cut:]
            head_text = head.decode("utf-8").strip()
            if head_text:
                out.append(head_text)
            data = data.lstrip(b" ")
        if out:
            self._buf = data.decode("utf-8")
        return out


def with_cut_note(line: str, budget: int, note: str = CUT_NOTE) -> str:
    """``line`` shortened at a word (if needed) so that ``line + note`` fits ``budget``."""
    room = budget - len(note.encode("utf-8"))
    if room < 4:
        return note.strip()
    data = line.encode("utf-8")
    if len(data) > room:
        cut = _utf8_cut(data, room)
        space = data.rfind(b" ", 0, cut + 1)
        data = data[: space if space > room // 2 else cut]
    return data.decode("utf-8").rstrip() + note


class LineCap:
    """Let through at most ``max_lines`` lines; the last one carries the cut note if more came.

    The line that would be the last is held back until we know whether anything
    follows it, so the note lands on a line we actually send.
    """

    def __init__(self, max_lines: int, budget: int) -> None:
        self.max_lines = max_lines
        self.budget = budget
        self.sent = 0
        self.cut = False
        self._held: str | None = None

    def push(self, line: str) -> list[str]:
        """Offer one line; return what may be sent now."""
        if self.cut:
            return []
        if self.sent < self.max_lines - 1:
            self.sent += 1
            return [line]
        if self._held is None:
            self._held = line
            return []
        self.cut = True
        self.sent += 1
        held, self._held = self._held, None
        return [with_cut_note(held, self.budget)]

    def finish(self) -> list[str]:
        """The answer ended: release the held line as it is."""
        if self._held is None:
            return []
        held, self._held = self._held, None
        self.sent += 1
        return [held]
