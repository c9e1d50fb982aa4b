"""The language-model backend: streamed chat completions from any OpenAI-compatible API.

Every way a call can fail becomes an ``LLMError`` carrying one short, honest line for
the room (the room needs to know *that* and roughly *why*, not a traceback); the
details go to the log. Retries are off (``max_retries=0``): a chat answer that arrives
a minute late is worse than an honest "try again".
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import cast

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from bot.sanitize import clean_line

log = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "AI answers are not configured here (no OPENROUTER_API_KEY or OPENAI_API_KEY); "
    "say 'help' for what I can do offline."
)


class LLMError(Exception):
    """A failed call; ``reply`` is the one line to show in the room."""

    def __init__(self, reply: str, detail: str = "") -> None:
        super().__init__(reply)
        self.reply = reply
        self.detail = detail  # for the log: status, the API's own message


def _short(text: object, limit: int = 120) -> str:
    line = clean_line(str(text))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def error_reply(exc: BaseException, *, timeout: float, started: bool) -> LLMError:
    """Map an SDK exception (or a timeout) to the line the room sees.

    ``started``: the answer had begun streaming, so a connection error means the
    stream broke rather than that the API could not be reached.
    """
    if isinstance(exc, TimeoutError | openai.APITimeoutError):
        return LLMError(f"The AI did not answer within {timeout:g}s; please try again.", str(exc))
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = _short(getattr(exc, "message", exc))
        if status in (401, 403):
            reply = f"The AI service rejected our API key ({status}); the operator must fix it."
        elif status == 402:
            reply = "The AI service says this account is out of credits (402)."
        elif status == 429:
            reply = "The AI service is rate-limiting us (429); please try again in a minute."
        elif status in (502, 503, 504, 529):
            # Gateway errors and "overloaded": the service is up but cannot take us now.
            reply = (
                f"The AI service is unavailable or overloaded ({status}); please try again later."
            )
        elif status >= 500:
            reply = f"The AI service had an internal error ({status}); please try again later."
        else:
            reply = f"The AI service refused the request ({status}: {detail})."
        return LLMError(reply, f"{status} {detail}")
    if isinstance(exc, openai.APIConnectionError):
        if started:
            return LLMError("The AI answer broke off mid-stream; please try again.", repr(exc))
        return LLMError("Cannot reach the AI service right now; please try again later.", repr(exc))
    if isinstance(exc, openai.APIError):
        return LLMError(f"The AI service reported an error: {_short(exc, 80)}", repr(exc))
    return LLMError("Something went wrong while asking the AI; please try again.", repr(exc))


class ChatBackend:
    """One AsyncOpenAI client for the bot's lifetime; ``stream()`` per question."""

    def __init__(
        self, *, base_url: str, api_key: str, model: str, timeout: float, max_tokens: int
    ) -> None:
        self.model = model
        self.timeout = timeout
        self.max_tokens = max_tokens
        self._client = AsyncOpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0
        )

    async def stream(
        self,
        messages: list[dict[str, str]],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
    ) -> AsyncGenerator[str, None]:
        """Yield the answer's text as it arrives; raise LLMError on any failure.

        ``model``, ``max_tokens`` and ``timeout`` replace the backend's own for this
        call (a room with settings of its own); ``temperature`` and ``top_p`` are sent
        only when set, so the model's defaults apply otherwise. The caller bounds the total time
        (``asyncio.timeout``); the SDK's timeout covers each network wait, so a
        stalled server fails even between deltas.
        """
        started = False
        timeout = self.timeout if timeout is None else timeout
        try:
            stream = await self._client.chat.completions.create(
                model=model or self.model,
                messages=cast("list[ChatCompletionMessageParam]", messages),
                stream=True,
                max_tokens=max_tokens or self.max_tokens,
                timeout=timeout,
                temperature=openai.omit if temperature is None else temperature,
                top_p=openai.omit if top_p is None else top_p,
            )
            started = True
            async with stream:
                async for chunk in stream:
                    if not chunk.choices:
                        continue
                    content = chunk.choices[0].delta.content
                    if content:
                        yield content
        except LLMError:
            raise
        except Exception as exc:  # every SDK/transport failure becomes one honest line
            err = error_reply(exc, timeout=timeout, started=started)
            log.warning("AI call failed: %s [%s]", err.reply, err.detail)
            raise err from exc

    async def close(self) -> None:
        await self._client.close()
