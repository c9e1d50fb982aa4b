"""The one-line topic bar above the messages."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from chat_tui.formatting import irc_to_text


class TopicLine(Widget):
    """Room name and topic on one line; the topic keeps its IRC formatting."""

    DEFAULT_CSS = """
    TopicLine {
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    room: reactive[str] = reactive("")
    topic: reactive[str] = reactive("")

    def render(self) -> Text:
        text = Text(self.room, style="bold", no_wrap=True, overflow="ellipsis")
        if self.topic:
            text.append("  ")
            text.append_text(irc_to_text(self.topic))
        text.no_wrap = True
        text.overflow = "ellipsis"
        return text
