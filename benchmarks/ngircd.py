"""Run Debian's ngircd as a benchmark opponent: loopback only, penalties and limits off."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

NGIRCD = shutil.which("ngircd") or "/usr/sbin/ngircd"

# ngircd.conf(5): MaxPenaltyTime = 0 disables flood penalties; MaxConnectionsIP = 0 lifts
# the per-address cap (every simulated client comes from 127.0.0.1); no DNS/ident/PAM so
# registration is not slowed by lookups — the same footing as chat-server --no-flood-limit.
CONFIG = """\
[Global]
Name = bench.ngircd.local
Info = ngircd for chat-perf benchmarks
AdminInfo1 = benchmark
AdminInfo2 = benchmark
AdminEMail = bench@localhost
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = benchmark
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 600
[Options]
DNS = no
Ident = no
PAM = no
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NgircdProcess:
    """``ngircd -n -f CONF`` in ``workdir`` on a free port, optionally pinned with taskset."""

    def __init__(self, workdir: Path, cpus: str | None = None, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.cpus = cpus
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.workdir / f"ngircd-{self.port}.conf"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 10.0) -> NgircdProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(CONFIG.format(port=self.port))
        self.conf.chmod(0o644)  # ngircd drops to user nobody when started as root
        cmd = [NGIRCD, "-n", "-f", str(self.conf)]
        if self.cpus:
            cmd = ["taskset", "-c", self.cpus, *cmd]
        log = (self.workdir / f"ngircd-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ngircd exited with {self.proc.returncode}; see {log.name}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"QUIT\r\n")
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("ngircd did not start listening")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> NgircdProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
