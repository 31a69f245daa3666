"""Fixtures shared by the test suite.

- `live_server`: the example app in app/ served by waitress on 127.0.0.1 at a
  free port, with its own empty comments database and uploads folder; yields
  the base URL ("http://127.0.0.1:PORT").
- `client`: the same app called in-process through `TestClient`, every
  exchange checked by wsgiref's PEP 3333 validator.
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Iterator
from wsgiref.validate import validator

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from minirouter import App, TestClient  # noqa: E402

APP_DIR = ROOT / "app"


@pytest.fixture
def example_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point COMMENTS_DB and UPLOADS_DIR at a fresh temporary folder, returned."""
    monkeypatch.setenv("COMMENTS_DB", str(tmp_path / "comments.db"))
    monkeypatch.setenv("UPLOADS_DIR", str(tmp_path / "uploads"))
    return tmp_path


@pytest.fixture
def example_app(example_env: Path) -> Iterator[App]:
    """A fresh App over app/: each App imports its routes afresh, so a new store."""
    app = App(str(APP_DIR))
    yield app
    _close_comment_store()


def _close_comment_store() -> None:
    # The routes of the newest App share this module; close its database so
    # the temporary file is not left open.
    store = getattr(sys.modules.get("app.comments.data"), "store", None)
    if store is not None:
        store.close()


@pytest.fixture
def client(example_app: App) -> TestClient:
    return TestClient(validator(example_app))


class LiveServer:
    """waitress serving a WSGI app in a background thread."""

    def __init__(self, app, threads: int = 4, **server_options) -> None:
        import waitress

        self.server = waitress.create_server(
            app, host="127.0.0.1", port=0, threads=threads, **server_options
        )
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, name="waitress", daemon=True)
        self.thread.start()

    def settle(self, timeout: float = 10.0, *, connections: bool = True) -> None:
        """Wait (bounded) until waitress has no task running or queued and,
        with `connections`, no client connection open: a worker still
        finishing a task after the stop could touch the descriptors of the
        next test's server (waitress's trigger pipe)."""
        dispatcher = self.server.task_dispatcher
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with dispatcher.lock:
                idle = dispatcher.active_count == 0 and not dispatcher.queue
            if idle and (not connections or len(self.server._map) <= 2):  # listener, trigger
                return
            time.sleep(0.02)

    def stop(self) -> None:
        # Close every socket (listener, trigger, open connections) from inside
        # the server's own loop thread, through its trigger; with nothing left
        # to watch, the loop in server.run() returns. Then stop the workers.
        from waitress.channel import HTTPChannel

        server = self.server
        self.settle(5, connections=False)  # a browser may keep its connections open

        def close_all() -> None:
            for channel in list(server._map.values()):
                if isinstance(channel, HTTPChannel):
                    channel.handle_close()  # also wakes a worker waiting to write
                else:
                    channel.close()

        try:
            server.trigger.pull_trigger(close_all)
        except OSError:
            # pull_trigger queues close_all before it writes to the pipe; when
            # the loop, woken by a worker's pull, ran it in between, the pipe
            # is closed already, and so is everything else.
            pass
        self.thread.join(timeout=10)
        server.task_dispatcher.shutdown()
        assert not self.thread.is_alive(), "waitress did not stop within 10 s"


@pytest.fixture
def live_server(example_app: App) -> Iterator[str]:
    server = LiveServer(example_app)
    try:
        yield server.url
    finally:
        server.stop()
