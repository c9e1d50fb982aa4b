"""Markdown from the model rendered as IRC formatting, and cut with its styles carried."""

from __future__ import annotations

import pytest

from bot.lines import LineAssembler
from bot.markdown import BOLD, ITALIC, MONO, MarkdownRenderer, render_inline, split_formatted


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a **bold** word", f"a {BOLD}bold{BOLD} word"),
        ("a __bold__ word", f"a {BOLD}bold{BOLD} word"),
        ("an *italic* word", f"an {ITALIC}italic{ITALIC} word"),
        ("an _italic_ word", f"an {ITALIC}italic{ITALIC} word"),
        ("run `ls -l *.py` now", f"run {MONO}ls -l *.py{MONO} now"),
        ("see [the docs](https://x.org/a)", "see the docs <https://x.org/a>"),
        ("snake_case_name stays", "snake_case_name stays"),
        ("2 * 3 * 4 = 24", "2 * 3 * 4 = 24"),
        ("a ** lone", "a ** lone"),
        ("**unclosed bold", "**unclosed bold"),
    ],
)
def test_inline(text: str, shown: str) -> None:
    assert render_inline(text) == shown


def render(text: str) -> list[str]:
    renderer = MarkdownRenderer()
    return [out for line in text.split("\n") if (out := renderer.line(line)) is not None]


def test_blocks_fences_dropped_code_keeps_its_indentation() -> None:
    answer = (
        "## Fix it\n"
        "Use a **loop**:\n"
        "\n"
        "```python\n"
        "for x in xs:\n"
        "    print(x)\n"
        "```\n"
        "- first\n"
        "  * nested\n"
        "1. numbered\n"
        "> quoted\n"
        "---\n"
        "done"
    )
    assert render(answer) == [
        f"{BOLD}Fix it{BOLD}",
        f"Use a {BOLD}loop{BOLD}:",
        f"{MONO}for x in xs:",
        f"{MONO}    print(x)",
        "• first",
        "  • nested",
        "1. numbered",
        "> quoted",
        "done",
    ]


def test_split_reopens_the_styles_open_at_the_cut() -> None:
    text = f"{BOLD}" + " ".join(["bold"] * 10) + f"{BOLD} plain"
    lines = split_formatted(text, 20)
    assert all(len(line.encode()) <= 20 for line in lines)
    assert all(line.startswith(BOLD) for line in lines[:-1])
    assert lines[-1].endswith("plain")
    assert " ".join(line.replace(BOLD, "") for line in lines).split() == ["bold"] * 10 + ["plain"]


def test_code_lines_stay_monospace_when_cut() -> None:
    lines = split_formatted(MONO + "x" * 50, 20)
    assert len(lines) == 3 and all(line.startswith(MONO) for line in lines)


def test_streamed_markdown_answer_saves_lines_and_takes_the_prefix_on_shown_text() -> None:
    asm = LineAssembler(100, prefix="dave: ")
    pieces = ["```", "py\nif a:\n", "    b()\n``", "`\nThat **is", "** all."]
    lines = [line for p in pieces for line in asm.feed(p)] + asm.flush()
    assert lines == [
        f"dave: {MONO}if a:",
        f"{MONO}    b()",
        f"That {BOLD}is{BOLD} all.",
    ]
