"""Tab completion candidates."""

from __future__ import annotations

from chat_tui.completion import candidates

NICKS = ["bob", "Bobby", "carol"]
ROOMS = ["#general", "#games", "#random"]


def test_nick_at_line_start_gets_colon() -> None:
    assert candidates("bo", 2, NICKS, ROOMS) == ["bob: ", "Bobby: "]


def test_nick_mid_line_gets_space() -> None:
    assert candidates("hi car", 6, NICKS, ROOMS) == ["carol "]


def test_commands_complete_at_line_start() -> None:
    assert candidates("/jo", 3, NICKS, ROOMS) == ["/join "]
    assert "/msg " in candidates("/m", 2, NICKS, ROOMS)
    assert candidates("/sea", 4, NICKS, ROOMS) == ["/search "]


def test_rooms_complete() -> None:
    assert candidates("/join #ga", 9, NICKS, ROOMS) == ["#games "]


def test_nothing_to_complete() -> None:
    assert candidates("", 0, NICKS, ROOMS) == []
    assert candidates("hi ", 3, NICKS, ROOMS) == []
