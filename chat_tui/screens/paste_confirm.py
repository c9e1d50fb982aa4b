"""Asked before a paste of many lines goes out: send them as lines, as one, or not at all."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

PREVIEW_LINES = 8


class PasteConfirm(ModalScreen[str | None]):
    """Shows the start of a multi-line paste; dismisses with "lines", "one" or None.

    | Key | Action |
    | :- | :- |
    | enter, y | Send every line as its own message |
    | o | Send all lines as one long message |
    | escape, n | Do not send (the text goes back to the input as one line) |
    """

    BINDINGS = [
        Binding("enter,y", "choose('lines')", "Send lines"),
        Binding("o", "choose('one')", "As one message"),
        Binding("escape,n", "choose('')", "Cancel"),
    ]

    def __init__(self, target: str, lines: list[str]) -> None:
        super().__init__()
        self.target = target
        self.lines = lines

    def compose(self) -> ComposeResult:
        count = len(self.lines)
        rows = [Text(f"│ {line}") for line in self.lines[:PREVIEW_LINES]]
        if count > PREVIEW_LINES:
            rows.append(Text(f"│ … and {count - PREVIEW_LINES} more", style="italic"))
        preview = Text("\n").join(rows)
        with Vertical(id="paste-box"):
            yield Static(Text(f"Paste {count} lines into {self.target}?", style="bold"))
            yield Static(preview, id="paste-preview")
            yield Static("enter: send the lines   o: as one message   esc: cancel", id="paste-keys")
            with Horizontal(id="paste-buttons"):
                yield Button(f"Send {count} lines", id="lines", variant="primary")
                yield Button("As one message", id="one")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose("" if event.button.id == "cancel" else str(event.button.id))

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice or None)
