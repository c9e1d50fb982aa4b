"""Ctrl+K: type a few letters of a room, Enter goes there."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from chat_tui.widgets.room_sidebar import RoomEntry


class RoomSwitcher(ModalScreen[str | None]):
    """A fuzzy finder over the sidebar's rooms; unread ones first when nothing is typed.

    | Key | Action |
    | :- | :- |
    | enter | Go to the highlighted room |
    | up/down | Move |
    | escape | Close |
    """

    BINDINGS = [
        Binding("escape", "dismiss_none", "Close"),
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
    ]

    def __init__(self, rooms: list[RoomEntry], current: str) -> None:
        super().__init__()
        self.rooms = rooms
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="switcher-box"):
            yield Input(placeholder="go to room…", id="switcher-input")
            yield OptionList(id="switcher-options")

    def on_mount(self) -> None:
        self.query_one(OptionList).can_focus = False
        self._refill("")

    def ranked(self, query: str) -> list[RoomEntry]:
        """Rooms matching ``query`` best first; without a query, unread rooms lead."""
        others = [r for r in self.rooms if r.key != self.current] or self.rooms
        if not query:
            return sorted(others, key=lambda r: (-r.mentions, -bool(r.unread)))
        matcher = Matcher(query)
        scored = [(matcher.match(r.label), r) for r in self.rooms]
        return [r for score, r in sorted(scored, key=lambda s: -s[0]) if score > 0]

    def _refill(self, query: str) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        matcher = Matcher(query) if query else None
        for room in self.ranked(query):
            # Content, not rich Text: Matcher.highlight gives Content, which is immutable.
            label = matcher.highlight(room.label) if matcher else Content(room.label)
            if room.mentions:
                label += Content.styled(f"  @{room.mentions}", "bold")
            if room.unread:
                label += Content.styled(f"  {room.unread} unread", "dim")
            options.add_option(Option(label, id=room.key))
        if options.option_count:
            options.highlighted = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        self._refill(event.value.strip())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one(OptionList)
        if options.highlighted is not None and options.option_count:
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            current = options.highlighted or 0
            options.highlighted = min(max(0, current + step), options.option_count - 1)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
