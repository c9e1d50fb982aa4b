"""Noticing that our terminal is gone.

When a terminal window closes or tmux dies, the process is usually sent SIGHUP and
ends. Not always: a chat-tui whose tmux server was killed kept running with its
terminal deleted, and Textual's input thread read end-of-file from it in a loop,
spinning a core for an hour. So the app checks, once a second, that the terminal it
started on is still a terminal, and quits when it is not.

That is not always enough: after a SIGHUP with a local server, Textual's shutdown was
seen waiting forever for its input thread (which reads end-of-file in a loop), the
main thread blocked. ``exit_when_gone`` is the last resort, on a thread of its own:
a terminal gone for a few seconds more ends the process (after stopping the local
server).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable


class TerminalWatch:
    """Remembers whether standard input was a terminal at start (under tests and pipes
    it is not, and nothing is watched)."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self.watching = _is_terminal(fd)

    def gone(self) -> bool:
        """True once the terminal we started on is no longer one (hung up, closed)."""
        return self.watching and not _is_terminal(self.fd)


def _is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def exit_when_gone(watch: TerminalWatch, cleanup: Callable[[], None], grace: float = 5.0) -> None:
    """Start a daemon thread that, once the terminal has been gone ``grace`` seconds
    (the app's own check did not end us), runs ``cleanup`` and ends the process."""
    if not watch.watching:
        return

    def run() -> None:
        gone_since: float | None = None
        while True:
            time.sleep(1.0)
            if not watch.gone():
                gone_since = None
                continue
            now = time.monotonic()
            if gone_since is None:
                gone_since = now
            elif now - gone_since >= grace:
                try:
                    cleanup()
                finally:
                    os._exit(1)

    threading.Thread(target=run, name="terminal-watch", daemon=True).start()
