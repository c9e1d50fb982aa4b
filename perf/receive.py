"""The receive path of joined clients: read every ready socket into one shared buffer,
then measure the whole batch at once.

Why batches: one worker core has to keep up with millions of deliveries a second, a few
hundred nanoseconds each. Per line Python work is out of the question, and even per
socket the numpy calls would cost more than the lines they process. So each loop turn
``read()`` appends whatever each readable client has (complete lines only; a partial last
line waits in ``client.rbuf``) to one large reused buffer with ``recv_into``, and
``process()`` then scans all of it (``perf.linescan``), books every payload into its
(receiver, sender) stream (``perf.streams``), records every latency (receive time of
the chunk minus the scheduled time carried in the message), acknowledges senders, and
hands everything that is not a fast-path payload to the per-line slow path.

A chunk's receive time is read from the clock after its ``recv_into`` returned, never
before: a read may first measure a full batch and refill senders' windows, and the
deliveries of those new messages can come back in this very read. Stamped before the
read, they had negative latencies.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import numpy as np

from perf import clock
from perf.linescan import LineScanner, Scan
from perf.order import ArrivalLog, ArrivalOrders
from perf.payload import body_len, parse_body
from perf.sequence import StreamTally, new_state, observe
from perf.streams import ECHO, NEW, StreamTable
from perf.tls import WOULD_BLOCK, read_records

if TYPE_CHECKING:
    from perf.connection import Client
    from perf.worker import Worker

RECV_MAX = 256 << 10  # bytes per recv_into
# A batch is measured once it holds this much: big enough to spread numpy's per-call
# overhead over thousands of lines, small enough for its temporaries to stay in cache.
BATCH_BYTES = 256 << 10
# While sockets keep being ready, reads pile up into one batch for at most this long
# (acks wait that long; latencies do not, they are stamped at recv time).
MAX_HOLD_US = 2_000
MAX_LINE = RECV_MAX  # a partial line longer than this is not IRC: the client is failed
BUFFER_SIZE = BATCH_BYTES + MAX_LINE + RECV_MAX


class ReceivePath:
    """Shared receive buffer, line scanner and stream accounting of one worker."""

    def __init__(self, worker: Worker, sender_rooms: dict[int, str], msg_size: int) -> None:
        self.worker = worker
        self.meas = worker.meas
        self.clients = worker.clients
        self.sender_rooms = sender_rooms
        self.home_rooms = {sid: room.lower() for sid, room in sender_rooms.items()}
        self.scanner = LineScanner(
            body_len(msg_size), {sid: room.encode() for sid, room in sender_rooms.items()}
        )
        self.buf = bytearray(BUFFER_SIZE)
        self.view = memoryview(self.buf)
        self.arr = np.frombuffer(self.buf, dtype=np.uint8)
        self.used = 0
        self.seg_client: list[Client] = []
        self.seg_end: list[int] = []
        self.seg_time: list[int] = []
        # Per client slot (position in worker.clients): its sender id.
        self.slot_index = np.array([c.index for c in self.clients], dtype=np.int64)
        for slot, c in enumerate(self.clients):
            c.slot = slot
        self.reads = 0  # recv() calls that returned data
        self.lines = 0  # lines measured or handled (payloads, echoes, control lines)
        self._at_open = (0, 0)
        self.window_counts = (0, 0)  # (reads, lines) during the traffic window
        self.streams = StreamTable([c.index for c in self.clients], sorted(sender_rooms))
        self.witness_ids = np.empty(0, dtype=np.int64)  # streams whose arrivals ack a sender
        self.witness_of: list[Client] = []
        # Deliveries the fast path cannot key by (receiver, sender): a payload relayed
        # to a room its sender does not speak in. Counted the old way, line by line.
        self.stray: dict[tuple[int, int, str], list] = {}
        # Room code (perf.measurements.RawSample) of each sender's room, for raw rows.
        size = max(sender_rooms, default=-1) + 1
        self.room_code = np.zeros(max(size, 1), dtype=np.int64)
        for sid, room in sender_rooms.items():
            self.room_code[sid] = self.meas.raw.room_code(room)
        # Who got which message in what order, for the check that a room's members all
        # saw one order (perf.order).
        self.arrivals = ArrivalLog()

    # -- reading ----------------------------------------------------------------------------

    def read(self, client: Client) -> None:
        """One recv() of a joined client, appended to the batch (stamped after it).

        Over TLS one recv() yields one record at most: the records behind it are read
        at once (up to RECV_MAX in all), as one plain recv() would take them all."""
        carry = client.rbuf
        n0 = len(carry)
        if self.used + n0 + RECV_MAX > len(self.buf):
            if n0 > MAX_LINE:
                client.fail(f"line longer than {MAX_LINE} bytes")
                return
            self.process()
        off = self.used
        if n0:
            self.buf[off : off + n0] = carry
        sock = client.sock
        try:
            n = sock.recv_into(self.view[off + n0 :], RECV_MAX)  # type: ignore[union-attr]
        except WOULD_BLOCK:
            return
        except OSError as exc:
            self._closing(client, f"recv: {exc.strerror or exc}")
            return
        if not n:
            self._closing(client, "closed by server")
            return
        if isinstance(sock, ssl.SSLSocket):
            more, again = read_records(sock, self.view[off + n0 + n :], RECV_MAX - n)
            n += more
            if again:
                self.worker.read_again(client)
        t_read = clock.now_us()
        self.reads += 1
        end = off + n0 + n
        cut = self.buf.rfind(b"\n", off, end) + 1
        if cut == 0:
            client.rbuf = bytes(self.view[off:end])
            return
        client.rbuf = bytes(self.view[cut:end]) if cut < end else b""
        self.seg_client.append(client)
        self.seg_end.append(cut)
        self.seg_time.append(t_read)
        self.used = cut
        if cut >= BATCH_BYTES:
            self.process()

    def _closing(self, client: Client, reason: str) -> None:
        """The connection ended: first measure what it sent before (its last lines may be
        the server's ``ERROR :Closing link: ... (SendQ exceeded)``, the better reason)."""
        if client in self.seg_client:
            self.process()
        client.fail(reason)

    def add(self, client: Client, data: bytes, now_us: int) -> None:
        """Complete lines a client read before it was ready (they follow its last 366)."""
        if not data:
            return
        if len(self.buf) - self.used < len(data) + RECV_MAX:
            self.process()
            if len(self.buf) < len(data) + RECV_MAX:
                self._grow(len(data) + RECV_MAX)
        end = self.used + len(data)
        self.buf[self.used : end] = data
        self.seg_client.append(client)
        self.seg_end.append(end)
        self.seg_time.append(now_us)
        self.used = end

    @property
    def pending(self) -> bool:
        """Lines read but not measured yet (the loop must not sleep on them)."""
        return bool(self.seg_client)

    def settle(self, busy: bool, now_us: int) -> None:
        """After a loop turn: measure the batch unless more data is coming right away.

        When the last select() found nothing ready (``busy`` false) the batch is measured
        at once; while sockets keep being ready, reads accumulate (up to ``BATCH_BYTES``
        or ``MAX_HOLD_US``) so numpy's fixed cost per batch is spread over many lines
        exactly when the generator is loaded.
        """
        if self.seg_client and (not busy or now_us - self.seg_time[0] >= MAX_HOLD_US):
            self.process()

    def open_window(self) -> None:
        """Traffic starts: count reads and lines from here (for the generator's report)."""
        self._at_open = (self.reads, self.lines)

    def close_window(self) -> None:
        self.process()
        self.window_counts = (self.reads - self._at_open[0], self.lines - self._at_open[1])

    def _grow(self, size: int) -> None:
        """A bigger (empty) buffer; only between batches."""
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.arr = np.frombuffer(self.buf, dtype=np.uint8)

    # -- measuring --------------------------------------------------------------------------

    def process(self) -> None:
        """Measure everything read since the last call, then refill senders' windows at
        once (not after the whole loop turn), so the server has new messages while we
        measure the rest of what it sent."""
        if not self.seg_client:
            self.used = 0
            return
        self._measure()
        if self.worker.wants_send:
            self.worker.refill_windows()

    def _measure(self) -> None:
        seg_client, seg_end, seg_time = self.seg_client, self.seg_end, self.seg_time
        self.seg_client, self.seg_end, self.seg_time = [], [], []
        used, self.used = self.used, 0
        scan = self.scanner.scan(self.arr[:used])
        self.lines += len(scan)
        ends = np.array(seg_end, dtype=np.int64)
        lines_before = scan.ends.searchsorted(ends)
        lines_per_seg = lines_before.copy()
        lines_per_seg[1:] -= lines_before[:-1]
        ok = scan.ok
        if not ok.all():
            self._slow_lines(scan, ends, seg_client, seg_time)
        slot_of = np.array([c.slot for c in seg_client], dtype=np.int64)
        slots = np.repeat(slot_of, lines_per_seg)
        t = np.repeat(np.array(seg_time, dtype=np.int64), lines_per_seg)
        sender, seq, sched = scan.sender, scan.seq, scan.sched
        if not ok.all():
            picked = ok.nonzero()[0]
            if not len(picked):
                return
            slots, t = slots[picked], t[picked]
            sender, seq, sched = sender[picked], seq[picked], sched[picked]
        lat = t - sched
        ids = self.streams.lookup(slots, sender)
        if ids.min() < 0:
            echo = ids == ECHO
            if echo.any():
                self._echoes(slots[echo], lat[echo])
                keep = ~echo
                slots, sender, seq, sched, lat, t = (
                    a[keep] for a in (slots, sender, seq, sched, lat, t)
                )
                ids = ids[keep]
                if not len(ids):
                    return
            if ids.min() == NEW:
                ids = self._add_streams(slots, sender, ids)
        self.streams.observe(ids, seq)
        self.arrivals.add(slots, sender, seq, sched)
        self._deliveries(ids, slots, sender, seq, lat, t)

    def _deliveries(
        self,
        ids: np.ndarray,
        slots: np.ndarray,
        sender: np.ndarray,
        seq: np.ndarray,
        lat: np.ndarray,
        t: np.ndarray,
    ) -> None:
        worker, meas = self.worker, self.meas
        n = len(ids)
        meas.add_latencies(lat)
        meas.delivered[worker.cur_interval] += n
        meas.delivered_total += n
        if len(self.witness_ids):
            acks = np.bincount(ids, minlength=self.streams.count)[self.witness_ids]
            for i in acks.nonzero()[0].tolist():
                sender_client = self.witness_of[i]
                sender_client.in_flight -= int(acks[i])
                worker.wants_send.add(sender_client)
        if worker.sampling_raw:
            meas.raw.add_columns(
                t - worker.start_us,
                lat,
                sender,
                seq,
                self.room_code[sender],
                self.slot_index[slots],
            )

    def _echoes(self, slots: np.ndarray, lat: np.ndarray) -> None:
        """A sender's own messages coming back (echo-message): latency and acks."""
        self.meas.add_echo_latencies(lat)
        counts = np.bincount(slots)
        for slot in counts.nonzero()[0].tolist():
            client = self.clients[slot]
            if client.echo_ack:
                client.in_flight -= int(counts[slot])
                self.worker.wants_send.add(client)

    def _add_streams(self, slots: np.ndarray, sender: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """First arrivals of new (receiver, sender) streams: register them."""
        new = ids == NEW
        pairs = {(a, b) for a, b in zip(slots[new].tolist(), sender[new].tolist(), strict=True)}
        for slot, sid in sorted(pairs):
            stream = self.streams.add(slot, sid)
            sender_client = self.worker.witness_sender(
                self.clients[slot], sid, self.sender_rooms[sid]
            )
            if sender_client is not None:
                self.witness_ids = np.append(self.witness_ids, stream)
                self.witness_of.append(sender_client)
        return self.streams.lookup(slots, sender)

    # -- the slow path ----------------------------------------------------------------------

    def _slow_lines(
        self, scan: Scan, seg_ends: np.ndarray, seg_client: list[Client], seg_time: list[int]
    ) -> None:
        """Lines the scanner did not take: payloads in another shape, control lines."""
        starts = scan.starts()
        odd = (~scan.ok).nonzero()[0]
        seg = np.searchsorted(seg_ends, scan.ends[odd], side="right")
        for k, i in enumerate(odd.tolist()):
            line = bytes(self.view[int(starts[i]) : int(scan.ends[i]) + 1])
            client = seg_client[int(seg[k])]
            now = seg_time[int(seg[k])]
            found = parse_body(line)
            if found is None:
                if line.strip():
                    client.on_control_line(line, now)
                continue
            room, sid, seq, sched = found
            home = self.home_rooms.get(sid)
            if sid != client.index and (home is None or room.decode().lower() != home):
                self._stray(client, room.decode(), sid, seq, sched, now)
                continue
            # A payload after all (e.g. a server that renders it differently): hand it
            # back to the fast path so its stream keeps one consistent order.
            scan.ok[i] = True
            scan.sender[i] = sid
            scan.seq[i] = seq
            scan.sched[i] = sched

    def _stray(self, client: Client, room: str, sid: int, seq: int, sched: int, now: int) -> None:
        st = self.stray.get((client.slot, sid, room))
        if st is None:
            st = self.stray[(client.slot, sid, room)] = new_state()
        observe(st, seq)
        self.meas.add_latencies([now - sched])
        self.meas.delivered[self.worker.cur_interval] += 1
        self.meas.delivered_total += 1

    # -- results ----------------------------------------------------------------------------

    def arrival_orders(self) -> ArrivalOrders:
        """Each receiver's arrival order per room (perf.order), to compare with others'."""
        return self.arrivals.export(self.slot_index, self.room_code, self.meas.raw.rooms)

    def tallies(self) -> dict[tuple[int, str], StreamTally]:
        """Receivers' view per (sender, room), summed over this worker's receivers."""
        acc: dict[tuple[int, str], StreamTally] = {}
        for stream, (_slot, sid) in enumerate(self.streams.owner):
            key = (sid, self.sender_rooms[sid])
            acc.setdefault(key, StreamTally()).merge(self.streams.tally(stream))
        for (_slot, sid, room), st in self.stray.items():
            acc.setdefault((sid, room), StreamTally()).add_state(st)
        return acc
