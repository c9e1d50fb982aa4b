"""Start real distchat (and other) servers for tests, on free loopback ports."""

from __future__ import annotations

from pathlib import Path

from chat_server.process import LOOPBACK, DaemonProcess, chat_server_command, free_port

__all__ = ["ServerProcess", "free_port"]


class ServerProcess(DaemonProcess):
    """A real ``chat-server`` process at log level INFO; ``start()`` waits for its
    ``listening on`` line, ``restart()`` comes back on the same port and history."""

    def __init__(
        self,
        tmp_path: Path,
        *extra_args: str,
        port: int | None = None,
        history_db: Path | None = None,
        flood_limit: bool = True,
    ) -> None:
        self.host = LOOPBACK
        self.port = port or free_port()
        self.history_db = history_db or (tmp_path / f"history-{self.port}.db")
        self.extra_args: list[str] = list(extra_args)
        if not flood_limit:
            self.extra_args.append("--no-flood-limit")
        cluster_node = "--redis" in self.extra_args  # its history is not a file
        command = chat_server_command(
            self.port, None if cluster_node else self.history_db, "--log-level", "INFO",
            *self.extra_args,
        )  # fmt: skip
        super().__init__(command, name="chat-server")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        return self.argv
