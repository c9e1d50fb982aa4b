"""F1 / /help: the keys (as currently bound) and the slash commands."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from chat_tui.commands import COMMANDS


def help_markdown(keys: list[tuple[str, str]]) -> str:
    """The help text; ``keys`` are (key, what it does) as bound right now."""
    lines = ["# chat-tui help", "", "## Keys", "", "| Key | Does |", "| --- | --- |"]
    lines += [f"| `{key}` | {what} |" for key, what in keys]
    lines += [
        "| `Up` / `Down` | recall sent lines |",
        "| `Tab` | complete nick, /command or #room |",
        "",
        "## Commands",
        "",
        "| Command | Does |",
        "| --- | --- |",
    ]
    for spec in COMMANDS.values():
        aliases = ", ".join("/" + a for a in spec.aliases)
        extra = f" (also {aliases})" if aliases else ""
        lines.append(f"| `{spec.usage}` | {spec.summary}{extra} |")
    lines += ["", "Start a line with `//` to send text that begins with a slash. Esc closes."]
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """Keys and commands, generated from the live bindings and the command table."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(help_markdown(self.keys), id="help-text")
