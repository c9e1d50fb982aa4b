"""IRC glob masks (``*`` any run, ``?`` one character) for WHO and channel bans.

Not ``fnmatch``: it keeps every pattern it ever compiled in an LRU of 32,768 entries,
which clients sending distinct WHO masks can grow to ~90 MB, and it reads ``[...]`` as
a character class where IRC means the nick characters ``[`` and ``]``. Here a mask is
compiled once into a regex (cached, 256 entries) whose every ``*`` but the last is an
atomic group, so a mask like ``*a*a*a*a*b`` costs linear time per name, not a backtracking
search, and matching follows ``CASEMAPPING=ascii`` (only A-Z fold).
"""

from __future__ import annotations

import functools
import re

MAX_MASK_LEN = 200  # nick (30) ! user (10) @ host (63) is 105; room for wildcards


@functools.lru_cache(maxsize=256)
def compile_mask(mask: str) -> re.Pattern[str]:
    """A regex that matches (with ``.match``) exactly the strings ``mask`` describes."""
    parts = [_literal(part) for part in mask.split("*")]
    if len(parts) == 1:
        body = parts[0]
    else:
        # The earliest place for each middle part is always a right choice, so commit
        # to it; only the last ``*`` may move (to put the last part at the end).
        middle = "".join(f"(?>.*?{part})" for part in parts[1:-1] if part)
        body = f"{parts[0]}{middle}.*{parts[-1]}"
    return re.compile(body + r"\Z", re.IGNORECASE | re.ASCII | re.DOTALL)


def _literal(part: str) -> str:
    return ".".join(re.escape(piece) for piece in part.split("?"))


def has_wildcards(mask: str) -> bool:
    return "*" in mask or "?" in mask


def matches(mask: str, text: str) -> bool:
    """Whether ``text`` (a nick, a ``nick!user@host``, a room name) fits ``mask``."""
    return compile_mask(mask).match(text) is not None


def normalize_ban_mask(mask: str) -> str:
    """The full ``nick!user@host`` form of a ban mask; missing parts are ``*``.

    ``bob`` → ``bob!*@*``, ``~bob@host`` → ``*!~bob@host``, ``bob!~b`` → ``bob!~b@*``,
    and a bare host (it has a dot or colon, which no nick has) → ``*!*@host``.
    """
    if "!" in mask:
        nick, _, rest = mask.partition("!")
        user, _, host = rest.partition("@")
    elif "@" in mask:
        nick = "*"
        user, _, host = mask.partition("@")
    elif "." in mask or ":" in mask:
        nick, user, host = "*", "*", mask
    else:
        nick, user, host = mask, "*", "*"
    return f"{nick or '*'}!{user or '*'}@{host or '*'}"
