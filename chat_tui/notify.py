"""Tell the reader about a mention or a direct message they cannot see: the terminal
bell and a desktop notification (OSC 777 and OSC 9, which terminals such as foot,
WezTerm, kitty, iTerm2, Windows Terminal and rxvt-unicode turn into one).

No Textual here: ``Notifier`` writes escape sequences through the function it is
given (the app passes its terminal driver's ``write``; tests pass a list's append).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from chat_protocol import casefold
from chat_tui.formatting import strip_formatting

BEL = "\x07"
ESC = "\x1b"
TITLE_MAX = 60
BODY_MAX = 200
ROOM_INTERVAL = 5.0  # seconds: at most one alert per room in this time (a flood is one)

# C0 and C1 controls (ESC, BEL, ST, CSI...) would end the sequence early or start a new
# one: a message could then make the terminal do what its sender wants.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_SPACES = re.compile(r"[\t\n\v\f\r]+")  # line breaks part words; say so with a space


def clean(text: str, limit: int) -> str:
    """``text`` safe inside an OSC sequence: formatting and controls gone, at most
    ``limit`` characters (an ellipsis says it was cut)."""
    text = _CONTROL.sub(" ", strip_formatting(_SPACES.sub(" ", text)))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def desktop_sequences(title: str, body: str) -> list[str]:
    """OSC 777 (title and body) and OSC 9 (body only) for an already cleaned text.
    OSC 777 separates its fields with ``;``, so the title must not contain one."""
    title = title.replace(";", ",")
    return [f"{ESC}]777;notify;{title};{body}{BEL}", f"{ESC}]9;{body}{BEL}"]


def tmux_passthrough(sequence: str) -> str:
    """Wrap ``sequence`` so tmux hands it to the outer terminal (needs tmux's
    ``allow-passthrough on``): DCS ``tmux;`` + the sequence with every ESC doubled + ST."""
    return f"{ESC}Ptmux;{sequence.replace(ESC, ESC + ESC)}{ESC}\\"


@dataclass(frozen=True, slots=True)
class Alert:
    """A line the reader should hear about: a mention, a highlight word or a DM."""

    room: str  # the room's name as shown ("#general", "bob")
    nick: str
    text: str
    direct: bool = False

    @property
    def title(self) -> str:
        return f"{self.nick} (direct message)" if self.direct else f"{self.nick} in {self.room}"


class Notifier:
    """Rings the bell and sends desktop notifications, at most one per room per
    ``interval`` seconds, for rooms the reader is not looking at."""

    def __init__(
        self,
        write: Callable[[str], object],
        *,
        bell: bool = True,
        desktop: bool = True,
        tmux: bool = False,
        interval: float = ROOM_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write = write
        self.bell = bell
        self.desktop = desktop
        self.tmux = tmux
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}  # room key -> when it last alerted

    def sequences(self, alert: Alert) -> str:
        """Everything written for ``alert``, in one string (one write to the terminal)."""
        out = [BEL] if self.bell else []  # tmux passes a plain BEL on by itself
        if self.desktop:
            title = clean(alert.title, TITLE_MAX)
            body = clean(alert.text, BODY_MAX)
            for seq in desktop_sequences(title, body):
                out.append(tmux_passthrough(seq) if self.tmux else seq)
        return "".join(out)

    def alert(self, alert: Alert, in_view: bool) -> bool:
        """Tell the reader about ``alert`` unless its room is in view (shown, terminal
        focused) or alerted within the interval; returns whether anything was written."""
        if in_view or not (self.bell or self.desktop):
            return False
        key = casefold(alert.room)
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last[key] = now
        self.write(self.sequences(alert))
        return True
