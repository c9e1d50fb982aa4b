"""A private PostgreSQL server for tests: its own data directory, a free loopback port,
trust authentication and (by default) no fsync.

PostgreSQL refuses to run as root, and CI runs as root: then ``initdb`` and ``postgres``
run as the ``postgres`` system user (``nobody`` without it) through ``setpriv``, which
execs in place, so the child we hold is the postmaster itself and our signals reach it
(``runuser`` would fork and stand in between).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

import psycopg
from psycopg import sql

from chat_server.process import LOOPBACK, DaemonProcess, DaemonStartError, free_port

SUPERUSER = "postgres"
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # safe in a URL path as it stands


def postgres_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``: the newest Debian
    ``/usr/lib/postgresql/*/bin`` (not on PATH), else wherever PATH has them."""

    def version(bindir: Path) -> tuple[int, ...]:
        try:
            return tuple(int(part) for part in bindir.parent.name.split("."))
        except ValueError:
            return (-1,)

    def complete(bindir: Path) -> bool:
        return all((bindir / tool).is_file() for tool in ("initdb", "postgres"))

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bindir in debian:
        if complete(bindir):
            return bindir
    found = shutil.which("postgres")
    if found is not None and complete(Path(found).parent):
        return Path(found).parent
    return None


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc): the postmaster's children, which
    each call setsid(), so no process group holds them all."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited while we looked
        if len(fields) > 1 and int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _gone(pid: int) -> bool:
    """Exited (a zombie has already released its memory, shared memory included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return True
    return not fields or fields[0] in ("Z", "X")


def _ready(line: str) -> bool:
    return "database system is ready to accept connections" in line


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as when we are root; None: run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in (SUPERUSER, "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root, and there is no postgres or nobody user to run as")


class PostgresProcess(DaemonProcess):
    """Start, stop, crash, hang and restart (same port, same data) a throwaway PostgreSQL.

    The data and socket directories live in a private temporary directory (removed by
    ``close()``): pytest's ``tmp_path`` sits under a root-only directory the
    ``postgres`` user cannot enter. The server log is appended to
    ``workdir/postgres-PORT.log`` across restarts, so a failing test can show it.
    """

    def __init__(self, workdir: Path, port: int | None = None, *, fsync: bool = False) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.fsync = fsync
        self.bindir = postgres_bindir()
        self.owner = _run_as()
        self.base: Path | None = None  # created by the first start(), removed by close()
        self._paused: list[int] = []
        # The command is set by start(): the directories it names do not exist yet.
        super().__init__(
            ["postgres"], ready=_ready, name="postgres", grace=15.0, start_timeout=30.0,
            log_file=workdir / f"postgres-{self.port}.log", append_log=True,
            env={**os.environ, "LC_ALL": "C"},
        )  # fmt: skip

    @property
    def url(self) -> str:
        """The superuser's URL for the ``postgres`` database."""
        return self.database_url(SUPERUSER)

    def database_url(self, name: str) -> str:
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{name}"

    @property
    def datadir(self) -> Path:
        if self.base is None:
            raise RuntimeError("the server has not been started")
        return self.base / "data"

    def _as_owner(self, command: list[str]) -> list[str]:
        """``command`` as the unprivileged owner when we are root."""
        if self.owner is None:
            return command
        uid, gid = self.owner
        return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *command]

    def _prepare(self) -> None:
        """A fresh temporary directory the owner can use, and ``initdb`` in it (once)."""
        if self.bindir is None:
            raise RuntimeError("PostgreSQL is not installed (scripts/test installs it)")
        if self.base is None:
            self.base = Path(tempfile.mkdtemp(prefix="pg-"))  # short: socket paths are limited
            (self.base / "sock").mkdir()
            if self.owner is not None:
                for path in (self.base, self.base / "sock"):
                    os.chown(path, *self.owner)
        if (self.datadir / "PG_VERSION").exists():
            return
        command = [
            str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", SUPERUSER,
            "--auth-local=trust", "--auth-host=trust", "--no-sync", "-E", "UTF8",
            "--locale=C", "--no-instructions",
        ]  # fmt: skip
        done = subprocess.run(
            self._as_owner(command), stdin=subprocess.DEVNULL, capture_output=True, text=True,
            errors="replace", cwd=self.base, env=self.env, timeout=120, check=False,
        )  # fmt: skip
        assert self.log_file is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("a") as log:
            log.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise DaemonStartError(f"initdb exited with {done.returncode}:\n{done.stderr}")

    def start(self, timeout: float | None = None) -> Self:
        """initdb on the first start, then the server; later starts reuse port and data."""
        self._prepare()
        assert self.bindir is not None and self.base is not None
        command = [
            str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port),
            "-h", LOOPBACK, "-k", str(self.base / "sock"),
        ]  # fmt: skip
        if not self.fsync:
            command += ["-c", "fsync=off"]  # a test's data need not survive the machine
        self.argv = self._as_owner(command)
        self.cwd = self.base
        self._paused = []
        return super().start(timeout)

    def stop(self, sig: int = signal.SIGINT, timeout: float | None = None) -> int | None:
        """Shut down (default SIGINT: PostgreSQL's fast shutdown) and wait; if it takes
        longer than ``timeout``, kill the whole server instead."""
        proc = self.proc
        if proc is None:
            return None
        if sig == signal.SIGKILL:
            return self.kill()
        self.resume()  # a stopped postmaster cannot shut down
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
        try:
            proc.wait(self.grace if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            return self.kill()
        if self._pump is not None:
            self._pump.join(2.0)
        return proc.returncode

    def kill(self, timeout: float = 10.0) -> int | None:
        """SIGKILL the postmaster and its children, as a crash of the machine would, and
        wait until all are gone. Orphaned backends would otherwise keep serving open
        connections and hold the shared memory that a restart needs."""
        proc = self.proc
        if proc is None:
            return None
        children: list[int] = []
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGSTOP)  # no new children while we list them
            children = child_pids(proc.pid)
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.kill()
        proc.wait(timeout)
        deadline = time.monotonic() + timeout
        while not all(_gone(pid) for pid in children):
            if time.monotonic() > deadline:
                raise TimeoutError(f"postgres children {children} outlived SIGKILL")
            time.sleep(0.01)
        self._paused = []
        if self._pump is not None:
            self._pump.join(2.0)  # EOF once the children, which share the pipe, are gone
        return proc.returncode

    def pause(self) -> None:
        """SIGSTOP the postmaster and every child: a hung server. New connections hang
        in the listen backlog and open sessions hang mid-query, until ``resume()``."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError("postgres is not running")
        os.kill(proc.pid, signal.SIGSTOP)  # first: a stopped postmaster forks no more
        self._paused = [proc.pid, *child_pids(proc.pid)]
        for pid in self._paused[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT what ``pause()`` stopped: children first, the postmaster last."""
        for pid in reversed(self._paused):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._paused = []

    @property
    def paused(self) -> bool:
        return bool(self._paused)

    def database(self, name: str) -> str:
        """Create database ``name`` (lowercase letters, digits, _) and return its URL."""
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"not a plain database name: {name!r}")
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, ending any sessions still connected to it."""
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def close(self) -> None:
        """Stop the server and remove its data and socket directories."""
        self.stop()
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def __exit__(self, *exc: object) -> None:
        self.close()
