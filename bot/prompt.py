"""Build the chat-completions messages for one question: prompt, room, recent lines, asker.

The room's recent lines go in as one user message of plain transcript rather than as
alternating roles: other people's words are not the bot's user's words, and a
transcript keeps who-said-what and when, which "summarise the last ten minutes" needs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from chat_protocol.casemap import is_channel


def build_messages(
    *,
    system_prompt: str,
    bot_nick: str,
    target: str,
    asker: str,
    question: str,
    transcript: list[str],
    now: datetime | None = None,
) -> list[dict[str, str]]:
    """The ``messages`` list for the API, oldest context first, the question last."""
    now = now or datetime.now(UTC)
    where = f"the IRC chat room {target}" if is_channel(target) else f"a private chat with {asker}"
    situation = (
        f"Your nick is {bot_nick}. You are in {where}. The time now is "
        f"{now.strftime('%Y-%m-%d %H:%M')} UTC. Your answer is shown as chat lines: "
        "keep it short and in plain text."
    )
    messages = [{"role": "system", "content": f"{system_prompt.strip()}\n\n{situation}"}]
    if transcript:
        messages.append(
            {
                "role": "user",
                "content": "Recent conversation (oldest first, times in UTC):\n"
                + "\n".join(transcript),
            }
        )
    messages.append({"role": "user", "content": f"{asker} asks: {question}"})
    return messages
