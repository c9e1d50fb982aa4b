"""Run Debian's ngircd as a benchmark opponent: loopback only, penalties and limits off."""

from __future__ import annotations

import shutil
from pathlib import Path

from chat_server.process import LOOPBACK, DaemonProcess, free_port, pinned

__all__ = ["CONFIG", "NGIRCD", "NgircdProcess", "free_port"]

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


def _ngircd_ready(line: str) -> bool:
    """ngircd -n logs ``Server "NAME" (on "HOST") ready.`` once every listener is open."""
    return line.rstrip().endswith("ready.") and "Server " in line


class NgircdProcess(DaemonProcess):
    """``ngircd -n -f CONF`` in ``workdir`` on a free port, optionally pinned with taskset;
    its console log goes to ``workdir/ngircd-PORT.log``."""

    def __init__(self, workdir: Path, cpus: str | None = None, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.cpus = cpus
        self.conf = self.workdir / f"ngircd-{self.port}.conf"
        super().__init__(
            pinned([NGIRCD, "-n", "-f", str(self.conf)], cpus), ready=_ngircd_ready,
            name="ngircd", log_file=self.workdir / f"ngircd-{self.port}.log",
            keep_lines=1_000, own_session=True, start_timeout=10.0,
        )  # fmt: skip

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self, timeout: float | None = None) -> NgircdProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(CONFIG.format(port=self.port))
        self.conf.chmod(0o644)  # ngircd drops to user nobody when started as root
        return super().start(timeout)
