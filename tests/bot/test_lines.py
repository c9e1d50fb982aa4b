"""Sanitising and splitting model output into IRC lines: no injection, UTF-8 safe, capped."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.lines import CUT_NOTE, LineAssembler, LineCap, page, with_cut_note
from bot.sanitize import clean_line, clean_text
from chat_protocol import Message


def test_clean_text_removes_injection_and_formatting() -> None:
    raw = (
        "ok\r\nPRIVMSG #x :evil\x00 \x01ACTION x\x01 \x02b\x02 \x0304,12c\x03 \x1fu\x0f\x7f\u202eZ"
    )
    cleaned = clean_text(raw)
    assert cleaned == "ok\nPRIVMSG #x :evil ACTION x b c uZ"
    assert "\r" not in cleaned and "\x01" not in cleaned


@pytest.mark.parametrize("brk", ["\r\n", "\r", "\n", "\u2028", "\u2029", "\x85", "\v", "\f"])
def test_every_line_break_becomes_newline(brk: str) -> None:
    assert clean_text(f"a{brk}b") == "a\nb"


def test_clean_line_collapses_to_one_line() -> None:
    assert clean_line("  a\r\n\tb   c\n") == "a b c"


def feed_all(asm: LineAssembler, pieces: list[str]) -> list[str]:
    out: list[str] = []
    for p in pieces:
        out.extend(asm.feed(p))
    return out + asm.flush()


def test_assembler_emits_lines_at_newlines_as_they_complete() -> None:
    asm = LineAssembler(100)
    assert asm.feed("hello ") == []
    assert asm.feed("world\nsecond") == ["hello world"]
    assert asm.feed(" line\n\n\nthird") == ["second line"]
    assert asm.flush() == ["third"]


def test_assembler_cuts_long_text_on_word_boundaries() -> None:
    asm = LineAssembler(20)
    words = [f"w{i} " for i in range(30)]
    lines = feed_all(asm, words)
    assert all(len(line.encode()) <= 20 for line in lines)
    assert " ".join(lines).split() == [w.strip() for w in words]
    # every line but the last is cut at a space, never mid-word
    assert all(not line.endswith(" ") and not line.startswith(" ") for line in lines)


def test_assembler_is_utf8_safe_with_no_spaces() -> None:
    text = "ü€😀" * 50
    lines = feed_all(LineAssembler(16), list(text))
    assert "".join(lines) == text
    assert all(len(line.encode()) <= 16 for line in lines)


# Text without the characters markdown gives a meaning to, so none is rendered away.
_PLAIN = st.text(
    alphabet=st.characters(blacklist_characters="*_`#->[]()~+|"), min_size=0, max_size=40
)
_FORMATTING = "\x02\x1d\x11\x1e"


@given(st.lists(_PLAIN, max_size=30), st.integers(8, 60))
@example(["\x03", "0"], 8)  # a colour code split across two deltas
@example(["a\r", "\nb"], 8)
@example(["\ud800\r"], 8)  # a lone surrogate, as a JSON escape from the API can give
def test_assembler_never_exceeds_budget_or_leaks_controls(pieces: list[str], budget: int) -> None:
    lines = feed_all(LineAssembler(budget), pieces)
    for line in lines:
        assert line
        assert len(line.encode("utf-8")) <= budget
        assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in line)
        # every line can go on the wire as one PRIVMSG
        assert "\n" not in Message("PRIVMSG", ["#r", line]).to_str()
    # nothing but whitespace and control characters is lost
    assert "".join("".join(lines).split()) == "".join(clean_text("".join(pieces)).split())


@given(st.lists(st.text(min_size=0, max_size=40), max_size=30), st.integers(8, 60))
@example(["```\n", "    x = 1\n", "```"], 8)
@example(["**bold words that go on", " and on past the budget**"], 12)
def test_markdown_lines_fit_and_carry_only_our_formatting(pieces: list[str], budget: int) -> None:
    for line in feed_all(LineAssembler(budget, prefix="ab: "), pieces):
        assert line.strip(" " + _FORMATTING)
        assert len(line.encode("utf-8")) <= budget
        assert not any(
            (ord(c) < 32 and c not in _FORMATTING) or 0x7F <= ord(c) < 0xA0 for c in line
        )


def test_a_long_word_does_not_leave_the_prefix_alone() -> None:
    lines = feed_all(LineAssembler(40, prefix="dave: "), ["x" * 100])
    assert lines[0].startswith("dave: xxx") and 30 <= len(lines[0].encode()) <= 40
    assert "".join(lines).removeprefix("dave: ") == "x" * 100


def test_page_gives_the_next_lines_with_a_note_when_more_remain() -> None:
    lines = [f"l{i}" for i in range(5)]
    shown, rest = page(lines, 2, 100)
    assert shown == ["l0", "l1" + CUT_NOTE] and rest == ["l2", "l3", "l4"]
    assert page(rest, 3, 100) == (["l2", "l3", "l4"], [])


def test_cap_keeps_what_it_cut_for_more() -> None:
    cap = LineCap(2, 100)
    sent = [out for i in range(6) for out in cap.push(f"line {i}")]
    assert sent == ["line 0", "line 1" + CUT_NOTE]
    assert cap.rest == ["line 2", "line 3", "line 4", "line 5"]


def test_colour_code_split_across_deltas_is_removed() -> None:
    assert feed_all(LineAssembler(40), ["say \x03", "04", ",12red\x03", " now"]) == ["say red now"]


def test_with_cut_note_fits_budget() -> None:
    line = "word " * 30
    out = with_cut_note(line.strip(), 60)
    assert out.endswith(CUT_NOTE)
    assert len(out.encode()) <= 60
    assert with_cut_note("short", 60) == "short" + CUT_NOTE


def test_cap_lets_max_lines_through_and_marks_the_last_when_more_came() -> None:
    cap = LineCap(3, 100)
    sent: list[str] = []
    for i in range(10):
        sent += cap.push(f"line {i}")
    sent += cap.finish()
    assert sent == ["line 0", "line 1", "line 2" + CUT_NOTE]
    assert cap.cut and cap.sent == 3


def test_cap_sends_exactly_max_lines_without_note() -> None:
    cap = LineCap(3, 100)
    sent: list[str] = []
    for i in range(3):
        sent += cap.push(f"line {i}")
    sent += cap.finish()
    assert sent == ["line 0", "line 1", "line 2"]
    assert not cap.cut


def test_cap_of_one_line() -> None:
    cap = LineCap(1, 100)
    assert cap.push("a") == []
    assert cap.push("b") == ["a" + CUT_NOTE]
    assert cap.push("c") == []
    assert cap.finish() == []
