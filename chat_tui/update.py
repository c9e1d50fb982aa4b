"""What applying one message changed, so the app redraws only that.

``ChatState.apply`` and its helpers fill an ``Update``; ``RoomView.refresh`` reads it.
Plain data, no Textual.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chat_tui.notify import Alert


@dataclass(frozen=True, slots=True)
class Unsent:
    """A line the user typed in room ``room`` (a key) that went to ``target``."""

    room: str
    target: str
    typed: str


@dataclass
class Update:
    """What one applied message changed; the app refreshes only these parts."""

    appended: set[str] = field(default_factory=set)  # room keys with lines at the end
    reordered: set[str] = field(default_factory=set)  # room keys with lines inserted above
    sidebar: bool = False
    members: set[str] = field(default_factory=set)
    topic: set[str] = field(default_factory=set)
    rewritten: set[str] = field(default_factory=set)  # room keys with a line changed in place
    status: bool = False
    room_list: bool = False
    focus: str | None = None  # a room key the user should now look at
    toasts: list[str] = field(default_factory=list)
    give_back: Unsent | None = None  # typed text the server refused, for the input again
    alerts: list[Alert] = field(default_factory=list)  # mentions and DMs, for the bell
    chosen: bool = False  # the user joined or left a room (``ChatState.chosen`` changed)

    def merge(self, other: Update) -> None:
        self.appended |= other.appended
        self.reordered |= other.reordered
        self.sidebar |= other.sidebar
        self.members |= other.members
        self.topic |= other.topic
        self.rewritten |= other.rewritten
        self.status |= other.status
        self.room_list |= other.room_list
        self.focus = other.focus or self.focus
        self.toasts.extend(other.toasts)
        self.give_back = other.give_back or self.give_back
        self.alerts.extend(other.alerts)
        self.chosen |= other.chosen
