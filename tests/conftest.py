from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
import typing as t

import pytest

SECRET = "test-secret-key-0123456789"


@pytest.fixture(autouse=True)
def _secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with a secret key in the environment, as a deployment would."""
    monkeypatch.setenv("ACTIONKIT_SECRET_KEY", SECRET)


@pytest.fixture(scope="session")
def redis_url() -> t.Iterator[str]:
    """A private redis-server for this test session (never the one on 6379)."""
    directory = tempfile.mkdtemp(prefix="actionkit-redis-")
    server = RedisServer(directory)
    try:
        server.start()
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A private redis-server that a test may pause, kill and start again on the same port.

    It keeps no data across a restart unless the test saved a snapshot (``SAVE``) into its
    directory, which a restart then loads.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        assert server, (
            "redis-server is missing: `make test` installs it (apt-get install redis-server)"
        )
        self.process = subprocess.Popen(
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.ping():
            assert self.process.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel and never answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.process is not None and self.paused:
            self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        """SIGKILL: gone at once, with whatever it held in memory."""
        if self.process is not None:
            self.resume()
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[RedisServer]:
    """A private redis-server for one test, which it may pause, kill and restart (stopped at
    the end whatever state it is in)."""
    server = RedisServer(str(tmp_path_factory.mktemp("redis")))
    try:
        server.start()
        yield server
    finally:
        server.stop()
