"""Status line: server, nick, the account logged in to, connection state, lag, who is
typing, and a short note (copy mode's keys, what was copied)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

STATE_MARKS = {"connected": "●", "connecting": "◌", "offline": "○"}


class StatusLine(Widget):
    """One line at the bottom; the ``-offline``/``-connecting`` class decides its colour."""

    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    state: reactive[str] = reactive("connecting")
    server: reactive[str] = reactive("")
    nick: reactive[str] = reactive("")
    account: reactive[str | None] = reactive(None)
    lag: reactive[float | None] = reactive(None)
    retry_in: reactive[float | None] = reactive(None)
    away: reactive[bool] = reactive(False)
    typing: reactive[tuple[str, ...]] = reactive(())
    note: reactive[str] = reactive("")  # copy mode's keys, or what was just copied

    def watch_state(self, state: str) -> None:
        for name in STATE_MARKS:
            self.set_class(state == name, f"-{name}")

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        label = self.state
        if self.state == "offline" and self.retry_in is not None:
            label = f"offline, retrying in {self.retry_in:.0f}s"
        text.append(f" {STATE_MARKS.get(self.state, '?')} {label}", style="bold")
        if self.note:  # next to the state, so a narrow terminal still shows it
            text.append("  ")
            text.append(f" {self.note} ", style="reverse")
        if self.server:
            text.append(f"  {self.server}")
        if self.nick:
            text.append(f"  {self.nick}", style="bold")
        if self.account and self.state == "connected":
            same = self.account.casefold() == self.nick.casefold()
            text.append(" (logged in)" if same else f" (logged in as {self.account})")
        if self.away:
            text.append(" (away)")
        if self.lag is not None and self.state == "connected":
            text.append(f"  lag {self.lag * 1000:.0f} ms")
        if self.typing:
            names = list(self.typing)
            if len(names) == 1:
                who = f"{names[0]} is typing…"
            elif len(names) <= 3:
                who = f"{', '.join(names[:-1])} and {names[-1]} are typing…"
            else:
                who = "several people are typing…"
            text.append(f"  {who}", style="italic")
        return text
