"""Tab completion of nicks, commands and room names, as a pure function of the text."""

from __future__ import annotations

from chat_protocol import casefold
from chat_tui.commands import completions as command_completions


def word_at(value: str, cursor: int) -> tuple[int, str]:
    """The start index and text of the word ending at ``cursor``."""
    start = value.rfind(" ", 0, cursor) + 1
    return start, value[start:cursor]


def candidates(value: str, cursor: int, nicks: list[str], rooms: list[str]) -> list[str]:
    """Replacements for the word before the cursor, best first.

    ``/jo`` at the start completes to ``/join ``; ``#ge`` to a room; anything else to a
    nick, which at the start of the line gets ``: `` (the IRC way to address someone).
    """
    start, word = word_at(value, cursor)
    if not word:
        return []
    if start == 0 and word.startswith("/"):
        return [name + " " for name in command_completions(word)]
    folded = casefold(word)
    if word.startswith("#"):
        return [r + " " for r in rooms if casefold(r).startswith(folded)]
    suffix = ": " if start == 0 else " "
    return [nick + suffix for nick in nicks if casefold(nick).startswith(folded)]
