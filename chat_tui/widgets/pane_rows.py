"""What the message pane draws: a chat line in three columns (time, nick, text), the
day rules, the "new since you last looked" rule, the banner and the "N new messages
below" hint.

Drawing is plain functions of an item, the column widths and a ``Look`` (styles, time
zone, clock format, highlights), so the pane decides only what is where and caches
what these return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.strip import Strip

from chat_tui.formatting import fit_nick, irc_to_text, nick_color, strip_formatting
from chat_tui.model import ChatLine, LineKind

NICK_WIDTH = 12
MIN_NICK_WIDTH = 6
MIN_TEXT_WIDTH = 24  # a narrow pane shrinks the nick column to keep this much for text
BANNER_SEQ = -1
READ_MARK_SEQ = -(10**12)  # ReadMark seqs: READ_MARK_SEQ - line.seq, apart from DayMarks'
# Moments whose formatted width is the widest a format gives (long month and day names,
# two-digit everything), to size the time column for any ``timestamp_format``.
WIDEST_MOMENTS = [datetime(2024, 9, 25, 23, 59, 59), datetime(2024, 12, 28, 12, 30, 30)]
READ_MARK_LABEL = " new since you last looked "


def time_width(timestamp_format: str) -> int:
    """Cells the time column needs for ``timestamp_format`` (``%H:%M`` → 5)."""
    return max(cell_len(moment.strftime(timestamp_format)) for moment in WIDEST_MOMENTS)


@dataclass(slots=True, frozen=True)
class DayMark:
    """A separator row between lines of different (local) days."""

    label: str
    seq: int


@dataclass(slots=True, frozen=True)
class Banner:
    """The top row: loading indicator or "beginning of history"."""

    text: str
    seq: int = BANNER_SEQ


@dataclass(slots=True, frozen=True)
class ReadMark:
    """The "new since you last looked" rule, above the first line the reader has not seen."""

    seq: int


Item = ChatLine | DayMark | Banner | ReadMark


@dataclass(slots=True, frozen=True)
class Columns:
    """The widths of the pane's rows: the whole row and its time column; the nick and
    text columns share the rest."""

    width: int
    time: int

    @property
    def nick(self) -> int:
        """Full width unless the pane is too narrow to leave room for text."""
        spare = self.width - self.time - 2 - MIN_TEXT_WIDTH
        return max(MIN_NICK_WIDTH, min(NICK_WIDTH, spare))

    @property
    def text(self) -> int:
        # Never wider than what is left of the row: wider rows would be cut off on the right.
        return max(1, self.width - self.time - self.nick - 2)


StyleOf = Callable[[str], Style]  # a component name ("time", "mention") -> its style


@dataclass(slots=True)
class Look:
    """How lines are drawn right now: styles, clock, and which lines stand out."""

    style: StyleOf
    console: Console
    tz: tzinfo | None
    timestamp_format: str
    selected: set[int]  # seqs of the lines copy mode has chosen
    found: int | None  # the seq of the line a search led to


class RowPainter:
    """Draws items at the pane's current width and keeps what it drew (an LRU cache by
    seq), so scrolling through a long room draws each line once."""

    def __init__(self, look: Callable[[], Look], timestamp_format: str) -> None:
        self._look = look  # how lines look right now (styles, highlights)
        self.columns = Columns(0, time_width(timestamp_format))
        self._cache: LRUCache[tuple[int, int], list[Strip]] = LRUCache(2048)

    def resize(self, width: int) -> None:
        self.columns = Columns(width, self.columns.time)

    def set_clock(self, timestamp_format: str) -> None:
        self.columns = Columns(self.columns.width, time_width(timestamp_format))
        self._cache.clear()

    def forget(self, seq: int | None = None) -> None:
        """Draw item ``seq`` again next time (None: every item)."""
        if seq is None:
            self._cache.clear()
        else:
            self._cache.discard((seq, self.columns.width))

    def rows(self, item: Item) -> list[Strip]:
        key = (item.seq, self.columns.width)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = draw(item, self.columns, self._look())
        return cached

    def height(self, item: Item) -> int:
        """Rows ``item`` takes (most lines fit one without drawing them)."""
        if not isinstance(item, ChatLine) or fits_one_row(item, self.columns):
            return 1
        return len(self.rows(item))


def fits_one_row(line: ChatLine, columns: Columns) -> bool:
    """Whether ``line`` needs no wrapping (most do not; drawing it tells the rest)."""
    text = strip_formatting(line.text)
    if line.kind == LineKind.ACTION:
        text = f"{line.nick} {text}"
    return cell_len(text) <= columns.text


def draw(item: Item, columns: Columns, look: Look) -> list[Strip]:
    """The rows of ``item``, each ``columns.width`` cells wide."""
    width = columns.width
    if isinstance(item, Banner):
        left = max(0, (width - cell_len(item.text)) // 2)
        segment = Segment(" " * left + item.text, look.style("banner"))
        return [Strip([segment]).crop_extend(0, width, None)]
    if isinstance(item, ReadMark):
        return [_rule(READ_MARK_LABEL, "╌", width, look.style("marker"))]
    if isinstance(item, DayMark):
        return [_rule(f" {item.label} ", "─", width, look.style("day"))]
    return _draw_line(item, columns, look)


def _rule(label: str, fill: str, width: int, style: Style) -> Strip:
    side = max(0, (width - cell_len(label)) // 2)
    right = max(0, width - side - cell_len(label))  # odd widths: the rule still ends flush
    return Strip([Segment(fill * side + label + fill * right, style)]).crop_extend(0, width, None)


def newer_hint(unseen: int, width: int, style: Style) -> Strip:
    """The bottom row while scrolled up: how many lines arrived below."""
    plural = "s" if unseen != 1 else ""
    label = f" {unseen} new message{plural} below ↓ "
    left = max(0, (width - cell_len(label)) // 2)
    return Strip([Segment(" " * left + label, style)]).crop_extend(0, width, style)


def _gutter(line: ChatLine, base: Style, columns: Columns, look: Look) -> list[Segment]:
    """The nick column: right-aligned nick, ``*`` for actions, a mark for the rest."""
    nick_style = Style(color=nick_color(line.nick), bold=line.own)
    column = columns.nick
    if line.kind == LineKind.ACTION:
        return [Segment("*".rjust(column), nick_style)]
    if line.kind == LineKind.MESSAGE:
        width = column - 1 if line.bot else column
        segments = [Segment(fit_nick(line.nick, width).rjust(width), nick_style)]
        if line.bot:
            segments.append(Segment("⚙", look.style("bot")))
        return segments
    if line.kind == LineKind.NOTICE and line.nick:
        return [Segment(f"-{fit_nick(line.nick, column - 2)}-".rjust(column), base)]
    mark = "!" if line.kind == LineKind.ERROR else "·"
    return [Segment(mark.rjust(column), base)]


def _draw_line(line: ChatLine, columns: Columns, look: Look) -> list[Strip]:
    console = look.console
    stamp = line.time.astimezone(look.tz).strftime(look.timestamp_format)
    stamp = stamp.ljust(columns.time)
    base = Style()
    if line.kind in (LineKind.EVENT, LineKind.INFO, LineKind.ERROR, LineKind.NOTICE):
        base = look.style(line.kind.value)
    if line.mention:
        base = base + look.style("mention")
    body = irc_to_text(line.text, base)
    if line.kind == LineKind.ACTION:
        who = Text()
        who.append(line.nick + " ", Style(color=nick_color(line.nick), bold=line.own))
        body = who + body
    rows = body.wrap(console, columns.text, no_wrap=False, overflow="fold")
    head = [
        Segment(stamp, look.style("time")),
        Segment(" "),
        *_gutter(line, base, columns, look),
        Segment(" "),
    ]
    pad = [Segment(" " * (columns.time + columns.nick + 2))]
    # The line a search led to, or lines chosen to copy: a background over every
    # cell of their rows.
    highlight = None
    if line.seq in look.selected:
        highlight = Style(bgcolor=look.style("selected").bgcolor)
    elif line.seq == look.found:
        highlight = Style(bgcolor=look.style("found").bgcolor)
    strips: list[Strip] = []
    for i, row in enumerate(rows or [Text("")]):
        row.end = ""
        segments = [*(head if i == 0 else pad), *row.render(console)]
        if highlight is not None:
            segments = [
                Segment(text, (style or Style()) + highlight) for text, style, _ in segments
            ]
        strips.append(Strip(segments).crop_extend(0, columns.width, highlight))
    return strips
