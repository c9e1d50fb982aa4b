"""The history writer: a child process that commits rows to SQLite in batches.

Why a process and not a thread: ``sqlite3`` releases the GIL around every row it
inserts, so a writer thread takes the GIL back once per row, and on a busy server each
of those hand-offs is a pair of context switches on the event loop's core. Measured
live (200 clients in 20 rooms, all sending), a writer thread cost about 20 µs of the
loop's core per message, three times what the inserts themselves cost. A child process
gets a whole batch in one pipe write and competes for CPU only as the kernel schedules
it.

Wire format on the child's stdin/stdout: frames of a 4-byte big-endian length and a
``marshal`` payload. That is a pipe between two processes of ours, never stored:
marshal packs a batch five times faster than JSON (182 against 915 µs for 200 runs),
and the packing runs in the server process. What reaches the disk is JSON and text.
The parent sends a list of runs and blocks (an empty list just asks for an answer)
and reads back ``(written, failed)`` message counts for that frame.
A run is the messages of one append: what they share once, then their msgids and
texts. A block is several runs of one conversation already packed into the row that
stores them (see ``pack_blocks``), so the child only hands bytes to SQLite. The child
ignores SIGINT and SIGTERM (a Ctrl+C in a terminal reaches the whole process group, and
the server must flush through it) and exits when its stdin closes, after committing.
"""

from __future__ import annotations

import json
import logging
import marshal
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from itertools import chain, count, islice, repeat
from operator import itemgetter, le
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# One run as sent: first seq, time_ms, target, source, command, recipient, tags (a tuple
# of (key, value) pairs, stored as JSON, '' when there are none), msgids, texts. Its
# messages have the sequences first seq, first seq + 1, ...
#
# A plain tuple, not a NamedTuple: the server makes one per read on its hot path, and a
# tuple subclass costs ~230 ns to make against ~45 ns for a tuple (more than 5% of a
# one-line message's server CPU); marshal, the child's wire format, also refuses
# subclasses. Read runs by unpacking or with the named getters below, never run[8].
Run = tuple[int, int, str, str, str, str, tuple[tuple[str, str], ...], list[str], list[str]]
run_seq = itemgetter(0)
run_time_ms = itemgetter(1)
run_target = itemgetter(2)
run_msgids = itemgetter(7)
run_texts = itemgetter(8)


# A block as sent: first seq, time_ms of its first run, target, message count, msgids
# joined by "\n", the runs as JSON text (an array of 9-element arrays, as Run below).
# A plain tuple for the same wire reason; a run has nine fields and a block six, which
# is how the child tells them apart. The first three fields (seq, time_ms, target)
# mean the same in both, so run_target reads either.
Block = tuple[int, int, str, int, str, str]
block_count = itemgetter(3)
_BLOCK_FIELDS = 6

# Bounds every block keeps, which queries rely on (history_queries.py): its messages'
# times lie within BLOCK_SPAN_MS of its first time, and their seqs less than BLOCK_SEQS
# after its first seq.
BLOCK_SPAN_MS = 250
BLOCK_SEQS = 4096


def run_size(run: Run) -> int:
    """How many messages a run holds."""
    return len(run_texts(run))


def run_last_seq(run: Run) -> int:
    """The sequence of a run's last message."""
    return run_seq(run) + len(run_texts(run)) - 1


def item_size(item: Run | Block) -> int:
    """How many messages a run or a block holds."""
    if len(item) == _BLOCK_FIELDS:
        return block_count(item)
    return run_size(item)  # type: ignore[arg-type]


def pack_blocks(runs: Sequence[Run]) -> list[Run | Block]:
    """``runs`` (in seq order) with each conversation's runs packed into blocks.

    Why: in a busy room most runs are one line (one read, one line), and SQLite costs
    ~2 µs per row whatever it holds, more than everything else the child does per
    message. A block is one row for a whole batch of a room. Its runs are stored as one
    JSON array, as they are (C speed, no per-message Python), in key order: a new block starts where
    the clock stepped back or a bound (BLOCK_SPAN_MS, BLOCK_SEQS) would be passed.
    A conversation with one run in the batch, or whose msgids hold a line break
    (nothing but the API can make one), keeps its runs as they are.
    """
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run_target(run), []).append(run)
    items: list[Run | Block] = []
    for group in groups.values():
        if len(group) == 1:
            items.append(group[0])
            continue
        for block in _split(group):
            if len(block) == 1:
                items.append(block[0])
                continue
            joined = "\n".join(chain.from_iterable(map(run_msgids, block)))
            size = sum(map(len, map(run_texts, block)))
            if joined.count("\n") != size - 1:
                items += block
                continue
            seq, time_ms, target, *_ = block[0]
            text = json.dumps(block, separators=(",", ":"), ensure_ascii=False)
            items.append((seq, time_ms, target, size, joined, text))
    return items


def _split(group: list[Run]) -> list[list[Run]]:
    """One conversation's runs cut where a block must end. The usual batch needs no cut,
    which is checked with C iterators before any Python loop over the runs."""
    times = list(map(run_time_ms, group))
    if (
        times[-1] - times[0] <= BLOCK_SPAN_MS
        and run_last_seq(group[-1]) - run_seq(group[0]) < BLOCK_SEQS
        and all(map(le, times, islice(times, 1, None)))
    ):
        return [group]
    blocks = [[group[0]]]
    for run in islice(group, 1, None):
        block = blocks[-1]
        first_time, first_seq = run_time_ms(block[0]), run_seq(block[0])
        if (
            run_time_ms(block[-1]) <= run_time_ms(run) <= first_time + BLOCK_SPAN_MS
            and run_last_seq(run) - first_seq < BLOCK_SEQS
        ):
            block.append(run)
        else:
            blocks.append([run])
    return blocks


def load_block(text: str | bytes) -> list[Run]:
    """The runs of a stored block (its JSON text); ValueError if it is not one."""
    try:
        runs = json.loads(text)
        return [
            (int(seq), int(time_ms), str(target), str(source), str(command), str(recipient),
             tuple((str(key), str(value)) for key, value in tags),
             [str(msgid) for msgid in msgids], [str(line) for line in texts])
            for seq, time_ms, target, source, command, recipient, tags, msgids, texts in runs
        ]  # fmt: skip
    except (ValueError, TypeError) as exc:  # not JSON, or not an array of runs
        raise ValueError(f"unreadable history block: {exc}") from exc


_HEADER = struct.Struct(">I")


def dm_pairs(key: str) -> list[tuple[str, str]]:
    """``(nick, peer)`` both ways round for a direct-message key (see history.dm_key);
    [] for a room."""
    if not key.startswith("dm:"):
        return []
    a, _, b = key[3:].partition(" ")
    return [(a, b), (b, a)] if b else []


_INSERT = "INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?,?,?)"
_ATTEMPTS = 5


def connect_for_writing(path: str | Path) -> sqlite3.Connection:
    """A connection set up the way the writer uses it (WAL, NORMAL sync, big cache)."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA synchronous = NORMAL")
    # A bigger page cache keeps the index pages hot: ~15% less CPU per insert.
    conn.execute("PRAGMA cache_size = -16384")
    return conn


def run_rows(items: Sequence[Run | Block]) -> list[tuple[Any, ...]]:
    """The rows (schema v4, see history.py) that store ``items``: one per block, one
    per run, or one per message for a run whose texts or msgids hold a line break."""
    rows: list[tuple[Any, ...]] = []
    add = rows.append
    for item in items:
        if len(item) == _BLOCK_FIELDS:
            seq, time_ms, target, n, ids, blob = item  # type: ignore[misc]
            add((seq, ids, time_ms, target, "", "", "", "", "", n, blob))
            continue
        seq, time_ms, target, source, command, recipient, tags, msgids, texts = item  # type: ignore[misc]
        tag_text = json.dumps(tags, separators=(",", ":")) if tags else ""
        n = len(texts)
        if n == 1:
            add((seq, msgids[0], time_ms, target, source, command, recipient, texts[0],
                 tag_text, 1, None))  # fmt: skip
            continue
        ids = "\n".join(msgids)
        joined = "\n".join(texts)
        if joined.count("\n") == ids.count("\n") == n - 1:
            add((seq, ids, time_ms, target, source, command, recipient, joined, tag_text, n,
                 None))  # fmt: skip
            continue
        rows += zip(
            count(seq),
            msgids,
            repeat(time_ms),
            repeat(target),
            repeat(source),
            repeat(command),
            repeat(recipient),
            texts,
            repeat(tag_text),
            repeat(1),
            repeat(None),
        )
    return rows


def write_rows(conn: sqlite3.Connection, items: Sequence[Run | Block]) -> tuple[int, int]:
    """Insert the messages of ``items`` (runs and blocks) in one transaction, retrying
    with backoff; ``(written, failed)``."""
    if not items:
        return 0, 0
    rows = run_rows(items)
    messages = sum(map(item_size, items))
    peers = {pair for key in set(map(run_target, items)) for pair in dm_pairs(key)}
    for attempt in range(_ATTEMPTS):
        try:
            conn.execute("BEGIN")
            conn.executemany(_INSERT, rows)
            if peers:
                conn.executemany("INSERT OR IGNORE INTO dm_peers VALUES (?, ?)", peers)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.warning("history commit of %d messages failed (%s), retrying", messages, exc)
            time.sleep(0.05 * 2**attempt)
        else:
            return messages, 0
    # Keeping them would grow memory without bound; they stay visible in memory until
    # the cache moves on, and the counter makes the loss show in logs.
    log.error("history: gave up writing %d messages", messages)
    return 0, messages


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_frame(fd: int) -> Any:
    """The next frame's value, or None at end of stream."""
    header = _read_exact(fd, _HEADER.size)
    if header is None:
        return None
    payload = _read_exact(fd, _HEADER.unpack(header)[0])
    return None if payload is None else marshal.loads(payload)


def write_frame(fd: int, value: Any) -> None:
    payload = marshal.dumps(value)
    _write_all(fd, _HEADER.pack(len(payload)) + payload)


def child_main(path: str) -> int:
    """The child's loop: a frame of runs and blocks in, one commit, ``(written, failed)``
    out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s chat_server.history_writer: %(message)s",
    )
    conn = connect_for_writing(path)
    try:
        while (items := read_frame(0)) is not None:
            write_frame(1, write_rows(conn, items))
    except BrokenPipeError:
        return 1
    finally:
        conn.close()
    return 0


class WriterProcess:
    """The parent's handle on one writer child; restarted once if it dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        package_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            [sys.executable, "-S", "-m", "chat_server.history_writer", str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._proc = proc
        return proc

    def write(self, runs: list[Run]) -> tuple[int, int]:
        """Have the child commit ``runs``; (written, failed). Blocks until it answers."""
        items = pack_blocks(runs)
        for attempt in range(2):
            try:
                proc = self._proc or self._start()
            except OSError as exc:
                log.error("cannot start the history writer process: %s", exc)
                break
            assert proc.stdin is not None and proc.stdout is not None
            try:
                write_frame(proc.stdin.fileno(), items)
                answer = read_frame(proc.stdout.fileno())
            except OSError as exc:
                answer = None
                log.debug("history writer pipe: %s", exc)
            if answer is not None:
                written, failed = answer
                return written, failed
            code = self._reap()
            retry = "restarting it" if attempt == 0 else "giving up on this batch"
            log.error("history writer process exited (code %s), %s", code, retry)
        return 0, sum(map(run_size, runs))

    def _reap(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        try:
            return proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def close(self) -> None:
        """Close the child's stdin; it commits nothing more and exits."""
        self._reap()


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1]))
