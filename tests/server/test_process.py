"""chat_server.process: the one way benchmarks, chat-perf, chat-tui and the tests start,
wait for and stop server processes. Small Python children stand in for servers."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from chat_server.process import DaemonProcess, DaemonStartError, pinned


def child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


READY_THEN_WAIT = "import time; print('hello'); print('listening on 127.0.0.1:1'); time.sleep(60)"


def test_start_waits_for_the_ready_line_and_stop_terminates(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "server.log"
    with DaemonProcess(child(READY_THEN_WAIT), log_file=log_file) as proc:
        assert proc.running and proc.pid
        assert proc.log[:2] == ["hello", "listening on 127.0.0.1:1"]
        assert proc.wait_log("hello") == "hello"
    assert proc.returncode == -signal.SIGTERM
    assert log_file.read_text() == "hello\nlistening on 127.0.0.1:1\n"


def test_exit_before_ready_says_so_with_the_last_lines() -> None:
    proc = DaemonProcess(child("import sys; print('cannot listen: in use'); sys.exit(3)"))
    with pytest.raises(DaemonStartError, match=r"exited with 3:\ncannot listen: in use"):
        proc.start()


def test_silence_is_a_timeout_and_the_process_is_stopped() -> None:
    proc = DaemonProcess(child("import time; print('booting'); time.sleep(60)"), name="quiet")
    started = time.monotonic()
    with pytest.raises(DaemonStartError, match=r"quiet logged no ready line within 0\.5 s"):
        proc.start(timeout=0.5)
    assert time.monotonic() - started < 5 and not proc.running


def test_sigterm_ignored_means_sigkill_after_the_grace_period() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('listening on x', flush=True); time.sleep(60)"
    )
    proc = DaemonProcess(child(code), grace=0.3).start()
    assert proc.stop() == -signal.SIGKILL


def test_restart_gives_a_fresh_log_and_keep_lines_bounds_it() -> None:
    code = "import time; [print(i) for i in range(50)]; print('listening on'); time.sleep(60)"
    proc = DaemonProcess(child(code), keep_lines=10).start()
    try:
        assert 10 <= len(proc.log) <= 20 and proc.log[-1] == "listening on"
        proc.restart()
        assert proc.log[-1] == "listening on" and proc.log.count("listening on") == 1
    finally:
        proc.stop()
    assert proc.stop() == -signal.SIGTERM  # stopping twice is harmless


def test_pinned_prefixes_taskset_only_when_asked() -> None:
    assert pinned(["srv"], None) == ["srv"]
    assert pinned(["srv"], "1") == ["taskset", "-c", "1", "srv"]
