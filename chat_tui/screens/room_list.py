"""The /list screen: rooms on the server with member counts and topics; Enter joins."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label

from chat_protocol import casefold
from chat_tui.formatting import strip_formatting
from chat_tui.model import ListEntry


class RoomListScreen(ModalScreen[str | None]):
    """Browse and filter the server's rooms; the result is the room to join (or None).

    | Key | Action |
    | :- | :- |
    | enter | Join the highlighted room |
    | up/down | Move |
    | escape | Close |
    """

    BINDINGS = [
        Binding("escape", "dismiss_none", "Close"),
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "move(-10)", "Page up", show=False),
        Binding("pagedown", "move(10)", "Page down", show=False),
    ]

    def __init__(self, entries: list[ListEntry] | None = None, done: bool = False) -> None:
        super().__init__()
        self.entries: list[ListEntry] = list(entries or [])
        self.done = done
        self._shown: list[ListEntry] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="room-list-box"):
            yield Label("Rooms", id="room-list-title")
            yield Input(placeholder="filter rooms…", id="room-list-filter")
            yield DataTable(id="room-list-table", cursor_type="row", zebra_stripes=True)
            yield Label("", id="room-list-status")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.can_focus = False
        table.add_column("Room", key="room")
        table.add_column("Users", key="users")
        table.add_column("Topic", key="topic")
        self._refill()

    def update_entries(self, entries: list[ListEntry], done: bool) -> None:
        """New rows from the server (LIST replies arrive one by one)."""
        self.entries = list(entries)
        self.done = done
        if self.is_mounted:
            self._refill()

    def _refill(self) -> None:
        table = self.query_one(DataTable)
        needle = casefold(self.query_one(Input).value.strip())
        shown = [
            e
            for e in self.entries
            if needle in casefold(e.name) or needle in casefold(strip_formatting(e.topic))
        ]
        shown.sort(key=lambda e: (-e.users, casefold(e.name)))
        if shown == self._shown and table.row_count:
            self._status()
            return
        self._shown = shown
        table.clear()
        for entry in shown:
            topic = strip_formatting(entry.topic)
            table.add_row(entry.name, str(entry.users), topic[:200], key=entry.name)
        self._status()

    def _status(self) -> None:
        if not self.done:
            text = f"loading… {len(self.entries)} rooms so far"
        elif not self.entries:
            text = "no rooms yet — /join a name to create one"
        else:
            text = f"{len(self._shown)} of {len(self.entries)} rooms · Enter joins · Esc closes"
        self.query_one("#room-list-status", Label).update(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._refill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        table = self.query_one(DataTable)
        if self._shown and 0 <= table.cursor_row < len(self._shown):
            self.dismiss(self._shown[table.cursor_row].name)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.dismiss(str(event.row_key.value))

    def action_move(self, step: int) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            row = min(max(0, table.cursor_row + step), table.row_count - 1)
            table.move_cursor(row=row)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
