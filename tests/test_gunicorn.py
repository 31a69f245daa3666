"""Several processes: the same mixed load as test_load.py against
`gunicorn run:application` with 2 worker processes, each with its own SQLite
connection to one temporary COMMENTS_DB. The store must stay consistent across
workers: nothing lost, nothing duplicated, ids never reused.

gunicorn is started by the test on a free 127.0.0.1 port and stopped in
teardown; the test is skipped when gunicorn is not installed.
"""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("gunicorn")

from test_load import run_clients, verify_final_state  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_pids(master: int) -> list[int]:
    """Child processes of the gunicorn master (Linux /proc)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            children.append(int(entry))
    return children


class Gunicorn:
    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "comments.db"
        self.log = tmp_path / "gunicorn.log"
        self.access_log = tmp_path / "access.log"
        self.port = free_port()
        env = dict(os.environ, COMMENTS_DB=str(self.db), UPLOADS_DIR=str(tmp_path / "uploads"))
        env.pop("GUNICORN_CMD_ARGS", None)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "run:application",
                 "--workers", str(WORKERS), "--bind", f"127.0.0.1:{self.port}",
                 "--chdir", str(ROOT), "--timeout", "60", "--graceful-timeout", "5",
                 # One line per request: "<worker pid> <status>".
                 "--access-logfile", str(self.access_log), "--access-logformat", "%(p)s %(s)s"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/hello")
                if conn.getresponse().status == 200 and len(worker_pids(self.process.pid)) == WORKERS:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail(f"gunicorn was not ready within {timeout} s:\n{self.tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


@pytest.fixture
def gunicorn(tmp_path) -> Iterator[Gunicorn]:
    server = Gunicorn(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
    assert server.process.returncode is not None


def test_two_worker_processes_keep_the_store_consistent(gunicorn):
    workers = worker_pids(gunicorn.process.pid)
    assert len(workers) == WORKERS
    # Sync workers answer one request at a time each and close the connection
    # after it; http.client reconnects for the next request by itself.
    ledger, clients = run_clients(gunicorn.port, count=6, requests=150, timeout=150)
    try:
        verify_final_state(ledger, clients, gunicorn.port, gunicorn.db)
    except AssertionError:
        print(gunicorn.tail())
        raise
    # Both workers were still alive at the end (none crashed and was replaced).
    assert sorted(worker_pids(gunicorn.process.pid)) == sorted(workers)
    # And both served a share of the load.
    served: dict[str, int] = {}
    for line in gunicorn.access_log.read_text().splitlines():
        pid = line.split()[0].strip("<>")
        served[pid] = served.get(pid, 0) + 1
    assert {str(p) for p in workers} <= set(served), served
    assert min(served[str(p)] for p in workers) >= 20, served
