"""Faults: a broken handler costs one 500 and nothing else; a client that goes
away mid-body or mid-response leaves no stuck thread, open file or temporary
file behind; SQLite contention is waited out, never a 500.

Everything runs through waitress on 127.0.0.1 (started and stopped here), with
every wait bounded.
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from conftest import APP_DIR, LiveServer
from helpers import RecordingInput, call, import_from_app, make_app_dir, make_environ
from minirouter import App

FAULT_FILES = {
    "_lib/state.py": """
        import threading

        lock = threading.Lock()
        active = 0   # streamed bodies being produced right now
        started = 0
        finished = 0  # bodies whose generator ran its finally block
        """,
    "ok/route.py": """
        def GET():
            return {"ok": True}
        """,
    "raise/route.py": """
        def GET():
            raise RuntimeError("boom: secret detail")
        """,
    "wrong/route.py": """
        from minirouter import Response

        def GET(request):
            kind = request.search_params.get("kind")
            if kind == "none":
                return None
            if kind == "int":
                return 42
            if kind == "str":
                return "a str is not a Response"
            if kind == "tuple":
                return ({"a": 1}, 201)
            if kind == "status":
                return Response("x", status=999)
            if kind == "status-str":
                return Response("x", status="200 OK\\r\\nX-Evil: 1")
            if kind == "unserialisable":
                return {"a": object()}
            raise AssertionError(kind)
        """,
    "async-raise/route.py": """
        import asyncio

        async def GET():
            await asyncio.sleep(0)
            raise RuntimeError("boom: secret detail")
        """,
    "async-wrong/route.py": """
        async def GET():
            return 42
        """,
    "badheader/route.py": """
        from minirouter import Response

        def GET():
            return Response("x", headers={"X-Bad": "a\\r\\nX-Evil: 1"})
        """,
    "stream/route.py": """
        import time

        from minirouter import Response
        from PKG._lib import state


        def GET(request):
            chunks = int(request.search_params.get("chunks", "20000"))
            fail_at = int(request.search_params.get("fail", "-1"))

            def body():
                with state.lock:
                    state.active += 1
                    state.started += 1
                try:
                    for i in range(chunks):
                        if i == fail_at:
                            raise RuntimeError("the stream broke")
                        yield b"x" * 16384
                        time.sleep(0.002)
                finally:
                    with state.lock:
                        state.active -= 1
                        state.finished += 1

            return Response(body(), headers={"Content-Type": "application/octet-stream"})
        """,
    "upload/route.py": """
        def POST(request):
            return {"size": len(request.body())}
        """,
    "form/route.py": """
        def POST(request):
            return {"fields": len(request.form().items())}
        """,
    "form-raise/route.py": """
        def POST(request):
            request.form()
            raise RuntimeError("failed after reading the upload")
        """,
    "form-stream/route.py": """
        import time

        from minirouter import Response
        from PKG._lib import state


        def POST(request):
            upload = request.form().get("f")

            def body():
                with state.lock:
                    state.active += 1
                    state.started += 1
                try:
                    for _ in range(20000):
                        yield upload.read(16384) or b"x" * 16384
                        time.sleep(0.002)
                finally:
                    with state.lock:
                        state.active -= 1
                        state.finished += 1

            return Response(body())
        """,
}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()




def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class FaultServer:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = make_app_dir(tmp_path, FAULT_FILES)
        self.app = App(str(self.dir))
        self.state = import_from_app(self.dir, "_lib.state")
        self.threads_before = threading.active_count()
        self.server = LiveServer(self.app, threads=4)
        self.port = int(self.server.server.effective_port)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def get(self, path: str) -> tuple[int, bytes]:
        conn = self.connection()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


@pytest.fixture
def faults(tmp_path) -> Iterator[FaultServer]:
    server = FaultServer(tmp_path)
    try:
        yield server
    finally:
        server.server.settle()
        server.server.stop()
    # Every thread the server started is gone once it stops.
    assert wait_until(lambda: threading.active_count() <= server.threads_before, timeout=10), (
        threading.enumerate()
    )


FAULTS = [
    "/raise",
    "/wrong?kind=none",
    "/wrong?kind=int",
    "/wrong?kind=str",
    "/wrong?kind=tuple",
    "/wrong?kind=status",
    "/wrong?kind=status-str",
    "/wrong?kind=unserialisable",
    "/badheader",
    "/async-raise",
    "/async-wrong",
]


# design.md: "handler raises anything else: 500, generic body; the traceback
# goes to the minirouter logger, never to the client"; a wrong return type or
# a status outside 100-599 is a 500 logged with the route's file; a bad
# header is refused, never sent. And one fault must not cost the connection:
# the next request on the same keep-alive connection is served.
def test_each_fault_is_a_500_and_the_same_connection_serves_the_next_request(faults, caplog):
    caplog.set_level(logging.ERROR, logger="minirouter")
    conn = faults.connection()
    try:
        for path in FAULTS:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            assert response.status == 500, (path, response.status, body)
            assert response.getheader("Content-Type") == "application/json"
            assert json.loads(body) == {"error": "internal server error"}
            assert b"secret detail" not in body and b"Traceback" not in body
            assert response.getheader("X-Evil") is None and response.getheader("X-Bad") is None
            conn.request("GET", "/ok")
            response = conn.getresponse()
            assert (response.status, json.loads(response.read())) == (200, {"ok": True}), path
    finally:
        conn.close()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "raise/route.py" in logged and "wrong/route.py" in logged


def test_many_faults_in_parallel_do_not_exhaust_the_workers(faults):
    # 4 worker threads, 40 failing requests from 8 clients: afterwards every
    # worker is free again (8 requests in parallel all answer).
    errors: list[object] = []

    def client(n: int) -> None:
        try:
            for i in range(5):
                status, _ = faults.get(FAULTS[(n + i) % len(FAULTS)])
                assert status == 500
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors and not any(t.is_alive() for t in threads)
    assert [faults.get("/ok")[0] for _ in range(8)] == [200] * 8


def test_a_streamed_body_that_raises_midway_cuts_that_response_only(faults):
    conn = faults.connection()
    try:
        conn.request("GET", "/stream?chunks=50&fail=3")
        response = conn.getresponse()
        assert response.status == 200  # the headers were already sent
        try:
            data = response.read()
        except (http.client.IncompleteRead, ConnectionError, http.client.HTTPException) as exc:
            data = getattr(exc, "partial", b"")
        # The body is cut (never padded or passed off as complete).
        assert len(data) < 50 * 16384
    finally:
        conn.close()
    assert wait_until(lambda: faults.state.active == 0)
    assert faults.get("/ok")[0] == 200


def test_a_client_that_leaves_mid_response_frees_its_thread(faults):
    assert faults.get("/ok")[0] == 200  # warm up: every worker thread exists
    threads_before = threading.active_count()
    fds_before = open_fds()
    sock = socket.create_connection(("127.0.0.1", faults.port), timeout=10)
    sock.sendall(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
    received = 0
    while received < 64 * 1024:  # bounded: a few chunks, then hang up
        chunk = sock.recv(16384)
        assert chunk, "the server closed first"
        received += len(chunk)
    assert faults.state.active == 1
    sock.close()
    # 20000 chunks would take 40 s or more: only noticing the disconnect ends it.
    assert wait_until(lambda: faults.state.active == 0, timeout=15), "the streaming thread is stuck"
    assert faults.state.finished == faults.state.started == 1
    assert wait_until(lambda: threading.active_count() <= threads_before, timeout=5)
    assert wait_until(lambda: open_fds() <= fds_before, timeout=5)
    assert faults.get("/ok")[0] == 200


def test_clients_leaving_mid_response_in_parallel(faults):
    socks = []
    for _ in range(4):  # as many as there are worker threads
        sock = socket.create_connection(("127.0.0.1", faults.port), timeout=10)
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
        socks.append(sock)
    for sock in socks:
        assert sock.recv(16384)
    assert wait_until(lambda: faults.state.active == 4, timeout=10)
    for sock in socks:
        sock.close()
    assert wait_until(lambda: faults.state.active == 0, timeout=15), "streaming threads are stuck"
    assert [faults.get("/ok")[0] for _ in range(4)] == [200] * 4


@pytest.mark.parametrize("sent", [10, 100_000, 700_000])  # 700 KB: past waitress's in-memory buffer
def test_a_client_that_leaves_mid_body_leaves_nothing_behind(faults, sent):
    assert faults.get("/ok")[0] == 200
    threads_before = threading.active_count()
    fds_before = open_fds()
    sock = socket.create_connection(("127.0.0.1", faults.port), timeout=10)
    sock.sendall(
        b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: 5000000\r\n\r\n" + b"x" * sent
    )
    sock.close()
    assert wait_until(lambda: open_fds() <= fds_before, timeout=10), "a file or socket was left open"
    assert wait_until(lambda: threading.active_count() <= threads_before, timeout=5)
    # The workers are all free: four uploads in parallel are served.
    results: list[int] = []

    def upload() -> None:
        conn = faults.connection()
        try:
            conn.request("POST", "/upload", body=b"y" * 1000, headers={"Content-Type": "application/octet-stream"})
            response = conn.getresponse()
            results.append(response.status if json.loads(response.read()) == {"size": 1000} else -1)
        finally:
            conn.close()

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert results == [200] * 4


# In-process: what a server like gunicorn hands the app when the client
# disconnects in the middle of the body (a short read, or an error from the
# socket). The app answers (4xx), never hangs, and removes temporary files.
class DisconnectingInput(RecordingInput):
    def __init__(self, data: bytes, error: type[BaseException] | None) -> None:
        super().__init__(data)
        self.error = error

    def read(self, size: int = -1) -> bytes:
        chunk = super().read(size)
        if not chunk and self.error is not None:
            raise self.error("client disconnected")
        return chunk


@pytest.fixture
def private_tempdir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "private-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("error", [None, ConnectionResetError, OSError])
def test_a_body_cut_short_in_process_is_answered_and_leaves_nothing(tmp_path, private_tempdir, error):
    app = App(str(make_app_dir(tmp_path, FAULT_FILES)))
    stream = DisconnectingInput(b"x" * 100_000, error)
    environ = make_environ("POST", "/upload", wsgi_input=stream, content_length="5000000",
                           content_type="application/octet-stream")
    fds_before = open_fds()
    result = call(app, environ, validate=False)
    assert 400 <= result.status < 600
    if error is None:
        assert result.status == 400  # "request body ended before Content-Length bytes arrived"
    assert list(private_tempdir.iterdir()) == []
    assert open_fds() <= fds_before


@pytest.mark.parametrize("error", [None, ConnectionResetError])
def test_a_multipart_upload_cut_short_removes_its_spooled_file(tmp_path, private_tempdir, error):
    app = App(str(make_app_dir(tmp_path, FAULT_FILES)), spool_size=4096)
    head = b'--b\r\nContent-Disposition: form-data; name="f"; filename="big.bin"\r\n\r\n'
    stream = DisconnectingInput(head + b"z" * 200_000, error)  # well past spool_size, then gone
    environ = make_environ("POST", "/form", wsgi_input=stream, content_length="5000000",
                           content_type="multipart/form-data; boundary=b")
    fds_before = open_fds()
    result = call(app, environ, validate=False)
    if error is None:
        assert result.status == 400
    else:
        assert 400 <= result.status < 600 and result.status != 415
    assert list(private_tempdir.iterdir()) == []
    assert open_fds() <= fds_before


# --- SQLite under contention ------------------------------------------------


def comments_store_of(app: App):
    (route,) = [r for r in app.route_table() if r.url == "/comments"]
    return route.module.store


def test_a_held_write_lock_is_waited_for_not_a_500(live_server, example_env):
    # Another process (here a plain connection) holds the write lock for a
    # moment; the POST waits for it (busy_timeout) instead of failing.
    conn = http.client.HTTPConnection(live_server.split("//")[1], timeout=30)
    conn.request("GET", "/comments")
    assert conn.getresponse().read()  # the store has created and seeded the file
    other = sqlite3.connect(example_env / "comments.db", isolation_level=None, timeout=10)
    result: dict[str, object] = {}

    def post() -> None:
        try:
            conn.request("POST", "/comments", body=json.dumps({"text": "after the lock"}),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            result["status"] = response.status
            result["body"] = response.read()
        except Exception as exc:  # noqa: BLE001
            result["error"] = exc

    try:
        other.execute("BEGIN IMMEDIATE")
        thread = threading.Thread(target=post)
        thread.start()
        time.sleep(1.0)
        assert thread.is_alive(), f"the POST did not wait for the lock: {result}"
        other.execute("COMMIT")
        thread.join(timeout=30)
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()
        conn.close()
    assert result.get("status") == 201, result
    (count,) = sqlite3.connect(example_env / "comments.db").execute(
        "SELECT count(*) FROM comments WHERE text = 'after the lock'").fetchone()
    assert count == 1


def test_concurrent_writers_on_separate_connections_all_succeed(example_env):
    # Two Apps over one COMMENTS_DB: two stores, two connections, as two
    # worker processes would have. 8 writer threads; no write fails or is lost.
    first = App(str(APP_DIR))
    second = App(str(APP_DIR))
    stores = [comments_store_of(first), comments_store_of(second)]
    assert stores[0] is not stores[1]
    from minirouter import TestClient

    clients = [TestClient(first), TestClient(second)]
    statuses: list[int] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        client = clients[n % 2]
        for i in range(20):
            result = client.post("/comments", json={"text": f"writer {n} #{i}"})
            with lock:
                statuses.append(result.status)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        assert statuses == [201] * 160, sorted(set(statuses))
        listed = clients[0].get("/comments").json()
        texts = [c["text"] for c in listed]
        assert len(listed) == 3 + 160 and len(set(texts)) == len(texts)
        assert len({c["id"] for c in listed}) == len(listed)
    finally:
        for store in stores:
            store.close()


def multipart_upload(size: int) -> tuple[bytes, str]:
    head = b'--b\r\nContent-Disposition: form-data; name="f"; filename="big.bin"\r\n\r\n'
    return head + os.urandom(size) + b"\r\n--b--\r\n", "multipart/form-data; boundary=b"


# Uploads above spool_size (1 MiB by default) live in temporary files; they
# must be closed (and so removed) however the request ends: a handler that
# raises after reading them, or a streamed answer the client walks away from.
def test_spooled_uploads_are_closed_when_the_handler_raises(faults):
    assert faults.get("/ok")[0] == 200
    fds_before = open_fds()
    body, content_type = multipart_upload(3 * 1024 * 1024)
    for _ in range(3):
        conn = faults.connection()
        try:
            conn.request("POST", "/form-raise", body=body, headers={"Content-Type": content_type})
            response = conn.getresponse()
            assert response.status == 500 and b"upload" not in response.read()
        finally:
            conn.close()
    assert wait_until(lambda: open_fds() <= fds_before, timeout=10), "an upload's temporary file was left open"


def test_spooled_uploads_are_closed_when_the_client_leaves_a_streamed_answer(faults):
    assert faults.get("/ok")[0] == 200
    fds_before = open_fds()
    body, content_type = multipart_upload(3 * 1024 * 1024)
    sock = socket.create_connection(("127.0.0.1", faults.port), timeout=10)
    sock.sendall(
        b"POST /form-stream HTTP/1.1\r\nHost: a\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
        % (content_type.encode(), len(body)) + body
    )
    received = 0
    while received < 64 * 1024:
        chunk = sock.recv(16384)
        assert chunk, "the server closed first"
        received += len(chunk)
    assert faults.state.active == 1
    sock.close()
    assert wait_until(lambda: faults.state.active == 0, timeout=15), "the streaming thread is stuck"
    assert wait_until(lambda: open_fds() <= fds_before, timeout=10), "an upload's temporary file was left open"


def test_pipelined_requests_after_a_fault_are_answered_in_order(faults):
    # Two requests in one packet (HTTP/1.1 pipelining): the first one's 500
    # must not swallow, reorder or duplicate the second's answer.
    sock = socket.create_connection(("127.0.0.1", faults.port), timeout=10)
    try:
        sock.sendall(
            b"GET /raise HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /wrong?kind=none HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        received = bytearray()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    finally:
        sock.close()
    import re

    # Each answer's status line follows the previous body directly.
    statuses = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", bytes(received))]
    assert statuses == [500, 500, 200], bytes(received)[:500]
    assert received.endswith(b'{"ok":true}')


def test_waitress_has_the_pipelining_and_disconnect_fixes():
    # CVE-2024-49768 (a pipelined request served on a connection that should
    # have closed) and CVE-2024-49769 (a client disconnecting made waitress
    # spin) are fixed in waitress 3.0.1; the tests above rely on them.
    from importlib.metadata import version

    major, minor, patch = (int(part) for part in version("waitress").split(".")[:3])
    assert (major, minor, patch) >= (3, 0, 1), version("waitress")
