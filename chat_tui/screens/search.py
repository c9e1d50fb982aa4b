"""Ctrl+F / /search: find messages in this room or in all rooms, Enter goes to one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import tzinfo

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option

from chat_tui.formatting import fit_nick, nick_color, strip_formatting
from chat_tui.search import SearchAnswer, SearchResult, TypedQuery, match_spans, parse_query

# Runs one search: the query, and the room to search (None: all rooms).
Finder = Callable[[TypedQuery, str | None], Awaitable[SearchAnswer]]

# Columns of a result row (room, time, sender), and narrower ones below NARROW cells.
WIDE = (14, "%Y-%m-%d %H:%M", 10)
NARROW_COLUMNS = (10, "%m-%d %H:%M", 8)
NARROW = 90
LEAD = 12  # cells of text kept before a match that would otherwise be cut off
HINT = "type words, from:nick for one sender · enter searches"
KEYS = "enter: search / open   ↑↓: choose   tab: room ⇄ all   esc: close"


def snippet(text: str, spans: list[tuple[int, int]], width: int) -> tuple[str, int]:
    """The part of ``text`` to show in ``width`` cells, so that the first match is in
    view, and where it starts in ``text``."""
    if cell_len(text) <= width or not spans or cell_len(text[: spans[0][1]]) <= width:
        return text, 0
    first = spans[0][0]
    start = max(0, first - LEAD)
    space = text.find(" ", start, first)  # start at a word
    start = space + 1 if space != -1 else start
    return "…" + text[start:], start - 1


class SearchScreen(ModalScreen[SearchResult | None]):
    """A search box over the room's or every room's messages, newest results first.

    | Key | Action |
    | :- | :- |
    | enter | Search (the words changed) or go to the highlighted message |
    | up/down, pageup/pagedown | Move through the results |
    | tab | Search this room / all rooms |
    | escape | Close |
    """

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "move(-10)", "Page up", show=False),
        Binding("pagedown", "move(10)", "Page down", show=False),
        Binding("tab,shift+tab", "toggle_scope", "This room / all rooms", show=False),
    ]

    COMPONENT_CLASSES = {"search--match", "search--room", "search--time"}

    def __init__(
        self,
        finder: Finder,
        room: str | None,
        words: str = "",
        all_rooms: bool = False,
        tz: tzinfo | None = None,
    ) -> None:
        super().__init__()
        self.finder = finder
        self.room = room  # the room "this room" means; None in the server tab
        self.words = words
        self.all_rooms = all_rooms or room is None
        self.tz = tz
        self.results: list[SearchResult] = []
        self.answer: SearchAnswer | None = None  # of the last search; None while it runs
        self.searched: tuple[str, str | None] | None = None  # (typed, room) last asked

    def compose(self) -> ComposeResult:
        with Vertical(id="search-box"):
            yield Input(value=self.words, placeholder="search messages…", id="search-input")
            with Horizontal(id="search-scope"):
                yield Label("in", id="search-scope-label")
                with RadioSet(id="search-scope-set"):
                    yield RadioButton(  # Text: a room name is not markup
                        Text(self.room or "this room"), value=not self.all_rooms, id="scope-room"
                    )
                    yield RadioButton("all rooms", value=self.all_rooms, id="scope-all")
            yield Static(HINT, id="search-status")
            yield OptionList(id="search-results")
            yield Static(KEYS, id="search-keys")

    def on_mount(self) -> None:
        self.query_one("#search-box").border_title = "Search messages"
        self.query_one(OptionList).can_focus = False
        scopes = self.query_one(RadioSet)
        scopes.can_focus = False
        self.query_one("#scope-room", RadioButton).disabled = self.room is None
        search_input = self.query_one(Input)
        search_input.focus()
        if self.words.strip():
            search_input.select_all()
            self.search()

    # -- searching ----------------------------------------------------------------

    @property
    def scope(self) -> str | None:
        """The room to search, or None for all rooms."""
        return None if self.all_rooms else self.room

    def search(self) -> None:
        """Search for what is typed, in the chosen scope."""
        typed = self.query_one(Input).value.strip()
        query = parse_query(typed)
        if query.empty:
            self._status(HINT)
            return
        self.searched = (typed, self.scope)
        self.answer = None
        self.results = []  # Enter must not open a result of the search before
        self.query_one(OptionList).clear_options()
        self._status("searching…")
        self._run(query, self.scope)

    @work(exclusive=True, group="search")
    async def _run(self, query: TypedQuery, scope: str | None) -> None:
        answer = await self.finder(query, scope)
        if not self.is_attached:
            return
        self.answer = answer
        self.results = answer.results
        self._fill(query)
        note = answer.note
        if not answer.results and scope is not None:
            note += " — tab searches all rooms"
        self._status(note, warn=not answer.on_server)

    def _status(self, text: str, warn: bool = False) -> None:
        status = self.query_one("#search-status", Static)
        status.update(Text(text))
        status.set_class(warn, "-fallback")

    def _fill(self, query: TypedQuery, highlighted: int = 0) -> None:
        options = self.query_one(OptionList)
        width = options.scrollable_content_region.width or self.app.size.width - 8
        options.clear_options()
        options.add_options(
            Option(self._row(result, query, width), id=str(i))
            for i, result in enumerate(self.results)
        )
        if options.option_count:
            options.highlighted = min(highlighted, options.option_count - 1)

    def _style(self, name: str) -> Style:
        # Without a background of its own, so that the highlighted row's shows through.
        full = self.get_component_rich_style(f"search--{name}")
        return Style(color=full.color, bold=full.bold, underline=full.underline)

    def _row(self, result: SearchResult, query: TypedQuery, width: int) -> Text:
        """One result: room, time, sender, then the text with the found words marked."""
        room_width, time_format, nick_width = WIDE if width >= NARROW else NARROW_COLUMNS
        row = Text(no_wrap=True, overflow="ellipsis")
        room = fit_nick(result.room, room_width)
        row.append(room.ljust(room_width) + " ", self._style("room"))
        when = result.time.astimezone(self.tz).strftime(time_format)
        row.append(when + " ", self._style("time"))
        nick = fit_nick(("* " if result.action else "") + result.nick, nick_width)
        row.append(nick.rjust(nick_width) + " ", Style(color=nick_color(result.nick)))
        text = strip_formatting(result.text)
        spans = match_spans(text, query.words) or []
        space = max(8, width - row.cell_len)
        shown, offset = snippet(text, spans, space)
        body = Text(shown)
        match_style = self._style("match")
        for start, end in spans:
            body.stylize(match_style, max(0, start - offset), max(0, end - offset))
        body.truncate(space, overflow="ellipsis")
        return row + body

    # -- keys and clicks ----------------------------------------------------------

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        typed = event.value.strip()
        options = self.query_one(OptionList)
        if self.searched == (typed, self.scope) and options.highlighted is not None:
            self.dismiss(self.results[options.highlighted])
        elif self.searched != (typed, self.scope):
            self.search()

    @on(OptionList.OptionSelected)
    def _clicked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.results[event.option_index])

    @on(RadioSet.Changed)
    def _scope_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        self.all_rooms = event.pressed.id == "scope-all" or self.room is None
        if self.searched is not None:
            self.search()

    def action_toggle_scope(self) -> None:
        if self.room is None:
            return
        other = "#scope-room" if self.scope is None else "#scope-all"
        self.query_one(other, RadioButton).value = True

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            current = options.highlighted or 0
            options.highlighted = min(max(0, current + step), options.option_count - 1)

    def action_close(self) -> None:
        self.dismiss(None)

    def on_resize(self, event: events.Resize) -> None:
        if self.searched is not None and self.results:  # the rows fit the new width
            where = self.query_one(OptionList).highlighted or 0
            self._fill(parse_query(self.searched[0]), where)
