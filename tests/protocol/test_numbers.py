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


@pytest.mark.parametrize(
    "text",
    [
        "\uff15",  # fullwidth five
        "\u09e9",  # Bengali three
        "1 ",
        "1_000",  # int() takes underscores
        "1e3",
        "0x10",
        "1234567890",  # ten digits: past the default bound
    ],
)
def test_more_that_is_not_a_count(text: str) -> None:
    assert ascii_int(text) is None


def test_max_digits() -> None:
    assert ascii_int("999999999") == 999_999_999
    assert ascii_int("12", max_digits=2) == 12
    assert ascii_int("123", max_digits=2) is None
    assert ascii_int("1234567890", max_digits=10) == 1_234_567_890
