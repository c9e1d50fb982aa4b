"""The message pane: a Line API ``ScrollView`` that draws only the rows on screen.

Lines are laid out once per width (most fit on one row and need no wrapping), and
rendered rows are kept in an LRU cache, so a room with tens of thousands of lines
scrolls as fast as a short one. Inserting older lines above keeps the row the reader
is looking at in place; new lines scroll the pane only when the reader is at the bottom.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, tzinfo

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from chat_tui.formatting import fit_nick, irc_to_text, nick_color, strip_formatting
from chat_tui.keymap import copy_mode_bindings
from chat_tui.model import ChatLine, LineKind
from chat_tui.selection import LineSelection

NICK_WIDTH = 12
MIN_NICK_WIDTH = 6
MIN_TEXT_WIDTH = 24  # a narrow pane shrinks the nick column to keep this much for text
BANNER_SEQ = -1
# Moments whose formatted width is the widest a format gives (long month and day names,
# two-digit everything), to size the time column for any ``timestamp_format``.
WIDEST_MOMENTS = [datetime(2024, 9, 25, 23, 59, 59), datetime(2024, 12, 28, 12, 30, 30)]


def time_width(timestamp_format: str) -> int:
    """Cells the time column needs for ``timestamp_format`` (``%H:%M`` → 5)."""
    return max(cell_len(moment.strftime(timestamp_format)) for moment in WIDEST_MOMENTS)


@dataclass(slots=True, frozen=True)
class DayMark:
    """A separator row between lines of different (local) days."""

    label: str
    seq: int


@dataclass(slots=True, frozen=True)
class Banner:
    """The top row: loading indicator or "beginning of history"."""

    text: str
    seq: int = -1  # BANNER_SEQ


@dataclass(slots=True, frozen=True)
class ReadMark:
    """The "new since you last looked" rule, above the first line the reader has not seen."""

    seq: int


READ_MARK_SEQ = -(10**12)  # ReadMark seqs: READ_MARK_SEQ - line.seq, apart from DayMarks'
Item = ChatLine | DayMark | Banner | ReadMark


class MessagePane(ScrollView, can_focus=False):
    """Scrollback of the current room.

    It takes the focus only in copy mode (``start_selecting``), where these keys
    (rebindable by id) choose lines and copy their text:

    | Key(s) | Description |
    | :- | :- |
    | up, k / down, j | Select the line above / below. |
    | shift+up / shift+down | Extend the selection. |
    | enter, y | Copy the selected lines and leave copy mode. |
    | escape, q | Leave copy mode. |
    """

    BINDINGS = copy_mode_bindings()

    DEFAULT_CSS = """
    MessagePane {
        overflow-x: hidden;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
    }
    """

    COMPONENT_CLASSES = {
        "message-pane--time",
        "message-pane--event",
        "message-pane--info",
        "message-pane--error",
        "message-pane--mention",
        "message-pane--own",
        "message-pane--day",
        "message-pane--banner",
        "message-pane--notice",
        "message-pane--bot",
        "message-pane--newer",
        "message-pane--marker",
        "message-pane--found",
        "message-pane--selected",
    }

    class NearTop(Message):
        """The reader scrolled to the top: time to load older lines."""

    class CopyModeLeft(Message):
        """Copy mode ended: ``lines`` were chosen to copy (none: left without copying)."""

        def __init__(self, lines: list[ChatLine]) -> None:
            super().__init__()
            self.lines = lines

    timestamp_format: var[str] = var("%H:%M")

    def __init__(self, *, tz: tzinfo | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tz = tz
        self._lines: list[ChatLine] = []
        self._banner: str = ""
        self._items: list[Item] = []
        self._starts: list[int] = []  # first row of each item
        self._index: dict[int, int] = {}  # seq -> item index
        self._rows = 0
        self._layout_width = 0
        self._cache: LRUCache[tuple[int, int], list[Strip]] = LRUCache(2048)
        self._last_day: str | None = None
        self._time_width = time_width(self.timestamp_format)
        self._laid = 0  # how many of self._lines are laid out
        # Whether the reader is at the bottom, kept as a fact rather than recomputed
        # from scroll_y: a resize changes max_scroll_y without the reader scrolling,
        # and a pane shrunk at the bottom must stay there and go on following.
        self._follow = True
        self._unseen = 0  # lines that arrived below while the reader was scrolled up
        self._marker_seq: int | None = None  # the line the read marker sits above
        self._found_seq: int | None = None  # the line a search led to
        # Copy mode: the selected lines by index into ``_lines``, their seqs (to draw
        # them), and the seqs of its two ends (to find them again after a reload).
        self._selection: LineSelection | None = None
        self._selected: set[int] = set()
        self._selection_ends = (0, 0)

    # -- public API ------------------------------------------------------------

    @property
    def item_count(self) -> int:
        return len(self._items)

    @property
    def row_count(self) -> int:
        return self._rows

    @property
    def at_bottom(self) -> bool:
        return self.scroll_y >= self.max_scroll_y

    @property
    def following(self) -> bool:
        """Whether new lines scroll into view (the reader was at the bottom)."""
        return self._follow

    def show(
        self,
        lines: list[ChatLine],
        anchor: tuple[int, int] | None = None,
        banner: str = "",
        read_until: datetime | None = None,
    ) -> None:
        """Show another room's lines; ``anchor`` is where the reader left it (None: bottom);
        a rule marks the first unseen line after ``read_until``."""
        self._stop_selecting([])
        self._lines = lines
        self._marker_seq = None
        self._found_seq = None
        if read_until is not None:
            self._marker_seq = next(
                (ln.seq for ln in lines if ln.time > read_until and ln.counts_as_unread), None
            )
        self._banner = banner
        self._unseen = 0
        self._cache.clear()  # seqs are unique, but the banner row is shared by all rooms
        self._relayout()
        if anchor is None:
            self._to_bottom()
        else:
            self._restore(anchor)

    def _to_bottom(self) -> None:
        self._follow = True
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    @property
    def unseen(self) -> int:
        """Lines that arrived below since the reader scrolled up (shown as a hint)."""
        return self._unseen

    def sync(self) -> None:
        """Lay out lines added at the end of the shown list since the last call."""
        follow = self._follow
        for line in self._lines[self._laid :]:
            self._push(line)
            if not follow and line.counts_as_unread:
                self._unseen += 1
        self._laid = len(self._lines)
        self._set_virtual_size()
        if follow:
            self._to_bottom()
        else:
            self.refresh()

    def reload(self, banner: str | None = None) -> None:
        """Lines changed above the end (history arrived): redraw, keep the reader's place."""
        if banner is not None and banner != self._banner:
            self._banner = banner
            self._cache.discard((BANNER_SEQ, self._layout_width))
        anchor = self.anchor()
        self._relayout()
        if anchor is None:
            self._to_bottom()
        else:
            self._restore(anchor)
        if self._selection is not None:  # lines came in above: its indexes moved
            where = {line.seq: i for i, line in enumerate(self._lines)}
            anchor_seq, cursor_seq = self._selection_ends
            if anchor_seq in where and cursor_seq in where:
                self._select(LineSelection(where[anchor_seq], where[cursor_seq]))
            else:
                self._stop_selecting([])

    def redraw(self) -> None:
        """A shown line's text changed in place: draw it again, keep the reader's place."""
        self._cache.clear()
        self.reload()

    def set_banner(self, text: str) -> None:
        if text != self._banner:
            self.reload(banner=text)

    def anchor(self) -> tuple[int, int] | None:
        """(seq of a chat line at the top, rows from its first row to the top), or None
        when the reader is at the bottom.

        The anchor is always a chat line: the banner and day rules above it come and go
        when older lines arrive, and an anchor that vanished would drop the reader at
        the bottom. Above the first line the offset is negative.
        """
        if self._follow or not self._items:
            return None
        top = int(self.scroll_y)
        index = max(bisect.bisect_right(self._starts, top) - 1, 0)
        while index < len(self._items) and not isinstance(self._items[index], ChatLine):
            index += 1
        if index == len(self._items):
            return None
        return (self._items[index].seq, top - self._starts[index])

    @property
    def found(self) -> int | None:
        """The seq of the line a search led to (highlighted), if any."""
        return self._found_seq

    def show_found(self, seq: int) -> None:
        """Highlight the line ``seq`` (a search result) and scroll it to the middle."""
        for old in (self._found_seq, seq):
            if old is not None:
                self._cache.discard((old, self._layout_width))
        self._found_seq = seq
        index = self._index.get(seq)
        if index is None:
            self.refresh()
            return
        middle = max(
            0, (self.scrollable_content_region.height - self._height(self._items[index])) // 2
        )
        self._follow = False
        self.scroll_to(y=max(0, self._starts[index] - middle), animate=False, immediate=True)
        self._follow = self.at_bottom
        self.refresh()

    # -- copy mode ---------------------------------------------------------------

    @property
    def selecting(self) -> bool:
        """Whether copy mode is on."""
        return self._selection is not None

    def selected_lines(self) -> list[ChatLine]:
        """The lines copy mode has selected, oldest first."""
        if self._selection is None:
            return []
        return self._lines[self._selection.first : self._selection.last + 1]

    def start_selecting(self) -> bool:
        """Copy mode: take the focus and select one line (the one a search led to, or
        the lowest on screen). False when there is no line to select."""
        if not self._lines:
            return False
        index = len(self._lines) - 1
        found = next((i for i, ln in enumerate(self._lines) if ln.seq == self._found_seq), None)
        if found is not None:
            index = found
        elif not self._follow:
            bottom = int(self.scroll_y) + self.scrollable_content_region.height - 1
            index = self._last_line_above(bottom)
        self._select(LineSelection(index, index))
        self._cursor_into_view()
        self.can_focus = True
        self.focus()
        return True

    def _last_line_above(self, row: int) -> int:
        """The index in ``_lines`` of the last chat line starting at or above ``row``."""
        item = max(bisect.bisect_right(self._starts, row) - 1, 0)
        while item > 0 and not isinstance(self._items[item], ChatLine):
            item -= 1
        seq = self._items[item].seq if isinstance(self._items[item], ChatLine) else None
        return next((i for i, ln in enumerate(self._lines) if ln.seq == seq), 0)

    def _select(self, selection: LineSelection | None) -> None:
        """Set copy mode's selection and redraw the lines it left and the ones it took."""
        old = self._selected
        self._selection = selection
        self._selected = {line.seq for line in self.selected_lines()}
        if selection is not None:
            ends = (self._lines[selection.anchor].seq, self._lines[selection.cursor].seq)
            self._selection_ends = ends
        for seq in old ^ self._selected:
            self._cache.discard((seq, self._layout_width))
        self.refresh()

    def _cursor_into_view(self) -> None:
        if self._selection is None:
            return
        index = self._index.get(self._lines[self._selection.cursor].seq)
        if index is None:
            return
        top, height = self._starts[index], self._height(self._items[index])
        visible = self.scrollable_content_region.height
        if top < self.scroll_y:
            self.scroll_to(y=top, animate=False, immediate=True)
        elif top + height > self.scroll_y + visible:
            self.scroll_to(y=top + height - visible, animate=False, immediate=True)
        self._follow = self.at_bottom

    def _stop_selecting(self, chosen: list[ChatLine]) -> None:
        if self._selection is None:
            return
        self._select(None)
        self.can_focus = False
        self.post_message(self.CopyModeLeft(chosen))

    def action_select(self, delta: int, extend: bool = False) -> None:
        """Move copy mode's cursor ``delta`` lines; ``extend`` keeps the other end."""
        if self._selection is not None:
            self._select(self._selection.moved(delta, len(self._lines), extend))
            self._cursor_into_view()

    def action_copy(self) -> None:
        self._stop_selecting(self.selected_lines())

    def action_leave(self) -> None:
        self._stop_selecting([])

    def on_blur(self) -> None:
        self._stop_selecting([])  # a click elsewhere, a dialog: copy mode is over

    def page(self, direction: int) -> None:
        """Scroll a page up (-1) or down (1)."""
        if direction < 0 and self.scroll_y <= 0:
            self.post_message(self.NearTop())
            return
        height = max(1, self.scrollable_content_region.height - 1)
        self.scroll_to(y=self.scroll_y + direction * height, animate=False, immediate=True)

    # -- layout ----------------------------------------------------------------

    def _nick_width(self) -> int:
        """The nick column: full width unless the pane is too narrow to leave room for text."""
        spare = self._layout_width - self._time_width - 2 - MIN_TEXT_WIDTH
        return max(MIN_NICK_WIDTH, min(NICK_WIDTH, spare))

    def _text_width(self) -> int:
        # Never wider than what is left of the row: wider rows would be cut off on the right.
        return max(1, self._layout_width - self._time_width - self._nick_width() - 2)

    def _day(self, line: ChatLine) -> str:
        return line.time.astimezone(self.tz).strftime("%A, %d %B %Y")

    def _height(self, item: Item) -> int:
        if not isinstance(item, ChatLine):
            return 1
        text = strip_formatting(item.text)
        if item.kind == LineKind.ACTION:
            text = f"{item.nick} {text}"
        width = self._text_width()
        if cell_len(text) <= width:
            return 1
        return len(self._render_item(item))

    def _push(self, line: ChatLine) -> None:
        day = self._day(line)
        if day != self._last_day:
            self._last_day = day
            self._add_item(DayMark(day, -2 - line.seq))
        if line.seq == self._marker_seq:
            self._add_item(ReadMark(READ_MARK_SEQ - line.seq))
        self._add_item(line)

    @property
    def marker_shown(self) -> bool:
        """Whether the "new since you last looked" rule is in the pane."""
        return self._marker_seq is not None and self._marker_seq in self._index

    def _add_item(self, item: Item) -> None:
        self._index[item.seq] = len(self._items)
        self._items.append(item)
        self._starts.append(self._rows)
        self._rows += self._height(item)

    def _relayout(self) -> None:
        self._layout_width = self.scrollable_content_region.width or self.size.width or 80
        self._items, self._starts, self._index = [], [], {}
        self._rows = 0
        self._last_day = None
        if self._banner:
            self._add_item(Banner(self._banner))
        for line in self._lines:
            self._push(line)
        self._laid = len(self._lines)
        self._set_virtual_size()
        self.refresh()

    def _set_virtual_size(self) -> None:
        self.virtual_size = Size(self._layout_width, self._rows)

    def _restore(self, anchor: tuple[int, int]) -> None:
        seq, offset = anchor
        index = self._index.get(seq)
        if index is None:
            self._to_bottom()
            return
        self._follow = False
        y = max(0, self._starts[index] + offset)
        self.scroll_to(y=y, animate=False, immediate=True)
        self._follow = self.at_bottom

    def on_resize(self, event: events.Resize) -> None:
        width = self.scrollable_content_region.width
        if width and width != self._layout_width:
            anchor = self.anchor()
            self._cache.clear()
            self._relayout()
            if anchor is None:
                self._to_bottom()
            else:
                self._restore(anchor)
        elif self._follow:
            self._to_bottom()  # only the height changed: stay at the bottom

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._follow = new_value >= self.max_scroll_y
        if self._follow and self._unseen:
            self._unseen = 0
            self.refresh()
        if new_value <= 0 < old_value:
            self.post_message(self.NearTop())

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        # Already at the top, the scroll position cannot change: ask for more anyway.
        if self.scroll_y <= 0:
            self.post_message(self.NearTop())

    def watch_timestamp_format(self, timestamp_format: str) -> None:
        self._time_width = time_width(timestamp_format)
        self._cache.clear()
        if self.is_mounted:
            self.reload()  # the text column's width changed with the time column's

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()

    # -- rendering -------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"message-pane--{name}")

    def _render_item(self, item: Item) -> list[Strip]:
        key = (item.seq, self._layout_width)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        strips = self._draw(item)
        self._cache[key] = strips
        return strips

    def _draw(self, item: Item) -> list[Strip]:
        width = self._layout_width
        if isinstance(item, Banner):
            style = self._style("banner")
            left = max(0, (width - cell_len(item.text)) // 2)
            return [Strip([Segment(" " * left + item.text, style)]).crop_extend(0, width, None)]
        if isinstance(item, ReadMark):
            label = " new since you last looked "
            side = max(0, (width - cell_len(label)) // 2)
            right = max(0, width - side - cell_len(label))
            segment = Segment("╌" * side + label + "╌" * right, self._style("marker"))
            return [Strip([segment]).crop_extend(0, width, None)]
        if isinstance(item, DayMark):
            label = f" {item.label} "
            side = max(0, (width - cell_len(label)) // 2)
            right = max(0, width - side - cell_len(label))  # odd widths: the rule still ends flush
            segment = Segment("─" * side + label + "─" * right, self._style("day"))
            return [Strip([segment]).crop_extend(0, width, None)]
        return self._draw_line(item)

    def _gutter(self, line: ChatLine, base: Style) -> list[Segment]:
        """The nick column: right-aligned nick, ``*`` for actions, a mark for the rest."""
        nick_style = Style(color=nick_color(line.nick), bold=line.own)
        column = self._nick_width()
        if line.kind == LineKind.ACTION:
            return [Segment("*".rjust(column), nick_style)]
        if line.kind == LineKind.MESSAGE:
            width = column - 1 if line.bot else column
            segments = [Segment(fit_nick(line.nick, width).rjust(width), nick_style)]
            if line.bot:
                segments.append(Segment("⚙", self._style("bot")))
            return segments
        if line.kind == LineKind.NOTICE and line.nick:
            return [Segment(f"-{fit_nick(line.nick, column - 2)}-".rjust(column), base)]
        mark = "!" if line.kind == LineKind.ERROR else "·"
        return [Segment(mark.rjust(column), base)]

    def _draw_line(self, line: ChatLine) -> list[Strip]:
        console = self.app.console
        stamp = line.time.astimezone(self.tz).strftime(self.timestamp_format)
        stamp = stamp.ljust(self._time_width)
        base = Style()
        if line.kind in (LineKind.EVENT, LineKind.INFO, LineKind.ERROR, LineKind.NOTICE):
            base = self._style(line.kind.value)
        if line.mention:
            base = base + self._style("mention")
        body = irc_to_text(line.text, base)
        if line.kind == LineKind.ACTION:
            who = Text()
            who.append(line.nick + " ", Style(color=nick_color(line.nick), bold=line.own))
            body = who + body
        rows = body.wrap(console, self._text_width(), no_wrap=False, overflow="fold")
        head = [
            Segment(stamp, self._style("time")),
            Segment(" "),
            *self._gutter(line, base),
            Segment(" "),
        ]
        pad = [Segment(" " * (self._time_width + self._nick_width() + 2))]
        # The line a search led to, or lines chosen to copy: a background over every
        # cell of their rows.
        highlight = None
        if line.seq in self._selected:
            highlight = Style(bgcolor=self._style("selected").bgcolor)
        elif line.seq == self._found_seq:
            highlight = Style(bgcolor=self._style("found").bgcolor)
        strips: list[Strip] = []
        for i, row in enumerate(rows or [Text("")]):
            row.end = ""
            segments = [*(head if i == 0 else pad), *row.render(console)]
            if highlight is not None:
                segments = [
                    Segment(text, (style or Style()) + highlight) for text, style, _ in segments
                ]
            strips.append(Strip(segments).crop_extend(0, self._layout_width, highlight))
        return strips

    def _newer_hint(self, width: int) -> Strip:
        plural = "s" if self._unseen != 1 else ""
        label = f" {self._unseen} new message{plural} below ↓ "
        left = max(0, (width - cell_len(label)) // 2)
        style = self._style("newer")
        return Strip([Segment(" " * left + label, style)]).crop_extend(0, width, style)

    def render_line(self, y: int) -> Strip:
        row = int(self.scroll_y) + y
        width = self.scrollable_content_region.width
        if self._unseen and not self._follow and y == self.scrollable_content_region.height - 1:
            return self._newer_hint(width)
        if row >= self._rows or not self._items:
            return Strip.blank(width, self.rich_style)
        index = bisect.bisect_right(self._starts, row) - 1
        strips = self._render_item(self._items[index])
        offset = row - self._starts[index]
        if offset >= len(strips):
            return Strip.blank(width, self.rich_style)
        return strips[offset].crop_extend(0, width, self.rich_style).apply_style(self.rich_style)
