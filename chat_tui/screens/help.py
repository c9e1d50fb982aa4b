"""F1 / /help: the keys (as currently bound) and the slash commands."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from chat_tui.commands import COMMANDS

SIDE_BY_SIDE_WIDTH = 100  # narrower terminals get the commands below the keys


def help_tables(keys: list[tuple[str, str]], width: int = SIDE_BY_SIDE_WIDTH) -> Group:
    """Keys (as bound right now) beside the slash commands; compact, one row each.

    In a terminal narrower than ``SIDE_BY_SIDE_WIDTH`` the two tables would squeeze
    their descriptions into stubs, so the commands go below the keys instead.
    """
    key_table = Table(box=None, show_header=True, header_style="bold", expand=False)
    key_table.add_column("Key", style="bold")
    key_table.add_column("Does")
    for key, what in keys:
        key_table.add_row(Text(key), Text(what))  # Text: no markup in "[reason]"
    command_table = Table(box=None, show_header=True, header_style="bold", expand=False)
    command_table.add_column("Command", style="bold")
    command_table.add_column("Does")
    for spec in COMMANDS.values():
        aliases = ", ".join("/" + a for a in spec.aliases)
        command_table.add_row(
            Text(spec.usage), Text(spec.summary + (f" (also {aliases})" if aliases else ""))
        )
    footer = Text("Start a line with // to send text that begins with a slash.  Esc closes.")
    title = Text("chat-tui help", style="bold")
    if width < SIDE_BY_SIDE_WIDTH:
        return Group(title, Text(""), key_table, Text(""), command_table, Text(""), footer)
    columns = Table.grid(padding=(0, 4))
    columns.add_row(key_table, command_table)
    return Group(title, Text(""), columns, Text(""), footer)


class HelpScreen(ModalScreen[None]):
    """Keys and commands, generated from the live bindings and the command table."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(help_tables(self.keys, self.app.size.width), id="help-text")
