"""Replies to one room are written whole and in the order asked, however fast each is."""

from __future__ import annotations

import asyncio

from bot.output import ReplyOrder


async def test_a_later_reply_ready_first_waits_for_the_earlier_one() -> None:
    written: list[str] = []

    async def send(line: str) -> None:
        written.append(line)

    order = ReplyOrder()
    slow = order.open("#room", send)
    quick = order.open("#ROOM", send)
    elsewhere = order.open("#other", send)
    quick.say("quick 1")
    quick.say("quick 2")
    quick.end()
    elsewhere.say("other room")
    elsewhere.end()
    await elsewhere.finished.wait()
    assert written == ["other room"]  # another room is not held up
    slow.say("slow 1")
    await asyncio.sleep(0)
    slow.say(lambda: "slow 2, worked out when written")
    slow.end()
    await quick.finished.wait()
    assert written == [
        "other room",
        "slow 1",
        "slow 2, worked out when written",
        "quick 1",
        "quick 2",
    ]
    slow.say("after the end")  # ignored
    await order.close()


async def test_a_failed_line_does_not_block_the_room() -> None:
    async def broken(line: str) -> None:
        raise ConnectionError("offline")

    order = ReplyOrder()
    first = order.open("#r", broken)
    first.say("lost")
    first.end()
    done = asyncio.Event()
    second = order.open("#r", broken)
    second.when_finished(done.set)
    second.end()
    await asyncio.wait_for(done.wait(), 5)
    await order.close()


async def test_close_stops_replies_that_never_ended() -> None:
    async def send(line: str) -> None:
        pass

    order = ReplyOrder()
    order.open("#r", send).say("never ended")
    order.open("#r", send)
    await asyncio.wait_for(order.close(), 5)
