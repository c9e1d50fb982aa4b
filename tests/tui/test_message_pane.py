"""The message pane: place kept when older lines arrive, bottom followed only at the bottom."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from textual.app import App, ComposeResult

from chat_tui.model import ChatLine, LineKind, Room
from chat_tui.widgets.message_pane import MessagePane

START = datetime(2024, 3, 5, 9, 0, tzinfo=UTC)


def line(i: int, text: str | None = None) -> ChatLine:
    return ChatLine(START + timedelta(seconds=i), LineKind.MESSAGE, "bob", text or f"line {i}")


class PaneApp(App[None]):
    def compose(self) -> ComposeResult:
        yield MessagePane(tz=UTC)


async def test_follows_bottom_only_when_reader_is_there() -> None:
    room = Room("#r")
    for i in range(100, 200):
        room.add(line(i))
    app = PaneApp()
    async with app.run_test(size=(80, 20)) as pilot:
        pane = app.query_one(MessagePane)
        pane.show(room.lines)
        await pilot.pause()
        assert pane.at_bottom
        room.add(line(200))
        pane.sync()
        await pilot.pause()
        assert pane.at_bottom and pane.render_line(pane.size.height - 1).text.find("line 200") > 0
        pane.scroll_to(y=10, animate=False, immediate=True)
        room.add(line(201))
        pane.sync()
        await pilot.pause()
        assert pane.scroll_y == 10  # reading older lines: not yanked down


async def test_keeps_place_when_older_lines_arrive_above() -> None:
    room = Room("#r")
    for i in range(100, 200):
        room.add(line(i))
    app = PaneApp()
    async with app.run_test(size=(80, 20)) as pilot:
        pane = app.query_one(MessagePane)
        pane.show(room.lines)
        await pilot.pause()
        pane.scroll_to(y=5, animate=False, immediate=True)
        await pilot.pause()
        top_before = pane.render_line(0).text
        room.add_older([line(i) for i in range(0, 100)])
        pane.reload()
        await pilot.pause()
        assert pane.render_line(0).text == top_before
        assert pane.scroll_y > 100


async def test_long_lines_wrap_with_hanging_indent_and_urls_intact() -> None:
    url = "https://example.org/abc?x=1"  # fits a row: must not be split
    room = Room("#r")
    room.add(line(1, "word " * 30 + url))
    app = PaneApp()
    async with app.run_test(size=(60, 10)) as pilot:
        pane = app.query_one(MessagePane)
        pane.show(room.lines)
        await pilot.pause()
        rows = [pane.render_line(y).text.rstrip() for y in range(pane.row_count)]
        assert "Tuesday, 05 March 2024" in rows[0]  # day separator
        assert rows[1].startswith("09:00")
        assert all(r.startswith(" " * 19) for r in rows[2:])
        assert any(url in r for r in rows)


async def test_ten_thousand_lines_lay_out_and_scroll() -> None:
    """A big room is drawn line by line at any scroll position (speed: see benchmarks)."""
    room = Room("#big")
    for i in range(10_000):
        room.add(line(i, f"message number {i} with some text"))
    app = PaneApp()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(MessagePane)
        pane.show(room.lines)
        await pilot.pause()
        assert pane.item_count == 10_001  # one day separator
        for y in range(300, 9_000, 300):
            pane.scroll_to(y=y, animate=False, immediate=True)
            rows = [pane.render_line(row).text for row in range(40)]
            numbers = [
                int(r.split("message number ")[1].split()[0]) for r in rows if "message number" in r
            ]
            assert len(numbers) >= 30
            assert numbers == sorted(numbers) and numbers[0] >= y - 2


async def test_narrow_pane_shrinks_the_nick_column_instead_of_cutting_text() -> None:
    text = "alice: did you see the release notes"
    room = Room("#r")
    room.add(line(1, text))
    app = PaneApp()
    async with app.run_test(size=(24, 10)) as pilot:
        pane = app.query_one(MessagePane)
        pane.show(room.lines)
        await pilot.pause()
        width = pane.scrollable_content_region.width
        rows = [pane.render_line(y).text[:width] for y in range(pane.row_count)]
        assert rows[1].startswith("09:00    bob ")  # nick column of 6, not 12
        assert " ".join(r[13:] for r in rows[1:]).split() == text.split()


async def test_day_rule_reaches_the_right_edge_at_odd_widths() -> None:
    room = Room("#r")
    room.add(line(1))
    for size in [(60, 10), (61, 10)]:
        app = PaneApp()
        async with app.run_test(size=size) as pilot:
            pane = app.query_one(MessagePane)
            pane.show(room.lines)
            await pilot.pause()
            width = pane.scrollable_content_region.width
            rule = pane.render_line(0).text[:width]
            assert rule.startswith("─") and rule.endswith("─"), (size, rule)
