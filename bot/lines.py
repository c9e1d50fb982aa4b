"""Turn a stream of text deltas into IRC-sized lines as soon as each line is complete.

An answer streams in as small pieces; a line is sent when it is known to be whole: at
a line break from the model, or when the text outgrows the byte budget (then it is cut
at a space, never inside a UTF-8 sequence). Each line is rendered from markdown to IRC
formatting (``bot.markdown``) before it is cut. Cutting is byte-exact because the
512-byte limit is in bytes, and the budget comes from ``chat_protocol.split``.
"""

from __future__ import annotations

from bot.markdown import MarkdownRenderer, cut_utf8, split_formatted
from bot.sanitize import clean_text

CUT_NOTE = " … (cut; say 'more')"
_LONGEST_COLOUR = len("\x04RRGGBB,RRGGBB")
# Bytes kept free when a paragraph is cut while streaming: rendering may add a style
# code or two, and a bullet is longer than its dash.
_RENDER_SLACK = 8
MAX_KEPT_LINES = 200  # lines of a cut answer kept for 'more'


class LineAssembler:
    """Feed text deltas, get back whole lines of at most ``budget`` UTF-8 bytes.

    ``prefix`` (``"alice: "``) starts the first line that shows anything, so a fence or
    a blank line at the start of the answer does not take it.
    """

    def __init__(self, budget: int, prefix: str = "") -> None:
        if budget < 8 or len(prefix.encode("utf-8")) > budget // 2:
            raise ValueError("line budget too small")
        self.budget = budget
        self._prefix = prefix
        self._markdown = MarkdownRenderer()
        self._buf = ""
        self._continued = False  # the buffer goes on a line already (partly) sent
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
            lines.extend(self._render(line))
            self._continued = False
        lines.extend(self._overflow())
        return lines

    def flush(self) -> list[str]:
        """The end of the answer: whatever is left, as lines."""
        rest = self._buf + clean_text(self._raw_tail)
        self._buf = self._raw_tail = ""
        lines: list[str] = []
        for line in rest.split("\n"):
            lines.extend(self._render(line))
            self._continued = False
        return lines

    def _render(self, line: str) -> list[str]:
        shown = self._markdown.line(line, continued=self._continued)
        if shown is None:
            return []
        if self._prefix:
            shown, self._prefix = self._prefix + shown, ""
        return split_formatted(shown, self.budget)

    def _overflow(self) -> list[str]:
        """Cut full-width lines off the front of the unfinished line."""
        out: list[str] = []
        slack = min(_RENDER_SLACK, self.budget // 4)
        while True:
            room = self.budget - slack - len(self._prefix.encode("utf-8"))
            data = self._buf.encode("utf-8")
            if len(data) <= room:
                return out
            cut = cut_utf8(data, room) or len(self._buf[0].encode("utf-8"))
            space = data.rfind(b" ", 0, cut + 1)
            if space > room // 2:
                head, tail = data[:space], data[space + 1 :]
            else:
                head, tail = data[:cut], data[cut:]
            out.extend(self._render(head.decode("utf-8")))
            self._continued = True
            rest = tail.decode("utf-8")
            self._buf = rest if self._markdown.in_code else rest.lstrip(" ")


def with_cut_note(line: str, budget: int, note: str = CUT_NOTE) -> str:
    """``line`` shortened at a word (if needed) so that ``line + note`` fits ``budget``."""
    room = budget - len(note.encode("utf-8"))
    if room < 4:
        return note.strip()
    data = line.encode("utf-8")
    if len(data) > room:
        cut = cut_utf8(data, room)
        space = data.rfind(b" ", 0, cut + 1)
        data = data[: space if space > room // 2 else cut]
    return data.decode("utf-8").rstrip() + note


class LineCap:
    """Let through at most ``max_lines`` lines; the last one carries the cut note if more came.

    The line that would be the last is held back until we know whether anything
    follows it, so the note lands on a line we actually send. Lines past the cap are
    kept in ``rest`` (up to MAX_KEPT_LINES) for 'more'.
    """

    def __init__(self, max_lines: int, budget: int) -> None:
        self.max_lines = max_lines
        self.budget = budget
        self.sent = 0
        self.cut = False
        self.rest: list[str] = []
        self._held: str | None = None

    def push(self, line: str) -> list[str]:
        """Offer one line; return what may be sent now."""
        if self.cut:
            if len(self.rest) < MAX_KEPT_LINES:
                self.rest.append(line)
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
        self.rest.append(line)
        return [with_cut_note(held, self.budget)]

    def finish(self) -> list[str]:
        """The answer ended: release the held line as it is."""
        if self._held is None:
            return []
        held, self._held = self._held, None
        self.sent += 1
        return [held]


def page(lines: list[str], max_lines: int, budget: int) -> tuple[list[str], list[str]]:
    """The next ``max_lines`` of ``lines`` (the last with the cut note if more remain),
    and what remains after them."""
    shown, rest = lines[:max_lines], lines[max_lines:]
    if rest and shown:
        shown[-1] = with_cut_note(shown[-1], budget)
    return shown, rest
