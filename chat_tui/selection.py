"""Copy mode's selection: a run of lines in the shown room, and the text it copies.

The pane draws three columns (time, nick, text); a terminal's own selection takes all
three, and Textual's mouse selection cannot see into lines drawn with ``render_line``.
Copy mode selects whole lines by keyboard and copies the text column only. No Textual
here.
"""

from __future__ import annotations

from dataclasses import dataclass

from chat_tui.formatting import strip_formatting
from chat_tui.model import ChatLine, LineKind


@dataclass(frozen=True, slots=True)
class LineSelection:
    """Lines ``anchor`` to ``cursor`` (indexes into the room's lines, either order);
    the cursor is the end that moves."""

    anchor: int
    cursor: int

    @property
    def first(self) -> int:
        return min(self.anchor, self.cursor)

    @property
    def last(self) -> int:
        return max(self.anchor, self.cursor)

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and self.first <= index <= self.last

    def moved(self, delta: int, count: int, extend: bool = False) -> LineSelection:
        """The cursor ``delta`` lines on, kept inside ``count`` lines; without ``extend``
        the selection shrinks to the cursor's line."""
        cursor = max(0, min(count - 1, self.cursor + delta))
        return LineSelection(self.anchor if extend else cursor, cursor)


def line_text(line: ChatLine) -> str:
    """What the text column shows of ``line``, without IRC formatting (an action
    starts with its nick, as drawn)."""
    text = strip_formatting(line.text)
    return f"{line.nick} {text}" if line.kind == LineKind.ACTION else text


def copied_text(lines: list[ChatLine]) -> str:
    """The text of ``lines``, one per line: no time, no nick column."""
    return "\n".join(line_text(line) for line in lines)


class CopySelection:
    """Copy mode's selection over the shown lines: by index, and by the seqs of its
    lines (to draw them, and to find them again when lines arrive above)."""

    def __init__(self) -> None:
        self.span: LineSelection | None = None
        self.seqs: set[int] = set()
        self._ends = (0, 0)  # seqs of the anchor's and the cursor's lines

    def lines(self, shown: list[ChatLine]) -> list[ChatLine]:
        """The selected lines of ``shown``, oldest first."""
        if self.span is None:
            return []
        return shown[self.span.first : self.span.last + 1]

    def select(self, span: LineSelection | None, shown: list[ChatLine]) -> set[int]:
        """Select ``span`` of ``shown`` (None: nothing); returns the seqs of the lines
        that went in or out, which need drawing again."""
        old = self.seqs
        self.span = span
        self.seqs = {line.seq for line in self.lines(shown)}
        if span is not None:
            self._ends = (shown[span.anchor].seq, shown[span.cursor].seq)
        return old ^ self.seqs

    def found_again(self, shown: list[ChatLine]) -> LineSelection | None:
        """The same two ends at their indexes in ``shown`` now; None when one is gone."""
        where = {line.seq: i for i, line in enumerate(shown)}
        anchor, cursor = self._ends
        if anchor in where and cursor in where:
            return LineSelection(where[anchor], where[cursor])
        return None
