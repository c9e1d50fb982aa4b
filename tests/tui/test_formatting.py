"""IRC formatting codes, URLs, nick colours and mention detection."""

from __future__ import annotations

import pytest

from chat_tui.formatting import (
    NICK_COLORS,
    irc_to_text,
    mentions,
    nick_color,
    strip_formatting,
)


def spans(raw: str) -> list[tuple[str, str]]:
    text = irc_to_text(raw)
    return [(text.plain[s.start : s.end], str(s.style)) for s in text.spans]


def test_plain_text_passes_through() -> None:
    assert irc_to_text("hello world").plain == "hello world"


@pytest.mark.parametrize(
    ("raw", "word", "style_part"),
    [
        ("\x02bold\x02 rest", "bold", "bold"),
        ("\x1ditalic\x1d", "italic", "italic"),
        ("\x1funder\x1f", "under", "underline"),
        ("\x1estruck\x1e", "struck", "strike"),
        ("\x0304red\x03", "red", "#ff0000"),
        ("\x0304,02redonblue", "redonblue", "on #00007f"),
        ("\x04ff8800hex\x04", "hex", "#ff8800"),
    ],
)
def test_codes_become_styles(raw: str, word: str, style_part: str) -> None:
    found = [style for chunk, style in spans(raw) if chunk == word]
    assert found and style_part in found[0]
    assert irc_to_text(raw).plain.strip().startswith(word)


def test_reset_ends_all_styles() -> None:
    text = irc_to_text("\x02\x0304a\x0fb")
    assert text.plain == "ab"
    b_styles = [str(s.style) for s in text.spans if text.plain[s.start : s.end] == "b"]
    assert all(style in ("", "none") for style in b_styles)


def test_colour_code_keeps_following_digits_when_two_given() -> None:
    # "\x03" + "04", then "22" is text: at most two digits belong to the colour.
    assert irc_to_text("\x030422 apples").plain == "22 apples"


def test_control_characters_are_dropped_not_shown() -> None:
    assert irc_to_text("a\x07b\x00c").plain == "abc"


def test_urls_are_left_intact_and_linked() -> None:
    raw = "see https://example.org/a_b?q=1&x=(2). ok"
    text = irc_to_text(raw)
    assert text.plain == raw
    links = [s for s in text.spans if getattr(s.style, "link", None)]
    assert [text.plain[s.start : s.end] for s in links] == ["https://example.org/a_b?q=1&x=(2)"]


def test_formatting_inside_url_does_not_break_it() -> None:
    text = irc_to_text("\x02https://example.org/x\x02.")
    assert text.plain == "https://example.org/x."


def test_strip_formatting() -> None:
    assert strip_formatting("\x02hi\x02 \x0312,01there\x0f") == "hi there"


def test_nick_colour_is_stable_and_casefolded() -> None:
    assert nick_color("Alice") == nick_color("alice") == nick_color("ALICE")
    assert nick_color("alice") in NICK_COLORS
    assert len({nick_color(f"user{i}") for i in range(50)}) > 6


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alice: hi", True),
        ("hi Alice!", True),
        ("ping \x02alice\x02", True),
        ("malice aforethought", False),
        ("alice_ is someone else", False),
        ("nobody here", False),
    ],
)
def test_mentions(text: str, expected: bool) -> None:
    assert mentions(text, "alice") is expected
