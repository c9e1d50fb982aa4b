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
    topic: str = "",
    replying_to: str | None = None,
) -> list[dict[str, str]]:
    """The ``messages`` list for the API, oldest context first, the question last.

    ``topic``: the room's topic. ``replying_to``: the bot's own line the question is a
    reply to, so the model knows what "and why?" refers to.
    """
    now = now or datetime.now(UTC)
    where = f"the IRC chat room {target}" if is_channel(target) else f"a private chat with {asker}"
    situation = (
        f"Your nick is {bot_nick}. You are in {where}. The time now is "
        f"{now.strftime('%Y-%m-%d %H:%M')} UTC. Your answer is shown as chat lines: "
        "keep it short and in plain text."
    )
    if topic:
        situation += f" The room's topic is: {topic}"
    messages = [{"role": "system", "content": f"{system_prompt.strip()}\n\n{situation}"}]
    if transcript:
        messages.append(
            {
                "role": "user",
                "content": "Recent conversation (oldest first, times in UTC):\n"
                + "\n".join(transcript),
            }
        )
    if replying_to:
        ask = f'{asker} replies to your line "{replying_to}": {question}'
    else:
        ask = f"{asker} asks: {question}"
    messages.append({"role": "user", "content": ask})
    return messages


def summary_messages(
    *,
    system_prompt: str,
    bot_nick: str,
    room: str,
    asker: str,
    transcript: list[str],
    span: str,
    topic: str = "",
) -> list[dict[str, str]]:
    """The messages that ask for a short summary of ``transcript`` for ``asker``."""
    about = f" (topic: {topic})" if topic else ""
    return [
        {
            "role": "system",
            "content": f"{system_prompt.strip()}\n\nYour nick is {bot_nick}, in the IRC chat "
            f"room {room}{about}. Your answer is shown as chat lines: keep it short.",
        },
        {
            "role": "user",
            "content": f"What was said in {room} {span} (times in UTC):\n" + "\n".join(transcript),
        },
        {
            "role": "user",
            "content": f"{asker} was away and asks what they missed. Summarise the above for "
            "them in a few short lines: the topics, decisions, questions for them, who said "
            "what that matters. No preamble.",
        },
    ]
