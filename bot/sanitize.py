"""Make model output safe to put in a PRIVMSG: no control characters, no line injection.

A model can produce anything, including ``\\r\\nPRIVMSG #other :...`` or CTCP
(``\\x01``) sequences. Line breaks are kept only as *our* split points (``\\n``); every
other control character, IRC formatting code, and bidi override is removed, so the
text can neither end a protocol line early nor disguise itself on screen.
"""

from __future__ import annotations

import re

# mIRC colour: \x03 then up to two digits, optionally ",NN"; hex colour: \x04 + RRGGBB.
_COLOUR = re.compile(r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?")
# Breaks a model (or a user) may use for a new line: CR LF, CR, VT, FF, NEL, LS, PS.
_BREAKS = re.compile(r"\r\n|[\r\v\f\x85\u2028\u2029]")
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_DROP: dict[int, str | None] = {c: None for c in range(0x20) if c not in (0x09, 0x0A)}
_DROP.update({c: None for c in range(0x7F, 0xA0)})
_DROP.update({ord(c): None for c in _BIDI})
# Lone surrogates (a JSON "\ud800" escape decodes to one) cannot be encoded as UTF-8 at all.
_DROP.update({c: None for c in range(0xD800, 0xE000)})
_DROP[0x09] = " "


def clean_text(text: str) -> str:
    """Remove control characters and formatting; keep ``\\n`` as the only line break."""
    text = _COLOUR.sub("", text)
    text = _BREAKS.sub("\n", text)
    return text.translate(_DROP)


def clean_line(text: str) -> str:
    """Like clean_text, for one line: line breaks become spaces, runs of space collapse."""
    return " ".join(clean_text(text).split())
