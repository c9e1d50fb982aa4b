"""Noticing that our terminal is gone.

When a terminal window closes or tmux dies, the process is usually sent SIGHUP and
ends. Not always: a chat-tui whose tmux server was killed kept running with its
terminal deleted, and Textual's input thread read end-of-file from it in a loop,
spinning a core for an hour. So the app checks, once a second, that the terminal it
started on is still a terminal, and quits when it is not.
"""

from __future__ import annotations

import os


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
