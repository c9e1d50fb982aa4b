"""UTF-8-safe splitting: examples, the 512-byte budget, and properties over any text."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat_protocol.message import Message
from chat_protocol.split import (
    DEFAULT_SOURCE_BUDGET,
    LINE_LIMIT,
    split_message,
    split_utf8,
    text_budget,
)


@pytest.mark.parametrize(
    ("text", "max_bytes", "chunks"),
    [
        ("hello", 10, ["hello"]),
        ("", 10, []),
        ("hello world", 5, ["hello", "world"]),
        ("hello world again", 11, ["hello world", "again"]),
        ("abcdefghij", 4, ["abcd", "efgh", "ij"]),  # no space: hard cut
        ("one\ntwo\r\nthree\rfour", 10, ["one", "two", "three", "four"]),
        ("one\n\n\ntwo", 10, ["one", "two"]),  # empty lines are dropped
        ("héllo wörld", 6, ["héllo", "wörld"]),  # é and ö are 2 bytes
        ("€€€€", 7, ["€€", "€€"]),  # never cut inside a 3-byte character
        ("😀😀😀", 5, ["😀", "😀", "😀"]),
        ("abcd  efgh", 4, ["abcd", "efgh"]),  # runs of spaces at a break vanish
        ("  abcdefgh", 4, ["abcd", "efgh"]),
        ("abcd   efgh xy", 5, ["abcd", "efgh", "xy"]),
        ("trailing   ", 8, ["trailing"]),
        ("  indented", 20, ["  indented"]),  # a line that fits is left alone
    ],
)
def test_split_utf8_examples(text: str, max_bytes: int, chunks: list[str]) -> None:
    assert split_utf8(text, max_bytes) == chunks


@pytest.mark.parametrize("max_bytes", [0, 1, 3])
def test_split_utf8_needs_room_for_a_character(max_bytes: int) -> None:
    with pytest.raises(ValueError):
        split_utf8("text", max_bytes)


def test_text_budget_accounts_for_every_byte() -> None:
    source = "nick!user@host.example"
    budget = text_budget("PRIVMSG", "#room", source)
    text = "a " + "x" * (budget - 2)  # has a space, so it goes out as a ":trailing"
    line = Message("PRIVMSG", ["#room", text], source).to_bytes()
    assert len(line) == LINE_LIMIT


def test_text_budget_default_source_is_worst_case() -> None:
    worst = "n" * 30 + "!" + "u" * 10 + "@" + "h" * 63
    assert len(worst) + 1 == DEFAULT_SOURCE_BUDGET
    assert text_budget("PRIVMSG", "#r") == text_budget("PRIVMSG", "#r", worst)


@pytest.mark.parametrize("target", ["#room", "#ünïcode-room", "somebody"])
def test_split_message_lines_fit_the_limit(target: str) -> None:
    worst = "n" * 30 + "!" + "u" * 10 + "@" + "h" * 63
    text = "lorem ipsum dolor 😀 " * 200
    chunks = split_message("PRIVMSG", target, text)
    assert len(chunks) > 1
    for chunk in chunks:
        line = Message("PRIVMSG", [target, chunk], worst).to_bytes()
        assert len(line) <= LINE_LIMIT


# A loaded CI machine must not turn slow example generation into a failure.
_relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- properties ----------------------------------------------------------------------------

# Runs of spaces and multi-byte characters are where splitting goes wrong: ask for them.
_one_line = st.text(
    st.sampled_from(["a", "b", "é", "€", "😀", " ", " ", " "])
    | st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
    max_size=300,
)
_any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
_max_bytes = st.integers(min_value=4, max_value=64)


@_relaxed
@given(_any_text, _max_bytes)
def test_chunks_fit_and_are_valid_utf8(text: str, max_bytes: int) -> None:
    for chunk in split_utf8(text, max_bytes):
        data = chunk.encode("utf-8")
        assert 0 < len(data) <= max_bytes
        assert data.decode("utf-8") == chunk
        assert "\r" not in chunk and "\n" not in chunk


@_relaxed
@given(_one_line, _max_bytes)
def test_no_character_is_lost_or_reordered(text: str, max_bytes: int) -> None:
    chunks = split_utf8(text, max_bytes)
    assert "".join(chunks).replace(" ", "") == text.replace(" ", "")


@_relaxed
@given(_one_line, _max_bytes)
def test_words_that_fit_are_never_cut(text: str, max_bytes: int) -> None:
    """Words (split on spaces, as IRC text is) come back whole unless they are too long."""
    words = [w for w in text.split(" ") if w]
    got = [w for chunk in split_utf8(text, max_bytes) for w in chunk.split(" ") if w]
    pos = 0
    for word in words:
        if len(word.encode()) <= max_bytes:
            assert got[pos] == word
            pos += 1
        else:  # a too-long word arrives in pieces that join back to it
            joined = ""
            while joined != word:
                joined += got[pos]
                pos += 1
                assert word.startswith(joined)
    assert pos == len(got)


@_relaxed
@given(_one_line, _max_bytes)
def test_no_blank_chunks_unless_the_text_is_blank(text: str, max_bytes: int) -> None:
    chunks = split_utf8(text, max_bytes)
    if text.strip(" "):
        assert all(chunk.strip(" ") for chunk in chunks)
