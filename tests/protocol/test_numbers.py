"""ascii_int: numbers in protocol text are ASCII digits, nothing else."""

from __future__ import annotations

import pytest

from chat_protocol.numbers import ascii_int


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("302", 302), ("007", 7), ("", None), ("²", None), ("٣", None), ("3²", None),
     ("-1", None), ("+1", None), (" 1", None), ("1.0", None), ("1" * 5000, None)],
)  # fmt: skip
def test_ascii_int(text: str, value: int | None) -> None:
    assert ascii_int(text) == value
