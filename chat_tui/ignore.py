"""Ignore list: masks such as ``bob`` or ``bob!*@*.example.org`` whose lines are hidden.

A bare nick means ``nick!*@*``; ``*`` and ``?`` are wildcards, matched against the
sender's ``nick!user@host`` with IRC case folding. No Textual, no I/O.
"""

from __future__ import annotations

import re

from chat_protocol import casefold


def normal_mask(text: str) -> str:
    """``bob`` → ``bob!*@*``; ``bob!x`` → ``bob!x@*``; a full mask stays as it is."""
    mask = text.strip()
    if "!" not in mask and "@" not in mask:
        return f"{mask}!*@*"
    if "!" not in mask:
        return f"*!{mask}"
    if "@" not in mask:
        return f"{mask}@*"
    return mask


def valid_mask(text: str) -> bool:
    """Whether ``text`` can be a mask: one word, no commas, not only wildcards."""
    mask = text.strip()
    return bool(mask) and not any(c in mask for c in " ,\x00\r\n") and mask.strip("*?!@") != ""


def _pattern(mask: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in casefold(mask))
    return re.compile("".join(parts), re.DOTALL)


class IgnoreList:
    """The masks in force, in the order they were added."""

    def __init__(self, masks: list[str] | None = None) -> None:
        self._masks: dict[str, re.Pattern[str]] = {}
        for mask in masks or []:
            self.add(mask)

    @property
    def masks(self) -> list[str]:
        return list(self._masks)

    def add(self, text: str) -> str | None:
        """Add a mask; returns it normalised, or None when it was there already."""
        mask = normal_mask(text)
        if casefold(mask) in map(casefold, self._masks):
            return None
        self._masks[mask] = _pattern(mask)
        return mask

    def remove(self, text: str) -> str | None:
        """Remove a mask (given as added, or as a bare nick); returns it, or None."""
        wanted = casefold(normal_mask(text))
        for mask in self._masks:
            if casefold(mask) == wanted:
                del self._masks[mask]
                return mask
        return None

    def matches(self, source: str) -> bool:
        """Whether ``source`` (``nick!user@host``, or a bare nick) is ignored."""
        if not self._masks:
            return False
        full = casefold(normal_mask(source) if "!" not in source else source)
        return any(pattern.fullmatch(full) for pattern in self._masks.values())

    def __len__(self) -> int:
        return len(self._masks)
