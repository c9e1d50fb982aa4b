"""Casefolding and name validation under CASEMAPPING=ascii."""

from __future__ import annotations

import pytest

from chat_protocol.casemap import casefold, is_channel, valid_channel, valid_nick


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("Dan", "dan"),
        ("#Chan-ROOM", "#chan-room"),
        ("Nick[]\\^", "nick[]\\^"),  # ascii: brackets are not letters (rfc1459 would fold them)
        ("ÉLAN", "Élan"),  # only A-Z fold
        ("", ""),
    ],
)
def test_casefold_ascii(name: str, folded: str) -> None:
    assert casefold(name) == folded


@pytest.mark.parametrize(
    ("name", "expected"),
    [("#room", True), ("&local", True), ("room", False), ("", False), ("+x", False)],
)
def test_is_channel(name: str, expected: bool) -> None:
    assert is_channel(name) is expected


@pytest.mark.parametrize(
    ("nick", "expected"),
    [
        ("dan", True),
        ("Dan_[away]", True),
        ("a-b`c^d{e}|f\\", True),
        ("x" * 30, True),
        ("x" * 31, False),
        ("", False),
        ("1dan", False),
        ("-dan", False),
        ("#dan", False),
        ("da n", False),
        ("dan!", False),
        ("dän", False),
    ],
)
def test_valid_nick(nick: str, expected: bool) -> None:
    assert valid_nick(nick) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("#room", True),
        ("&room", True),
        ("#café", True),
        ("#", False),
        ("room", False),
        ("#a b", False),
        ("#a,b", False),
        ("#a\x07", False),
        ("#a:b", False),
        ("#" + "x" * 63, True),
        ("#" + "x" * 64, False),
    ],
)
def test_valid_channel(name: str, expected: bool) -> None:
    assert valid_channel(name) is expected
