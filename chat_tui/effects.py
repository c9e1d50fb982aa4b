"""What a typed command asks for: effects as plain records, which the app carries out.

``commands.run`` returns a list of these; ``TypedLines.carry_out`` (and the session,
for what goes to the server) act on them. No I/O and no Textual here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chat_tui.model import LineKind


@dataclass(frozen=True, slots=True)
class Send:
    """Send a raw IRC line."""

    line: str


@dataclass(frozen=True, slots=True)
class Say:
    """Send text (or a /me action) to a room or nick."""

    target: str
    text: str
    action: bool = False


@dataclass(frozen=True, slots=True)
class Join:
    room: str
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Part:
    room: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OpenRoom:
    """Open (and look at) a direct conversation."""

    name: str


@dataclass(frozen=True, slots=True)
class CloseRoom:
    name: str


@dataclass(frozen=True, slots=True)
class ShowScreen:
    name: str  # "list" | "help"


@dataclass(frozen=True, slots=True)
class OpenSearch:
    """Open the search screen, searching for ``text`` when it is given."""

    text: str = ""


@dataclass(frozen=True, slots=True)
class CopyMode:
    """Select lines of the shown room to copy their text."""


@dataclass(frozen=True, slots=True)
class Quit:
    reason: str


@dataclass(frozen=True, slots=True)
class RegisterAccount:
    """Create an account named like our nick (draft/account-registration)."""

    password: str = field(repr=False)
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """A client-side line in the current room (errors in red)."""

    text: str
    kind: LineKind = LineKind.INFO


Effect = (
    Send
    | Say
    | Join
    | Part
    | OpenRoom
    | CloseRoom
    | ShowScreen
    | OpenSearch
    | CopyMode
    | Quit
    | Note
    | RegisterAccount
)
