"""History helpers of the client: CHATHISTORY references, answers, and gap-fill holds.

While a gap fill after a reconnect is under way, a channel's replayed and live messages
are held back; when the ``CHATHISTORY AFTER`` answer arrives, the replay and the answer
are merged (deduplicated, in server time order) and the live messages follow, so a
reader sees the channel in order with nothing twice.
"""

from __future__ import annotations

import re

from chat_protocol.client_state import parse_time
from chat_protocol.message import Message

_TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT")
_NON_HISTORY = frozenset({"BATCH", "FAIL", "WARN", "NOTE"})


def history_ref(msgid_or_time: str) -> str:
    """Turn a msgid or a timestamp into a CHATHISTORY reference (``msgid=``/``timestamp=``)."""
    if msgid_or_time.startswith(("msgid=", "timestamp=")):
        return msgid_or_time
    if _TIMESTAMP_RE.match(msgid_or_time):
        return "timestamp=" + msgid_or_time
    return "msgid=" + msgid_or_time


def history_limit(isupport: dict[str, str], limit: int) -> int:
    """``limit`` capped at what the server serves a query (ISUPPORT ``CHATHISTORY``)."""
    most = isupport.get("CHATHISTORY", "")
    if most.isdigit() and int(most) > 0:
        return max(1, min(limit, int(most)))
    return max(1, limit)


def history_only(messages: list[Message]) -> list[Message]:
    """Drop batch frames, numerics and FAIL/WARN/NOTE from a CHATHISTORY answer."""
    return [m for m in messages if m.command not in _NON_HISTORY and not m.command.isdigit()]


def merge_history(*parts: list[Message]) -> list[Message]:
    """Concatenate, drop repeated msgids (first wins), then order by server time.

    The sort is stable, so messages with equal times keep the server's order; without
    a time on every message the order is left as it came.
    """
    merged: list[Message] = []
    ids: set[str] = set()
    for msg in (m for part in parts for m in part):
        msgid = msg.tags.get("msgid")
        if msgid is not None:
            if msgid in ids:
                continue
            ids.add(msgid)
        merged.append(msg)
    times = [parse_time(m.tags.get("time")) for m in merged]
    if any(t is None for t in times):
        return merged
    order = sorted(range(len(merged)), key=lambda i: times[i])  # type: ignore[arg-type, return-value]
    return [merged[i] for i in order]


class ChannelHold:
    """Messages of one channel kept back until its gap fill is done."""

    def __init__(self) -> None:
        self.history: list[Message] = []
        self.live: list[Message] = []

    def release(self, fetched: list[Message]) -> list[tuple[Message, bool]]:
        """(message, is_history) in the order to emit them, given the gap-fill answer."""
        history = [(m, True) for m in merge_history(fetched, self.history)]
        return history + [(m, False) for m in self.live]
