"""The message pane: a Line API ``ScrollView`` that draws only the rows on screen.

Lines are laid out once per width (``pane_layout``; most fit on one row and need no
wrapping), and rendered rows (``pane_rows``) are kept in an LRU cache, so a room with
tens of thousands of lines scrolls as fast as a short one. Inserting older lines above
keeps the row the reader is looking at in place; new lines scroll the pane only when
the reader is at the bottom. Copy mode selects whole lines with the keyboard.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from rich.style import Style
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from chat_tui.keymap import copy_mode_bindings
from chat_tui.model import ChatLine
from chat_tui.selection import CopySelection, LineSelection
from chat_tui.widgets.pane_layout import PaneLayout
from chat_tui.widgets.pane_rows import BANNER_SEQ, Look, RowPainter, newer_hint

DEFAULT_TIMESTAMP_FORMAT = "%H:%M"


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

    timestamp_format: var[str] = var(DEFAULT_TIMESTAMP_FORMAT)

    def __init__(self, *, tz: tzinfo | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tz = tz
        self._lines: list[ChatLine] = []
        self._banner: str = ""
        self._painter = RowPainter(self._look, DEFAULT_TIMESTAMP_FORMAT)
        self._layout = PaneLayout(self._painter.height, tz)
        # Whether the reader is at the bottom, kept as a fact rather than recomputed
        # from scroll_y: a resize changes max_scroll_y without the reader scrolling,
        # and a pane shrunk at the bottom must stay there and go on following.
        self._follow = True
        self._unseen = 0  # lines that arrived below while the reader was scrolled up
        self._marker_seq: int | None = None  # the line the read marker sits above
        self._found_seq: int | None = None  # the line a search led to
        self._copy = CopySelection()  # copy mode's lines, when it is on

    # -- public API ------------------------------------------------------------

    @property
    def item_count(self) -> int:
        return len(self._layout.items)

    @property
    def row_count(self) -> int:
        return self._layout.rows

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
        self._painter.forget()  # seqs are unique, but the banner row is shared by all rooms
        self._relayout()
        if anchor is None:
            self._to_bottom()
        else:
            self._restore(anchor)

    def _to_bottom(self) -> None:
        self._follow = True
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    def sync(self) -> None:
        """Lay out lines added at the end of the shown list since the last call."""
        follow = self._follow
        for line in self._lines[self._layout.laid :]:
            self._layout.push(line, self._marker_seq)
            if not follow and line.counts_as_unread:
                self._unseen += 1
        self._set_virtual_size()
        if follow:
            self._to_bottom()
        else:
            self.refresh()

    def reload(self, banner: str | None = None) -> None:
        """Lines changed above the end (history arrived): redraw, keep the reader's place."""
        if banner is not None and banner != self._banner:
            self._banner = banner
            self._painter.forget(BANNER_SEQ)
        anchor = self.reading_place()
        self._relayout()
        if anchor is None:
            self._to_bottom()
        else:
            self._restore(anchor)
        if self._copy.span is not None:  # lines came in above: its indexes moved
            span = self._copy.found_again(self._lines)
            if span is not None:
                self._select(span)
            else:
                self._stop_selecting([])

    def redraw(self) -> None:
        """A shown line's text changed in place: draw it again, keep the reader's place."""
        self._painter.forget()
        self.reload()

    def set_banner(self, text: str) -> None:
        if text != self._banner:
            self.reload(banner=text)

    def reading_place(self) -> tuple[int, int] | None:
        """(seq of a chat line at the top, rows from its first row to the top), or None
        when the reader is at the bottom.

        The anchor is always a chat line: the banner and day rules above it come and go
        when older lines arrive, and an anchor that vanished would drop the reader at
        the bottom. Above the first line the offset is negative.
        """
        layout = self._layout
        if self._follow or not layout.items:
            return None
        top = int(self.scroll_y)
        index = layout.line_at_or_below(top)
        if index is None:
            return None
        return (layout.items[index].seq, top - layout.starts[index])

    @property
    def found(self) -> int | None:
        """The seq of the line a search led to (highlighted), if any."""
        return self._found_seq

    def show_found(self, seq: int) -> None:
        """Highlight the line ``seq`` (a search result) and scroll it to the middle."""
        for old in (self._found_seq, seq):
            if old is not None:
                self._painter.forget(old)
        self._found_seq = seq
        place = self._layout.place(seq)
        if place is None:
            self.refresh()
            return
        top, height = place
        middle = max(0, (self.scrollable_content_region.height - height) // 2)
        self._follow = False
        self.scroll_to(y=max(0, top - middle), animate=False, immediate=True)
        self._follow = self.at_bottom
        self.refresh()

    # -- copy mode ---------------------------------------------------------------

    @property
    def selecting(self) -> bool:
        """Whether copy mode is on."""
        return self._copy.span is not None

    def selected_lines(self) -> list[ChatLine]:
        """The lines copy mode has selected, oldest first."""
        return self._copy.lines(self._lines)

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
        line = self._layout.line_at_or_above(row)
        seq = line.seq if line is not None else None
        return next((i for i, ln in enumerate(self._lines) if ln.seq == seq), 0)

    def _select(self, selection: LineSelection | None) -> None:
        """Set copy mode's selection and redraw the lines it left and the ones it took."""
        for seq in self._copy.select(selection, self._lines):
            self._painter.forget(seq)
        self.refresh()

    def _cursor_into_view(self) -> None:
        span = self._copy.span
        place = self._layout.place(self._lines[span.cursor].seq) if span is not None else None
        if place is None:
            return
        top, height = place
        visible = self.scrollable_content_region.height
        if top < self.scroll_y:
            self.scroll_to(y=top, animate=False, immediate=True)
        elif top + height > self.scroll_y + visible:
            self.scroll_to(y=top + height - visible, animate=False, immediate=True)
        self._follow = self.at_bottom

    def _stop_selecting(self, chosen: list[ChatLine]) -> None:
        if self._copy.span is None:
            return
        self._select(None)
        self.can_focus = False
        self.post_message(self.CopyModeLeft(chosen))

    def action_select(self, delta: int, extend: bool = False) -> None:
        """Move copy mode's cursor ``delta`` lines; ``extend`` keeps the other end."""
        if self._copy.span is not None:
            self._select(self._copy.span.moved(delta, len(self._lines), extend))
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

    def _relayout(self) -> None:
        self._painter.resize(self.scrollable_content_region.width or self.size.width or 80)
        self._layout.restart(self._banner)
        for line in self._lines:
            self._layout.push(line, self._marker_seq)
        self._set_virtual_size()
        self.refresh()

    def _set_virtual_size(self) -> None:
        self.virtual_size = Size(self._painter.columns.width, self._layout.rows)

    def _restore(self, anchor: tuple[int, int]) -> None:
        seq, offset = anchor
        index = self._layout.index.get(seq)
        if index is None:
            self._to_bottom()
            return
        self._follow = False
        y = max(0, self._layout.starts[index] + offset)
        self.scroll_to(y=y, animate=False, immediate=True)
        self._follow = self.at_bottom

    def on_resize(self, event: events.Resize) -> None:
        width = self.scrollable_content_region.width
        if width and width != self._painter.columns.width:
            anchor = self.reading_place()
            self._painter.forget()
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
        self._painter.set_clock(timestamp_format)
        if self.is_mounted:
            self.reload()  # the text column's width changed with the time column's

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._painter.forget()

    # -- rendering -------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"message-pane--{name}")

    def _look(self) -> Look:
        return Look(
            self._style,
            self.app.console,
            self.tz,
            self.timestamp_format,
            self._copy.seqs,
            self._found_seq,
        )

    def render_line(self, y: int) -> Strip:
        row = int(self.scroll_y) + y
        width = self.scrollable_content_region.width
        if self._unseen and not self._follow and y == self.scrollable_content_region.height - 1:
            return newer_hint(self._unseen, width, self._style("newer"))
        layout = self._layout
        if row >= layout.rows or not layout.items:
            return Strip.blank(width, self.rich_style)
        index = layout.item_at(row)
        strips = self._painter.rows(layout.items[index])
        offset = row - layout.starts[index]
        if offset >= len(strips):
            return Strip.blank(width, self.rich_style)
        return strips[offset].crop_extend(0, width, self.rich_style).apply_style(self.rich_style)
