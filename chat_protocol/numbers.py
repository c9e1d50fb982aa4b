"""Numbers in IRC parameters: plain ASCII digits only.

``str.isdigit()`` is true for ``"²"``, ``"٣"`` (Arabic-Indic) and other Unicode digits,
and ``int()`` accepts some of those, rejects others (``int("²")`` raises), and also takes
``" 7"``, ``"+7"``, ``"7_0"`` and ``"-7"``. A count a client sends (a CHATHISTORY limit,
``LIST >N``, ``MODE +l N``, ``CAP LS 302``) must be none of those: one helper decides it
for every handler, so none of them can be made to raise on odd digits or to convert a
4,000-digit string (``int()`` of a long string is quadratic; Python refuses past 4,300
digits with a ValueError).
"""

from __future__ import annotations

MAX_DIGITS = 9  # up to 999,999,999: fits every count we take, and any C int


def ascii_int(text: str, *, max_digits: int = MAX_DIGITS) -> int | None:
    """``text`` as a non-negative int when it is 1..max_digits ASCII digits, else None.

    Leading zeros are allowed (``"007"`` is 7); signs, spaces, underscores and non-ASCII
    digits are not.
    """
    if not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)
