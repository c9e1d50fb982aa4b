"""Running out of file descriptors: the server fits max_clients to its limit at start,
and when accept fails with EMFILE anyway it pauses accepting instead of spinning."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from chat_server.process import DaemonProcess, free_port
from tests.support.rawclient import RawClient

# chat-server with its open-file limit lowered to 64 before it starts.
LIMITED_SERVER = (
    "import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)); "
    "from chat_server.cli import main; sys.argv[0] = 'chat-server'; sys.exit(main())"
)


def test_max_clients_is_fitted_to_the_descriptor_limit(tmp_path: Path) -> None:
    """With 64 descriptors, 20,000 clients cannot be served: the server says so at
    start and refuses the clients over the fitted limit politely."""
    port = free_port()
    command = [sys.executable, "-c", LIMITED_SERVER, "--host", "127.0.0.1",
               "--port", str(port), "--history-db", str(tmp_path / "h.db"), "--no-flood-limit"]
    server = DaemonProcess(command, name="chat-server").start()  # fmt: skip
    clients: list[RawClient] = []
    try:
        assert any("max_clients lowered from 20000 to 32" in line for line in server.log)
        refused = 0
        for _ in range(40):
            client = RawClient("127.0.0.1", port)
            clients.append(client)
            line = client.sock.recv(200) if len(clients) > 32 else b""
            refused += b"Too many connections on this server" in line
        assert refused == 8
        clients[0].register("first")  # the ones within the limit are served
    finally:
        for client in clients:
            client.close()
        server.stop()


EMFILE_PROBE = textwrap.dedent(
    """
    import resource, socket
    from chat_server.config import ServerConfig
    from chat_server.history import HistoryStore
    from chat_server.server import Server

    resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
    server = Server(ServerConfig(flood_limit=False, max_clients=10_000), HistoryStore(None))
    server.listen()
    calls = 0
    accept = server.listener._accept

    def counted(listener):
        global calls
        calls += 1
        accept(listener)

    server.listener._accept = counted
    port = server.config.port
    clients = []

    # The client sockets count against the same limit: 30 of them leave room to
    # accept about a dozen; the rest wait in the listen queue while accept fails.
    for _ in range(30):
        clients.append(socket.create_connection(("127.0.0.1", port), timeout=2))
    server.loop.call_later(1.0, server.loop.stop)
    server.loop.run()
    print(calls, len(server.conns), len(clients), flush=True)
    """
)


def test_at_the_descriptor_limit_accept_pauses_instead_of_spinning() -> None:
    """EMFILE left the pending connect readable and the loop called accept again at
    once: 100 % CPU and megabytes of log a second. Now it retries four times a second."""
    probe = subprocess.run(
        [sys.executable, "-c", EMFILE_PROBE], capture_output=True, text=True, timeout=60
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    calls, accepted, _ = map(int, probe.stdout.split())
    assert accepted > 0
    assert calls <= 12, f"accept called {calls} times in one second at the limit"
    assert probe.stderr.count("not accepting for now") == 1, probe.stderr[-2000:]
