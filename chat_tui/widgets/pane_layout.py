"""Where each item of the message pane starts: chat lines with the day rules, the read
marker and the banner placed between them, laid out once per width.

The pane scrolls by rows; this answers "which item is on row N" with a bisect over the
items' first rows, so a room of tens of thousands of lines costs no more per drawn row
than a short one.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import tzinfo

from chat_tui.model import ChatLine
from chat_tui.widgets.pane_rows import READ_MARK_SEQ, Banner, DayMark, Item, ReadMark


class PaneLayout:
    """The items of the shown room in order, each with its first row."""

    def __init__(self, height: Callable[[Item], int], tz: tzinfo | None) -> None:
        self._height = height  # rows an item takes at the current width
        self.tz = tz
        self.items: list[Item] = []
        self.starts: list[int] = []  # first row of each item
        self.index: dict[int, int] = {}  # seq -> item index
        self.rows = 0
        self.laid = 0  # how many of the shown lines are laid out
        self._last_day: str | None = None

    def restart(self, banner: str) -> None:
        """Start over (another room, another width): only the banner, if any."""
        self.items, self.starts, self.index = [], [], {}
        self.rows = 0
        self.laid = 0
        self._last_day = None
        if banner:
            self._add(Banner(banner))

    def push(self, line: ChatLine, marker_seq: int | None) -> None:
        """Add ``line`` at the end, after a day rule when its day is new and after the
        read marker when it is the first unseen line."""
        day = line.time.astimezone(self.tz).strftime("%A, %d %B %Y")
        if day != self._last_day:
            self._last_day = day
            self._add(DayMark(day, -2 - line.seq))
        if line.seq == marker_seq:
            self._add(ReadMark(READ_MARK_SEQ - line.seq))
        self._add(line)
        self.laid += 1

    def _add(self, item: Item) -> None:
        self.index[item.seq] = len(self.items)
        self.items.append(item)
        self.starts.append(self.rows)
        self.rows += self._height(item)

    def place(self, seq: int) -> tuple[int, int] | None:
        """(first row, rows) of the item ``seq``; None when it is not laid out."""
        index = self.index.get(seq)
        if index is None:
            return None
        end = self.starts[index + 1] if index + 1 < len(self.starts) else self.rows
        return self.starts[index], end - self.starts[index]

    def item_at(self, row: int) -> int:
        """The index of the item that row ``row`` belongs to (0 above the first)."""
        return max(bisect.bisect_right(self.starts, row) - 1, 0)

    def line_at_or_below(self, row: int) -> int | None:
        """The index of the first chat line starting at or after the item on ``row``."""
        index = self.item_at(row)
        while index < len(self.items) and not isinstance(self.items[index], ChatLine):
            index += 1
        return index if index < len(self.items) else None

    def line_at_or_above(self, row: int) -> ChatLine | None:
        """The last chat line starting at or above ``row``."""
        index = self.item_at(row)
        while index > 0 and not isinstance(self.items[index], ChatLine):
            index -= 1
        item = self.items[index] if self.items else None
        return item if isinstance(item, ChatLine) else None
