"""Search (Ctrl+F, /search): what the user typed, what was found, and where from.

The server searches its whole history when it offers ``soju.im/search``. Without it
(a plain server, offline, or when its search fails) only the lines loaded in this
client are searched, and the answer says so. Words match as the server's full-text
index matches them: every word, as whole words, in any case. No Textual here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from chat_protocol import Message, casefold, is_channel
from chat_protocol.client_search import SearchFailed, SearchQuery
from chat_protocol.client_types import NotConnected
from chat_tui.formatting import strip_formatting
from chat_tui.model import ChatLine, LineKind, Room, parse_server_time
from chat_tui.state import ChatState

if TYPE_CHECKING:
    from chat_tui.session import ChatSession

SEARCH_LIMIT = 100  # results asked of the server (it sends the newest this many)
_TOKEN = re.compile(r"[^\W_]+")  # a word as the server's index sees it (FTS5 unicode61)
_FOUND_KINDS = (LineKind.MESSAGE, LineKind.ACTION, LineKind.NOTICE)


@dataclass(frozen=True, slots=True)
class TypedQuery:
    """The search box's text: words to find, and ``from:nick`` for one sender's lines."""

    words: tuple[str, ...]
    sender: str | None = None

    @property
    def empty(self) -> bool:
        return not self.words and not self.sender

    @property
    def text(self) -> str:
        return " ".join(self.words)


def parse_query(typed: str) -> TypedQuery:
    """``apple pie from:bob`` → words ("apple", "pie"), sender "bob" (the last from: wins)."""
    words: list[str] = []
    sender = None
    for word in typed.split():
        if word.lower().startswith("from:") and len(word) > len("from:"):
            sender = word[len("from:") :].lstrip("@")
        else:
            words.append(word)
    return TypedQuery(tuple(words), sender or None)


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One message found; ``msgid`` (server) or ``seq`` (a loaded line) finds it again."""

    room: str  # the room or the other person of a direct conversation
    time: datetime
    nick: str
    text: str
    msgid: str | None = None
    seq: int | None = None
    action: bool = False


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    """Results newest first, whether the server searched, and a line saying what was done."""

    results: list[SearchResult]
    on_server: bool
    note: str


def _fold(word: str) -> str:
    """A token as the index compares it: case and accents do not count."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def match_spans(text: str, words: tuple[str, ...] | list[str]) -> list[tuple[int, int]] | None:
    """Where each word occurs in ``text`` as whole words (start, end), or None when one
    of them does not occur. A word of several tokens ("e-mail") must occur as a phrase;
    a word of punctuation only matches anything, as on the server."""
    found = [(m.start(), m.end(), _fold(m.group())) for m in _TOKEN.finditer(text)]
    folded = [f for _, _, f in found]
    spans: list[tuple[int, int]] = []
    for word in words:
        needle = [_fold(t) for t in _TOKEN.findall(word)]
        if not needle:
            continue
        hits = [
            (found[i][0], found[i + len(needle) - 1][1])
            for i in range(len(folded) - len(needle) + 1)
            if folded[i : i + len(needle)] == needle
        ]
        if not hits:
            return None
        spans += hits
    return sorted(spans)


def _line_matches(line: ChatLine, query: TypedQuery) -> bool:
    if line.kind not in _FOUND_KINDS:
        return False
    if query.sender and casefold(line.nick) != casefold(query.sender):
        return False
    return match_spans(strip_formatting(line.text), query.words) is not None


def search_loaded(
    state: ChatState, query: TypedQuery, room: str | None = None, limit: int = SEARCH_LIMIT
) -> list[SearchResult]:
    """The newest ``limit`` loaded lines matching ``query`` (newest first), in the room
    called ``room`` or (None) in every room and conversation."""
    if query.empty:
        return []
    rooms: list[Room]
    if room is None:
        rooms = [r for r in state.rooms.values() if not r.is_server]
    else:
        one = state.room(room)
        rooms = [one] if one is not None else []
    found = [(line, r) for r in rooms for line in r.lines if _line_matches(line, query)]
    found.sort(key=lambda pair: (pair[0].time, pair[0].seq), reverse=True)
    return [_result(r, line) for line, r in found[:limit]]


def _result(room: Room, line: ChatLine) -> SearchResult:
    action = line.kind == LineKind.ACTION
    return SearchResult(room.name, line.time, line.nick, line.text, line.msgid, line.seq, action)


def loaded_count(state: ChatState, room: str | None) -> int:
    """How many lines a search of the loaded lines looks through."""
    rooms = state.rooms.values() if room is None else filter(None, [state.room(room)])
    return sum(len(r.lines) for r in rooms if not r.is_server)


def result_from(msg: Message, state: ChatState) -> SearchResult | None:
    """A result from one message of the server's answer; None for what is not chat."""
    if msg.command not in ("PRIVMSG", "NOTICE") or len(msg.params) < 2:
        return None
    target, sender = msg.param(0).lstrip("~&@%+"), msg.nick or ""
    # A direct message belongs to the conversation with the other person.
    room = target if is_channel(target) or state.is_me(sender) else sender
    text, action = msg.param(1), False
    if text.startswith("\x01ACTION "):
        text, action = text[len("\x01ACTION ") :].rstrip("\x01"), True
    existing = state.room(room)
    return SearchResult(
        existing.name if existing is not None else room,
        parse_server_time(msg.tags.get("time")),
        sender,
        text,
        msg.tags.get("msgid"),
        action=action,
    )


async def find(
    session: ChatSession | None, state: ChatState, query: TypedQuery, room: str | None
) -> SearchAnswer:
    """Search the server's history when it can; otherwise the lines loaded here."""
    if session is not None and session.connected and session.can_search:
        ask = SearchQuery(query.text, target=room, sender=query.sender, limit=SEARCH_LIMIT)
        try:
            messages = await session.search(ask)
        except (SearchFailed, NotConnected, TimeoutError, OSError, ValueError) as exc:
            why = f"the server's search failed ({str(exc) or type(exc).__name__})"
        else:
            results = [r for m in reversed(messages) if (r := result_from(m, state))]
            note = f"{_count(results)} found on the server"
            if len(results) > 1:
                note += ", newest first"
            if len(messages) >= SEARCH_LIMIT:
                note = f"the newest {note} — there may be more: add words to narrow it"
            return SearchAnswer(results, True, note)
    elif session is None or not session.connected:
        why = "offline"
    else:
        why = "this server cannot search its history"
    results = search_loaded(state, query, room)
    seen = loaded_count(state, room)
    note = f"{why} — {_count(results)} found in the {seen} lines loaded here"
    return SearchAnswer(results, False, note)


def _count(results: list[SearchResult]) -> str:
    if not results:
        return "nothing"
    return "1 message" if len(results) == 1 else f"{len(results)} messages"
