"""Turn IRC text into styled Rich text: formatting codes, URLs, nick colours.

IRC carries its own inline formatting (mIRC codes). We render bold, italic, underline,
strikethrough, reverse and colours, strip what we cannot show, and leave URLs exactly
as sent (with a terminal hyperlink) so that copying or clicking them works.
"""

from __future__ import annotations

import colorsys
import re

from rich.style import Style
from rich.text import Text

from chat_protocol import casefold

BOLD = "\x02"
COLOR = "\x03"
HEX_COLOR = "\x04"
RESET = "\x0f"
MONOSPACE = "\x11"
REVERSE = "\x16"
ITALIC = "\x1d"
STRIKE = "\x1e"
UNDERLINE = "\x1f"

# The 16 standard mIRC colours; 16-98 are the extended palette, approximated below.
MIRC_COLORS = [
    "#ffffff", "#000000", "#00007f", "#009300", "#ff0000", "#7f0000", "#9c009c", "#fc7f00",
    "#ffff00", "#00fc00", "#009393", "#00ffff", "#0000fc", "#ff00ff", "#7f7f7f", "#d2d2d2",
]  # fmt: skip


def _nick_palette(hues: int = 16, lightness: tuple[float, ...] = (0.62, 0.75)) -> list[str]:
    """Evenly spread hues at two lightnesses, saturated enough to tell apart and light
    enough to read on a dark background. 32 colours: with the old 12, two of any five
    nicks shared one more often than not (alice and carol did)."""
    colours = []
    for light in lightness:
        for i in range(hues):
            r, g, b = colorsys.hls_to_rgb(i / hues, light, 0.75)
            colours.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return colours


NICK_COLORS = _nick_palette()

_CODES = re.compile(
    r"\x03(\d{1,2})?(?:,(\d{1,2}))?|\x04([0-9a-fA-F]{6})?(?:,([0-9a-fA-F]{6}))?|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
URL_RE = re.compile(
    r"""\b(?:https?|ftp|irc|ircs)://[^\s<>"'\x00-\x1f]+|\bwww\.[^\s<>"'\x00-\x1f]+"""
)
_URL_TRAILING = ".,;:!?)]}'\""


def nick_color(nick: str) -> str:
    """A stable colour for ``nick``: the same nick looks the same everywhere, every run."""
    digest = 0x811C9DC5  # FNV-1a: spreads short, similar names better than crc32 here
    for byte in casefold(nick).encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return NICK_COLORS[digest % len(NICK_COLORS)]


def fit_nick(nick: str, width: int) -> str:
    """``nick`` in at most ``width`` cells; a longer one loses its middle, not its end,
    so ``Averyverylongname1`` and ``Averyverylongname2`` still look different."""
    if len(nick) <= width:
        return nick
    if width <= 1:
        return nick[:width]
    head = width // 2
    tail = width - 1 - head
    return nick[:head] + "…" + (nick[-tail:] if tail else "")


def _mirc(index: str | None) -> str | None:
    if index is None:
        return None
    n = int(index)
    if n < 16:
        return MIRC_COLORS[n]
    if n == 99:
        return None  # "default colour"
    if n < 99:
        # Extended palette 16..98: spread over hues, good enough to keep intent.
        return f"color({16 + (n - 16) * 239 // 82})"
    return None


def strip_formatting(text: str) -> str:
    """The plain text a user reads, without formatting or control characters."""
    return _CONTROL.sub("", _CODES.sub("", text))


def _trim_url(url: str) -> str:
    """Drop punctuation that ends a sentence rather than the URL (keeps balanced parens)."""
    while url and url[-1] in _URL_TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def irc_to_text(raw: str, base: Style | None = None) -> Text:
    """Render IRC formatting codes in ``raw`` as a Rich ``Text``; URLs become links."""
    text = Text()
    bold = italic = underline = strike = reverse = False
    fg: str | None = None
    bg: str | None = None
    pos = 0

    def flush(chunk: str) -> None:
        if not chunk:
            return
        chunk = _CONTROL.sub("", chunk.replace("\t", "    "))
        style = Style(
            bold=bold or None,
            italic=italic or None,
            underline=underline or None,
            strike=strike or None,
            reverse=reverse or None,
            color=fg,
            bgcolor=bg,
        )
        text.append(chunk, style)

    for match in _CODES.finditer(raw):
        flush(raw[pos : match.start()])
        pos = match.end()
        code = match.group(0)[0]
        if code == BOLD:
            bold = not bold
        elif code == ITALIC:
            italic = not italic
        elif code == UNDERLINE:
            underline = not underline
        elif code == STRIKE:
            strike = not strike
        elif code == REVERSE:
            reverse = not reverse
        elif code == RESET:
            bold = italic = underline = strike = reverse = False
            fg = bg = None
        elif code == COLOR:
            if match.group(1) is None:
                fg = bg = None
            else:
                fg = _mirc(match.group(1))
                if match.group(2) is not None:
                    bg = _mirc(match.group(2))
        elif code == HEX_COLOR:
            if match.group(3) is None:
                fg = bg = None
            else:
                fg = "#" + match.group(3).lower()
                if match.group(4) is not None:
                    bg = "#" + match.group(4).lower()
    flush(raw[pos:])
    if base:
        # A span rather than Text.style: it survives wrapping, and IRC colours still win.
        text.stylize_before(base)
    plain = text.plain
    for m in URL_RE.finditer(plain):
        url = _trim_url(m.group(0))
        href = url if "://" in url else "http://" + url
        text.stylize(Style(underline=True, link=href), m.start(), m.start() + len(url))
    return text


def mentions(text: str, nick: str) -> bool:
    """True when ``text`` names ``nick`` as a word (case-insensitively, IRC casemapping)."""
    if not nick:
        return False
    plain = casefold(strip_formatting(text))
    needle = casefold(nick)
    start = 0
    word = re.compile(r"[A-Za-z0-9\[\]\\`_^{|}\-]")
    while (i := plain.find(needle, start)) >= 0:
        end = i + len(needle)
        before_ok = i == 0 or not word.match(plain[i - 1])
        after_ok = end == len(plain) or not word.match(plain[end])
        if before_ok and after_ok:
            return True
        start = i + 1
    return False
