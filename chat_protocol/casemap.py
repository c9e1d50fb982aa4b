"""Casefolding and name validation under ``CASEMAPPING=ascii``."""

from __future__ import annotations

import re

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

CHANNEL_PREFIXES = "#&"
NICK_FORBIDDEN_START = "#&:$+@%~!0123456789-"
_NICK_RE = re.compile(r"^[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}\-]*$")


def casefold(name: str) -> str:
    """Fold a nick or channel name: only A-Z map to a-z (``CASEMAPPING=ascii``)."""
    return name.translate(_ASCII_LOWER)


def is_channel(name: str) -> bool:
    """True when ``name`` names a channel (room) rather than a nick."""
    return bool(name) and name[0] in CHANNEL_PREFIXES


def valid_nick(nick: str, max_len: int = 30) -> bool:
    """True for a nick we accept: letters, digits and ``[]\\`_^{|}-``, not digit-first."""
    return 0 < len(nick) <= max_len and _NICK_RE.match(nick) is not None


def valid_channel(name: str, max_len: int = 64) -> bool:
    """True for a channel name: a prefix, then no space, comma, BELL, or control char."""
    if not (1 < len(name) <= max_len) or name[0] not in CHANNEL_PREFIXES:
        return False
    return not any(c in " ,\x07:" or ord(c) < 32 for c in name)
