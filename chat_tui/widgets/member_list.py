"""Member list of the current room: ops and voiced first, bots marked, away dimmed."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from chat_tui.formatting import nick_color
from chat_tui.roster import Member


class MemberList(ScrollView, can_focus=False):
    """Nicks with their highest prefix; ``⚙`` marks a bot; the count is the border title."""

    DEFAULT_CSS = """
    MemberList {
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
    }
    """

    COMPONENT_CLASSES = {"member-list--prefix", "member-list--away", "member-list--bot"}

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.members: list[Member] = []

    def set_members(self, members: list[Member]) -> None:
        """Show ``members``, in the order given."""
        self.members = members
        count = len(members)
        self.border_title = f"{count} member{'s' if count != 1 else ''}" if count else ""
        self.virtual_size = Size(self.size.width, len(members))
        self.refresh()

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"member-list--{name}")

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = int(self.scroll_y) + y
        if row >= len(self.members):
            return Strip.blank(width, self.rich_style)
        member = self.members[row]
        base = self.rich_style
        nick_style = base + Style(color=nick_color(member.nick))
        if member.away:
            nick_style += self._style("away")
        segments = [
            Segment((member.prefixes[:1] or " "), base + self._style("prefix")),
            Segment(member.nick, nick_style),
        ]
        if member.bot:
            segments.append(Segment(" ⚙", base + self._style("bot")))
        return Strip(segments).crop_extend(0, width, base)
