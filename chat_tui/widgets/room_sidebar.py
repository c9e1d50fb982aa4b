"""Room sidebar: every room and conversation with its unread and mention counts."""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip


@dataclass(frozen=True, slots=True)
class RoomEntry:
    """What the sidebar shows for one room."""

    key: str
    label: str
    unread: int = 0
    mentions: int = 0
    joined: bool = True


class RoomSidebar(ScrollView, can_focus=False):
    """Rooms in sidebar order; the current one is highlighted, clicking one switches."""

    DEFAULT_CSS = """
    RoomSidebar {
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
    }
    """

    COMPONENT_CLASSES = {
        "room-sidebar--current",
        "room-sidebar--unread",
        "room-sidebar--mention",
        "room-sidebar--parted",
        "room-sidebar--number",
    }

    class Selected(Message):
        """The user clicked a room."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: list[RoomEntry] = []
        self.current: str = ""

    def set_rooms(self, entries: list[RoomEntry], current: str) -> None:
        """Replace the list; cheap enough to call on every change (rooms are few)."""
        if entries == self.entries and current == self.current:
            return
        self.entries = entries
        self.current = current
        self.virtual_size = Size(self.size.width, len(entries))
        index = next((i for i, e in enumerate(entries) if e.key == current), None)
        if index is not None:
            self.scroll_to_region_row(index)
        self.refresh()

    def scroll_to_region_row(self, row: int) -> None:
        height = self.scrollable_content_region.height
        if height and not self.scroll_y <= row < self.scroll_y + height:
            self.scroll_to(y=max(0, row - height + 1), animate=False, immediate=True)

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"room-sidebar--{name}")

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = int(self.scroll_y) + y
        if row >= len(self.entries):
            return Strip.blank(width, self.rich_style)
        entry = self.entries[row]
        base = self.rich_style
        if entry.key == self.current:
            base += self._style("current")
        elif not entry.joined:
            base += self._style("parted")
        elif entry.unread:
            base += self._style("unread")
        number = f"{row + 1}" if row < 9 else " "
        counts: list[Segment] = []
        if entry.mentions:
            counts.append(Segment(f" @{entry.mentions}", base + self._style("mention")))
        if entry.unread:
            counts.append(Segment(f" {entry.unread}", base))
        counts.append(Segment(" ", base))
        counts_width = sum(cell_len(s.text) for s in counts)
        room_width = max(1, width - 2 - counts_width)
        label = entry.label
        if cell_len(label) > room_width:
            label = label[: max(0, room_width - 1)] + "…"
        segments = [
            Segment(number, base + self._style("number")),
            Segment(" ", base),
            Segment(label.ljust(room_width), base),
            *counts,
        ]
        return Strip(segments).crop_extend(0, width, base)

    def on_click(self, event: events.Click) -> None:
        row = int(self.scroll_y) + event.y
        if 0 <= row < len(self.entries):
            self.post_message(self.Selected(self.entries[row].key))
