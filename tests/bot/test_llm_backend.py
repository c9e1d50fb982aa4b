"""The backend with the real openai SDK against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest
from openai import AsyncOpenAI

from bot.answer import TypingIndicators, stream_answer
from bot.lines import CUT_NOTE
from bot.llm import ChatBackend, LLMError
from tests.support import fake_openai
from tests.support.fake_openai import FakeOpenAI, long_answer


def backend(api: FakeOpenAI, *, timeout: float = 5.0, key: str = "sk-test-key") -> ChatBackend:
    return ChatBackend(
        base_url=api.base_url, api_key=key, model="test/model", timeout=timeout, max_tokens=50
    )


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "sys"}, {"role": "user", "content": text}]


async def collect(b: ChatBackend, text: str) -> str:
    return "".join([piece async for piece in b.stream(ask(text))])


async def test_fake_server_speaks_plain_completions_to_the_sdk(fake_api: FakeOpenAI) -> None:
    client = AsyncOpenAI(base_url=fake_api.base_url, api_key="sk-test-key", max_retries=0)
    reply = await client.chat.completions.create(model="m", messages=ask("hi"))  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "echo: hi"
    await client.close()


async def test_stream_answer_and_what_was_sent(fake_api: FakeOpenAI) -> None:
    b = backend(fake_api)
    assert await collect(b, "hello there") == "echo: hello there"
    (req,) = fake_api.requests
    assert req.body["model"] == "test/model"
    assert req.body["stream"] is True
    assert req.body["max_tokens"] == 50
    assert req.system_prompt == "sys"
    assert req.headers["authorization"] == "Bearer sk-test-key"
    await b.close()


async def test_a_call_can_use_its_own_model_and_token_limit(fake_api: FakeOpenAI) -> None:
    b = backend(fake_api)
    pieces = [p async for p in b.stream(ask("hi"), model="room/model", max_tokens=7, timeout=3)]
    assert "".join(pieces) == "echo: hi"
    assert await collect(b, "again") == "echo: again"
    first, second = fake_api.requests
    assert (first.body["model"], first.body["max_tokens"]) == ("room/model", 7)
    assert (second.body["model"], second.body["max_tokens"]) == ("test/model", 50)
    await b.close()


async def test_a_calls_own_timeout_is_the_one_reported(fake_api: FakeOpenAI) -> None:
    b = backend(fake_api, timeout=30)
    with pytest.raises(LLMError, match=r"did not answer within 0\.5s"):
        async for _ in b.stream(ask("fake:stall"), timeout=0.5):
            pass
    await b.close()


async def test_long_answer_streams_completely(fake_api: FakeOpenAI) -> None:
    b = backend(fake_api)
    assert await collect(b, "fake:long") == long_answer(fake_api.long_words)
    await b.close()


@pytest.mark.parametrize(
    ("keyword", "needle"),
    [
        ("fake:401", "rejected our API key (401)"),
        ("fake:402", "out of credits (402)"),
        ("fake:429", "rate-limiting us (429)"),
        ("fake:500", "internal error (500)"),
        ("fake:broken", "broke off mid-stream"),
    ],
)
async def test_failures_become_one_honest_line(
    fake_api: FakeOpenAI, keyword: str, needle: str
) -> None:
    b = backend(fake_api)
    with pytest.raises(LLMError) as info:
        await collect(b, keyword)
    assert needle in info.value.reply
    assert "\n" not in info.value.reply and len(info.value.reply) < 120
    # and the same backend keeps working afterwards
    assert await collect(b, "still there?") == "echo: still there?"
    await b.close()


async def test_wrong_key_is_401(fake_api: FakeOpenAI) -> None:
    b = backend(fake_api, key="sk-wrong")
    with pytest.raises(LLMError, match="API key"):
        await collect(b, "hi")
    await b.close()


async def test_stall_times_out_within_the_limit(fake_api: FakeOpenAI) -> None:
    b = backend(fake_api, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(LLMError) as info:
        await collect(b, "fake:stall")
    assert time.monotonic() - started < 5
    assert "did not answer within 0.5s" in info.value.reply
    await b.close()


async def test_unreachable_service() -> None:
    with FakeOpenAI() as api:
        url = api.base_url
    b = ChatBackend(base_url=url, api_key="k", model="m", timeout=2, max_tokens=5)
    with pytest.raises(LLMError, match="Cannot reach"):
        await collect(b, "hi")
    await b.close()


class Collected:
    """A Sink that keeps what it is given."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ended = False

    def say(self, line: str) -> None:
        assert not self.ended, "a line after end()"
        self.lines.append(line)

    def end(self) -> None:
        self.ended = True


async def run_answer(api: FakeOpenAI, text: str, *, max_lines: int = 4, timeout: float = 5.0):
    sink = Collected()
    b = backend(api, timeout=timeout)
    result = await stream_answer(
        b.stream(ask(text)), sink=sink, prefix="alice: ", budget=80, max_lines=max_lines,
        timeout=timeout,
    )  # fmt: skip
    await b.close()
    assert sink.ended
    return sink.lines, result.sent


async def test_stream_answer_splits_caps_and_prefixes(fake_api: FakeOpenAI) -> None:
    said, count = await run_answer(fake_api, "fake:long")
    assert count == 4 == len(said)
    assert said[0].startswith("alice: word1 word2")
    assert said[-1].endswith(CUT_NOTE)
    assert all(len(line.encode()) <= 80 for line in said)
    words = " ".join(said).removesuffix(CUT_NOTE).split()[1:]
    assert words == [f"word{i}" for i in range(1, len(words) + 1)]  # in order, none lost


async def test_stream_answer_sanitises_model_output(fake_api: FakeOpenAI) -> None:
    said, _ = await run_answer(fake_api, "fake:control", max_lines=10)
    joined = "\n".join(said)
    assert said[0] == "alice: safe start"
    assert not any(ord(c) < 32 for c in joined.replace("\n", ""))
    assert "PRIVMSG #other :injected" in said[1]  # harmless text inside our own line


async def test_stream_answer_reports_a_broken_stream_after_partial_text(
    fake_api: FakeOpenAI,
) -> None:
    said, _ = await run_answer(fake_api, "fake:broken", max_lines=20)
    assert said[0].startswith("alice: word1")
    assert said[-1] == "alice: The AI answer broke off mid-stream; please try again."


async def test_stream_answer_total_timeout(fake_api: FakeOpenAI) -> None:
    fake_api.slow_delay = 0.3  # each word takes 0.3 s: the whole answer cannot make 1 s
    said, _ = await run_answer(fake_api, "fake:slow " + "x " * 20, max_lines=20, timeout=1.0)
    assert said[-1] == "alice: The AI did not answer within 1s; please try again."


async def test_a_cut_answer_keeps_the_rest_for_more(fake_api: FakeOpenAI) -> None:
    sink = Collected()
    b = backend(fake_api)
    result = await stream_answer(
        b.stream(ask("fake:long")), sink=sink, prefix="alice: ", budget=80, max_lines=2,
        timeout=5,
    )  # fmt: skip
    await b.close()
    assert result.sent == 2 and sink.lines[-1].endswith(CUT_NOTE)
    shown = " ".join(sink.lines).removesuffix(CUT_NOTE).split()[1:]
    kept = " ".join(result.rest).split()
    everything = long_answer(fake_api.long_words).split()
    # Nothing lost: what was shown (up to the cut) and what was kept make the answer.
    assert everything[: len(shown)] == shown
    assert everything[-len(kept) :] == kept and len(shown) + len(kept) >= len(everything) - 12


async def test_typing_indicator_refreshes_until_the_last_question_ends() -> None:
    states: list[tuple[str, str]] = []
    refreshed = asyncio.Event()

    async def send_typing(target: str, state: str) -> None:
        states.append((target, state))
        if states.count(("#r", "active")) >= 3:
            refreshed.set()

    typing = TypingIndicators(send_typing, refresh=0.01)
    first = typing.begin("#r")
    second = typing.begin("#R")  # the same room: one indicator for both questions
    await asyncio.wait_for(refreshed.wait(), 5)
    first()
    first()  # ending twice counts once
    assert ("#r", "done") not in states  # the second question is still pending
    second()
    async with asyncio.timeout(5):
        while ("#r", "done") not in states:
            await asyncio.sleep(0.01)
    await typing.close()
    assert states[0] == ("#r", "active")
    assert states.count(("#r", "done")) == 1


async def test_typing_failure_does_not_fail_the_answer() -> None:
    async def broken(target: str, state: str) -> None:
        raise ConnectionError("offline")

    typing = TypingIndicators(broken, refresh=0.01)
    end = typing.begin("#r")
    await asyncio.sleep(0.05)
    end()
    await typing.close()


@pytest.mark.parametrize(
    ("status", "needle"),
    [
        (503, "unavailable or overloaded (503)"),
        (502, "unavailable or overloaded (502)"),
        (500, "internal error (500)"),
    ],
)
async def test_gateway_errors_are_not_called_internal(
    fake_api: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, status: int, needle: str
) -> None:
    # The fake's 'fake:500' answers with the status under test, over real HTTP.
    monkeypatch.setitem(fake_openai._ERRORS, "500", (status, "unavailable", "Try later."))
    b = backend(fake_api)
    with pytest.raises(LLMError) as info:
        await collect(b, "fake:500")
    assert needle in info.value.reply
    await b.close()


async def test_model_parameters_are_sent_only_when_set(fake_api: FakeOpenAI) -> None:
    b = backend(fake_api)
    assert "".join([p async for p in b.stream(ask("a"), temperature=0.2, top_p=0.5)])
    assert await collect(b, "b")
    with_params, without = fake_api.requests
    assert (with_params.body["temperature"], with_params.body["top_p"]) == (0.2, 0.5)
    assert "temperature" not in without.body and "top_p" not in without.body
    await b.close()
