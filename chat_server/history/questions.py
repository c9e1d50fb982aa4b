"""Queries to the history worker that are waiting for their answers.

Each query gets a number; the worker answers in order (worker.py) with that number,
and the answer goes to the query's callback, decoded (pipe.decoded). A worker that
stops fails every waiting query at once; a worker that hangs (a stopped PostgreSQL, a
stuck disk) fails each query ANSWER_TIMEOUT after it was asked, so no client waits on
it longer, and an answer that comes after that is dropped.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from chat_server.history.pipe import Answer, decoded

log = logging.getLogger("chat_server.history.store")  # the store's lines, as before

ANSWER_TIMEOUT = 10.0  # seconds a query may wait for the worker before it fails


class Questions:
    """The waiting queries of one store (see the module docstring)."""

    def __init__(self) -> None:
        self._answers: dict[int, Answer] = {}
        self._asked: deque[tuple[float, int]] = deque()  # (deadline, qid), in asking order
        self._next_qid = 1
        self._given_up = 0  # queries failed by the timeout since the last log line
        self._logged = 0.0

    def new(self, kind: str, answer: Answer, *, timed: bool = True) -> int:
        """Number a query of ``kind`` whose result goes to ``answer``; ``timed``: fail it
        after ANSWER_TIMEOUT (the blocking ``call`` has a timeout of its own)."""
        qid = self._next_qid
        self._next_qid += 1
        self._answers[qid] = decoded(kind, answer)
        if timed:
            self._asked.append((time.monotonic() + ANSWER_TIMEOUT, qid))
        return qid

    def answered(self, qid: int, ok: bool, value: Any) -> None:
        answer = self._answers.pop(qid, None)
        if answer is not None:
            answer(ok, value)

    def fail_all(self, why: str) -> None:
        """The worker stopped: nothing asked of it will be answered."""
        answers, self._answers = self._answers, {}
        for answer in answers.values():
            answer(False, why)

    def give_up_late(self) -> None:
        """Fail the queries asked more than ANSWER_TIMEOUT ago (called every second)."""
        asked = self._asked
        now = time.monotonic()
        while asked and (asked[0][0] <= now or asked[0][1] not in self._answers):
            _, qid = asked.popleft()
            answer = self._answers.pop(qid, None)
            if answer is not None:
                self._given_up += 1
                answer(False, "the history database did not answer in time")
        if self._given_up and now - self._logged > 10:
            self._logged = now
            log.error("history: %d queries not answered within %.0f s",
                      self._given_up, ANSWER_TIMEOUT)  # fmt: skip
            self._given_up = 0
