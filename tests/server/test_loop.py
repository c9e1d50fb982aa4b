"""The event loop on its own: rounds, after-I/O hooks, timers, failing callbacks."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from chat_server.loop import HOOK_EVERY, EventLoop


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made: list[tuple[socket.socket, socket.socket]] = []
    yield made
    for a, b in made:
        a.close()
        b.close()


def ready_readers(
    loop: EventLoop, pairs: list[tuple[socket.socket, socket.socket]], n: int, seen: list[int]
) -> None:
    """``n`` sockets with a byte waiting, each read once by its callback."""
    for i in range(n):
        a, b = socket.socketpair()
        a.setblocking(False)
        pairs.append((a, b))
        b.send(b"x")

        def on_read(mask: int, sock: socket.socket = a, index: int = i) -> None:
            sock.recv(16)
            seen.append(index)
            if len(seen) == n:
                loop.stop()

        loop.add_reader(a, on_read)


def test_a_big_round_runs_the_hooks_every_so_many_events(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    loop = EventLoop()
    seen: list[int] = []
    n = 2 * HOOK_EVERY + 44
    ready_readers(loop, pairs, n, seen)
    at_hook: list[int] = []
    loop.after_io(lambda: at_hook.append(len(seen)))
    loop.run()
    # One round (every socket was ready at the first select): the hooks ran inside it
    # after each HOOK_EVERY events, and once at its end.
    assert sorted(seen) == list(range(n))
    assert at_hook == [HOOK_EVERY, 2 * HOOK_EVERY, n]


def test_a_round_of_exactly_hook_every_runs_the_hooks_once(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    loop = EventLoop()
    seen: list[int] = []
    ready_readers(loop, pairs, HOOK_EVERY, seen)
    at_hook: list[int] = []
    loop.after_io(lambda: at_hook.append(len(seen)))
    loop.run()
    assert at_hook == [HOOK_EVERY]


def test_failing_callbacks_and_hooks_are_logged_not_fatal(
    pairs: list[tuple[socket.socket, socket.socket]], caplog: pytest.LogCaptureFixture
) -> None:
    loop = EventLoop()
    a, b = socket.socketpair()
    a.setblocking(False)
    pairs.append((a, b))
    b.send(b"x")
    rounds: list[int] = []

    def broken(mask: int) -> None:
        a.recv(16)
        raise RuntimeError("callback bug")

    def hook() -> None:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("hook bug")

    loop.add_reader(a, broken)
    loop.after_io(hook)
    loop.call_later(0.05, loop.stop)
    loop.run()
    assert len(rounds) >= 2  # the loop went on after both failures
    assert "error in I/O callback" in caplog.text
    assert "error in after-I/O hook" in caplog.text
