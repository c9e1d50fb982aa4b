"""The text every measured message carries, and how receivers find it again.

Body: optional padding, then a fixed-width tail ``~SSSSSSS.QQQQQQQQQQQQQQQ.TTTTTTTTTTTTTTT``
(sender id, sequence number, scheduled send time in µs; zero-padded decimal) that ends the
line. ``TTTT…`` is the *scheduled* send time on CLOCK_MONOTONIC (shared by all processes
of one machine), so latency = receive time - scheduled time includes any time the sender
itself was late (the coordinated-omission correction).

Why fixed width at the end: every field then sits at a known distance before the line's
CRLF, whatever the server put in front (IRCv3 tags, a long hostmask), so
``perf.linescan`` can read all fields of a whole recv() buffer with a few numpy gathers
instead of parsing lines one by one. The tail is 40 bytes, five 8-byte words
(``~SSSSSSS`` ``.QQQQQQQ`` ``QQQQQQQQ`` ``.TTTTTTT`` ``TTTTTTTT``), so each word is read as
one 64-bit integer and checked and converted with a handful of integer operations; the
marker in front of a word acts as a leading zero.
"""

from __future__ import annotations

import re

SENDER_DIGITS = 7
SEQ_DIGITS = 15
SCHED_DIGITS = 15  # µs: CLOCK_MONOTONIC up to 31 years of uptime
TAIL_LEN = 1 + SENDER_DIGITS + 1 + SEQ_DIGITS + 1 + SCHED_DIGITS  # 40
MAX_SENDER = 10**SENDER_DIGITS - 1

# Only the slow path uses this (lines the vectorised scanner could not place, e.g. a server
# that drops the ':' of a trailing parameter without spaces).
PAYLOAD_RE = re.compile(rb"PRIVMSG (\S+) :?(?:\S* )?~(\d+)\.(\d+)\.(\d+)[ \r]*$")

PAD = b"x"


def body_len(size: int) -> int:
    """Length of every body sent with ``--msg-size size``: never shorter than the tail."""
    return max(size, TAIL_LEN)


def line_prefix(room: bytes, sender: int, size: int) -> bytes:
    """Everything of one sender's line up to the sequence number; reused for every send."""
    pad = body_len(size) - TAIL_LEN
    padding = PAD * (pad - 1) + b" " if pad > 0 else b""
    return b"PRIVMSG %s :%s~%07d." % (room, padding, sender)


def privmsg(room: bytes, sender: int, seq: int, sched_us: int, size: int) -> bytes:
    """One wire line, CRLF included, whose body is at least ``size`` bytes long."""
    return line_prefix(room, sender, size) + b"%015d.%015d\r\n" % (seq, sched_us)


def parse_body(line: bytes) -> tuple[bytes, int, int, int] | None:
    """(room, sender, seq, sched_us) of one line, or None; for tests and slow paths."""
    m = PAYLOAD_RE.search(line.rstrip(b"\r\n"))
    if m is None:
        return None
    return m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
