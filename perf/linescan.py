"""Vectorised reading of measured messages out of a buffer of complete IRC lines.

A receiver sees millions of lines a second; parsing them one by one in Python costs
microseconds each. Every measured line ends with the 40-byte tail of ``perf.payload``
right before its CRLF, so instead this module finds all line ends of a buffer at once
and reads, for every line in one numpy gather, the eight 64-bit words at fixed distances
before its end: three holding `` PRIVMSG <room> :`` and five holding the tail.

A line counts as a payload only if all of this holds, each checked for every line: every
tail byte is a digit or the marker (``~`` ``.`` ``.``) due at its place, the sender id is a
sender of this run, the bytes right before the body are exactly `` PRIVMSG <that
sender's room> :`` (so the body has the run's length and the server relayed it to the
room the sender speaks in), and the body starts inside the line. Anything else — PING,
numerics, another server's odd rendering of a payload — is left to the caller's slow
path, line by line, so nothing is silently dropped or miscounted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perf.payload import SCHED_DIGITS, SENDER_DIGITS, SEQ_DIGITS, TAIL_LEN

NL = 10
CR = 13
PREFIX_WORDS = 3  # 24 bytes: rooms of up to 13 characters are compared in full
TAIL_WORDS = TAIL_LEN // 8
SPAN = 8 * PREFIX_WORDS


def _word(text: bytes) -> int:
    return int.from_bytes(text, "little")


def _tail_constants() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per tail word: expected bytes, bits compared, digit probe, digit nibbles.

    A digit byte must read 0x3? and still read 0x3? after adding 6 (so 0x3A-0x3F fail);
    a marker byte must match exactly and is read as a leading zero.
    """
    shape = b"~" + b"0" * SENDER_DIGITS + b"." + b"0" * SEQ_DIGITS + b"." + b"0" * SCHED_DIGITS
    assert len(shape) == TAIL_LEN and TAIL_LEN % 8 == 0
    cols: list[list[int]] = [[], [], [], []]
    for k in range(TAIL_WORDS):
        chunk = shape[8 * k : 8 * k + 8]
        digit = [c == ord("0") for c in chunk]
        pairs = list(zip(digit, chunk, strict=True))
        cols[0].append(_word(bytes(0x30 if d else c for d, c in pairs)))
        cols[1].append(_word(bytes(0xF0 if d else 0xFF for d in digit)))
        cols[2].append(_word(bytes(0x06 if d else 0 for d in digit)))
        cols[3].append(_word(bytes(0x0F if d else 0 for d in digit)))
    pattern, checked, probe, value = (np.array(c, dtype=np.uint64) for c in cols)
    return pattern, checked, probe, value


_PATTERN, _CHECKED, _PROBE, _VALUE = (c[:, None] for c in _tail_constants())
_M16 = np.uint64(0x00FF00FF00FF00FF)
_M32 = np.uint64(0x0000FFFF0000FFFF)
_E8 = np.int64(100_000_000)
_U8, _U16, _U32 = np.uint64(8), np.uint64(16), np.uint64(32)


def digits_value(words: np.ndarray) -> np.ndarray:
    """Value of words whose bytes are 8 decimal digits (first byte most significant)
    after the non-digit bytes were masked to zero: pair neighbours 1→2→4→8 digits.
    Works in place on ``words``."""
    v = words
    v *= np.uint64(2561)
    v >>= _U8
    v &= _M16
    v *= np.uint64(6553601)
    v >>= _U16
    v &= _M32
    v *= np.uint64(42949672960001)
    v >>= _U32
    return v.view(np.int64)


@dataclass(slots=True)
class Scan:
    """Per line of a buffer: where it ends, and (where ``ok``) the payload's fields."""

    ends: np.ndarray  # int64 index of each line's LF
    ok: np.ndarray  # bool: a payload read by the fast path
    sender: np.ndarray  # int64; only meaningful where ok
    seq: np.ndarray
    sched: np.ndarray

    def __len__(self) -> int:
        return len(self.ends)

    def starts(self) -> np.ndarray:
        """Index of each line's first byte (lines are contiguous)."""
        out = np.empty_like(self.ends)
        if len(out):
            out[0] = 0
            out[1:] = self.ends[:-1] + 1
        return out


class LineScanner:
    """Reads payload fields of many lines at once, for one run's body length and rooms.

    ``sender_rooms`` maps every sender id of the run to the room it sends to.
    """

    def __init__(self, body_len: int, sender_rooms: dict[int, bytes]) -> None:
        if body_len < TAIL_LEN:
            raise ValueError(f"bodies are at least {TAIL_LEN} bytes")
        self.body_len = body_len
        # The shortest line that can hold a payload ends this far into the buffer.
        self.min_end = body_len + SPAN
        size = max(sender_rooms, default=-1) + 2  # the last row stands for "not a sender"
        self.unknown = size - 1
        self.known = np.zeros(size, dtype=bool)
        # Per sender (one column each): the expected prefix words, then which of their
        # bits are compared. Column-major so ``take`` gathers whole rows of lines at once.
        self.expect = np.zeros((2 * PREFIX_WORDS, size), dtype=np.uint64)
        for sid, room in sender_rooms.items():
            text = b" PRIVMSG " + room + b" :"
            keep = min(len(text), SPAN)  # bytes in front (the source prefix) are not compared
            padded = bytes(SPAN - keep) + text[-keep:]
            maskb = bytes(SPAN - keep) + b"\xff" * keep
            for k in range(PREFIX_WORDS):
                self.expect[k, sid] = _word(padded[8 * k : 8 * k + 8])
                self.expect[PREFIX_WORDS + k, sid] = _word(maskb[8 * k : 8 * k + 8])
            self.known[sid] = True
        self._is_nl = np.empty(0, dtype=bool)

    def scan(self, buf: np.ndarray) -> Scan:
        """Scan ``buf`` (uint8, complete lines each ending in LF)."""
        size = len(buf)
        if len(self._is_nl) < size:
            self._is_nl = np.empty(2 * size, dtype=bool)
        is_nl = self._is_nl[:size]  # reused: a fresh megabyte per batch costs page faults
        np.equal(buf, NL, out=is_nl)
        ends = is_nl.nonzero()[0]
        n = len(ends)
        if n == 0 or size < self.min_end + 2:
            fields = (np.zeros(n, dtype=np.int64) for _ in range(3))
            return Scan(ends, np.zeros(n, dtype=bool), *fields)
        # End of body: the CR before the LF when there is one (servers send CRLF). A line
        # too close to the buffer start to hold a payload is moved so reads stay inside
        # the buffer; it then fails the checks and goes to the slow path.
        body_end = ends - (buf[ends - 1] == CR)
        np.maximum(body_end, self.min_end, out=body_end)
        # One copy of each line's tail and prefix bytes, then word rows (5, n) and (3, n)
        # so every operation below runs along all lines at once.
        tail = _rows(_records(buf, TAIL_LEN)[body_end - TAIL_LEN], TAIL_WORDS)
        prefix = _rows(_records(buf, SPAN)[body_end - (self.body_len + SPAN)], PREFIX_WORDS)
        # Nonzero where a byte is off: (w ^ pattern) catches a wrong high nibble or marker,
        # ((w + 6) ^ pattern) a low nibble above 9.
        bad = tail + _PROBE
        bad ^= _PATTERN
        bad |= tail ^ _PATTERN
        bad &= _CHECKED
        values = digits_value(tail & _VALUE)
        sender = values[0]
        row = np.minimum(sender, self.unknown)
        expect = self.expect.take(row, axis=1)
        bad[:PREFIX_WORDS] |= (prefix ^ expect[:PREFIX_WORDS]) & expect[PREFIX_WORDS:]
        ok = ~bad.any(axis=0)
        ok &= self.known.take(row)
        # The body must start after the previous line's LF (no payload spans two lines).
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        ok &= body_end - self.body_len > starts
        seq = values[1] * _E8 + values[2]
        sched = values[3] * _E8 + values[4]
        return Scan(ends, ok, sender, seq, sched)


def _records(buf: np.ndarray, size: int) -> np.ndarray:
    """Every ``size``-byte run of ``buf`` as one opaque item, one per start byte, so a
    gather copies whole runs (numpy moves unaligned 8-byte words one by one, slowly)."""
    count = max(0, len(buf) - size + 1)
    return np.ndarray((count,), dtype=np.dtype((np.void, size)), buffer=buf, strides=(1,))


def _rows(records: np.ndarray, words: int) -> np.ndarray:
    """Gathered records as ``words`` rows of little-endian 64-bit words, one column a line."""
    return np.ascontiguousarray(records.view("<u8").reshape(len(records), words).T)
