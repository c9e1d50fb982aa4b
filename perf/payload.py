"""The text every measured message carries, and the pattern that finds it again.

Body: ``~SENDER.SEQ.SCHED_US`` then padding to ``--msg-size`` bytes. ``SCHED_US`` is the
*scheduled* send time on CLOCK_MONOTONIC (shared by all processes of one machine), so
latency = receive time - scheduled time includes any time the sender itself was late
(the coordinated-omission correction).
"""

from __future__ import annotations

import re

# Receivers scan whole recv() chunks with one C-level findall instead of parsing lines:
# the generator must keep up with millions of deliveries a second.
PAYLOAD_RE = re.compile(rb"PRIVMSG (\S+) :~(\d+)\.(\d+)\.(\d+)")

PAD = b"x"


def privmsg(room: bytes, sender: int, seq: int, sched_us: int, size: int) -> bytes:
    """One wire line, CRLF included, whose body is at least ``size`` bytes long."""
    head = b"~%d.%d.%d" % (sender, seq, sched_us)
    pad = size - len(head) - 1
    body = head + b" " + PAD * pad if pad > 0 else head
    return b"PRIVMSG " + room + b" :" + body + b"\r\n"


def parse_body(line: bytes) -> tuple[bytes, int, int, int] | None:
    """(room, sender, seq, sched_us) of one line, or None; for tests and slow paths."""
    m = PAYLOAD_RE.search(line)
    if m is None:
        return None
    return m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
