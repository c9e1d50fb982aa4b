"""Markdown from the model, rendered as IRC formatting, one line at a time.

Models write markdown whatever the prompt says. Passed through literally, fences and
``**stars**`` cost lines and look like noise; stripped, code loses its shape. So each
complete line is rendered: ``**bold**`` and headings become bold (``\\x02``),
``*italic*`` italic (``\\x1d``), ```` `code` ```` and fenced blocks monospace
(``\\x11``, indentation kept), ``- item`` a bullet, ``[text](url)`` ``text <url>``.
Fence lines themselves are dropped, so they no longer eat the line budget.

Input is text the sanitiser already cleaned, so the only formatting codes in the output
are the ones added here. ``split_formatted`` cuts a rendered line to the byte budget and
reopens the styles still open at the cut, because IRC clients reset them at each line.
"""

from __future__ import annotations

import re

from chat_protocol.split import cut_utf8

BOLD = "\x02"
ITALIC = "\x1d"
MONO = "\x11"
STRIKE = "\x1e"
RESET = "\x0f"
_TOGGLES = (BOLD, ITALIC, MONO, STRIKE)

_FENCE = re.compile(r"^\s*(```|~~~)")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_QUOTE = re.compile(r"^\s*>\s?(.*)$")
_CODE_SPAN = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)")
_EMPHASIS = re.compile(
    r"(?<![\w*])\*(?=[^\s*])([^*]+?)(?<=[^\s*])\*(?![\w*])|(?<!\w)_(?=[^\s_])([^_]+?)(?<=[^\s_])_(?!\w)"
)
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")


def _link(match: re.Match[str]) -> str:
    text, url = match.group(1), match.group(2)
    return url if text == url else f"{text} <{url}>"


def _styles(text: str) -> str:
    """Bold, italic, strike-through and links in text that holds no code span."""
    text = _LINK.sub(_link, text)
    text = _STRONG.sub(lambda m: BOLD + (m.group(1) or m.group(2)) + BOLD, text)
    text = _EMPHASIS.sub(lambda m: ITALIC + (m.group(1) or m.group(2)) + ITALIC, text)
    return _STRIKE.sub(lambda m: STRIKE + m.group(1) + STRIKE, text)


def render_inline(text: str) -> str:
    """Inline markdown of one line as IRC formatting; code spans are left as written."""
    out: list[str] = []
    last = 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_styles(text[last : match.start()]))
        out.append(MONO + match.group(1) + MONO)
        last = match.end()
    out.append(_styles(text[last:]))
    return "".join(out)


class MarkdownRenderer:
    """Renders the lines of one answer; remembers whether a code block is open."""

    def __init__(self) -> None:
        self.in_code = False

    def line(self, text: str, *, continued: bool = False) -> str | None:
        """The IRC form of one line, or None when it shows nothing (fence, rule, blank).

        ``continued``: ``text`` goes on a line already started (a long paragraph cut
        while streaming), so it is not read as a heading or a list item.
        """
        if self.in_code:
            if not continued and _FENCE.match(text):
                self.in_code = False
                return None
            code = text.rstrip()
            return MONO + code if code.strip() else None
        if not continued:
            if _FENCE.match(text):
                self.in_code = True
                return None
            if _RULE.match(text):
                return None
        if not text.strip():
            return None
        if continued:
            return render_inline(text.strip())
        heading = _HEADING.match(text)
        if heading:
            return BOLD + render_inline(heading.group(1)).replace(BOLD, "") + BOLD
        bullet = _BULLET.match(text)
        if bullet:
            return bullet.group(1) + "• " + render_inline(bullet.group(2).strip())
        quote = _QUOTE.match(text)
        if quote:
            return "> " + render_inline(quote.group(1).strip())
        return render_inline(text.strip())


def open_styles(text: str) -> str:
    """The formatting codes still switched on at the end of ``text``, in a fixed order."""
    on: set[str] = set()
    for ch in text:
        if ch == RESET:
            on.clear()
        elif ch in _TOGGLES:
            on ^= {ch}
    return "".join(code for code in _TOGGLES if code in on)


def split_formatted(text: str, budget: int) -> list[str]:
    """Cut ``text`` into lines of at most ``budget`` UTF-8 bytes, styles carried over.

    A cut goes at the last space when that keeps at least half a line, else between
    characters (never inside one): an answer of one long word must not leave its
    ``alice:`` prefix alone on a line.
    """
    lines: list[str] = []
    carry = ""
    rest = text
    while rest:
        data = (carry + rest).encode("utf-8")
        if len(data) <= budget:
            lines.append(data.decode("utf-8"))
            break
        cut = cut_utf8(data, budget)
        space = data.rfind(b" ", 0, cut + 1)
        if space > budget // 2:
            head, tail = data[:space], data[space + 1 :]
        else:
            head, tail = data[:cut], data[cut:]
        head_text = head.decode("utf-8").rstrip(" ")
        if head_text.strip(" " + "".join(_TOGGLES)):
            lines.append(head_text)
        carry = open_styles(head_text)
        rest = tail.decode("utf-8").lstrip(" ")
    return lines
