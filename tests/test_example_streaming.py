"""The example app's streaming routes, upload form and public/ files.

The README's "Streaming", "Uploading files" and "Pages and static files"
sections show these with curl (tests/test_example_app.py replays them); here
the same routes are checked where curl lines cannot reach: that a body is
really sent piece by piece, big bodies through waitress with memory bounded,
the 413 of each form limit, validators with the real ETag, and dotfiles
inside a public folder. In-process calls go through wsgiref's validator
(the `client` fixture); the others through waitress (`live_server`).
"""
from __future__ import annotations

import hashlib
import http.client
import io
import threading
import time
import tracemalloc
from email.utils import formatdate, parsedate_to_datetime
from typing import Iterator
from urllib.parse import urlsplit
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

from conftest import APP_DIR, ROOT, LiveServer
from minirouter import App, TestClient

MB = 1024 * 1024
README = (ROOT / "README.md").read_text(encoding="utf-8")
HELLO = (ROOT / "public" / "hello.txt").read_bytes()


def _stop(server: LiveServer, timeout: float = 10.0) -> None:
    """Stop waitress once no task is running or queued and no client is
    connected (bounded wait): a worker still finishing after the stop could
    touch descriptors that the next test's server reuses (a flaky EBADF)."""
    dispatcher = server.server.task_dispatcher
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with dispatcher.lock:
            idle = dispatcher.active_count == 0 and not dispatcher.queue
        if idle and len(server.server._map) <= 2:  # the listener and the trigger
            break
        time.sleep(0.02)
    server.stop()


@pytest.fixture
def live_server(example_app: App) -> Iterator[str]:
    """conftest's live_server, stopped only once waitress is idle."""
    server = LiveServer(example_app)
    try:
        yield server.url
    finally:
        _stop(server)


def _connect(base_url: str) -> http.client.HTTPConnection:
    target = urlsplit(base_url)
    return http.client.HTTPConnection(target.hostname, target.port, timeout=30)


def _get(base_url: str, path: str, headers: dict[str, str] | None = None):
    """(status, headers, body) of one request, the path sent exactly as given."""
    connection = _connect(base_url)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def _wsgi_chunks(app, path: str) -> list[bytes]:
    """The body of GET `path` as the separate pieces the app hands the server."""
    environ = {"SCRIPT_NAME": "", "PATH_INFO": path.partition("?")[0], "QUERY_STRING": path.partition("?")[2]}
    setup_testing_defaults(environ)
    started = []
    body = validator(app)(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
    try:
        chunks = list(body)
    finally:
        body.close()
    assert started[0][0].startswith("200"), started
    assert "content-length" not in {name.lower() for name, _ in started[0][1]}
    return chunks


def _route_module(app: App, url: str):
    return next(route.module for route in app.route_table() if route.url == url)


# --- /countdown: a generator body ---------------------------------------------------

def test_countdown_yields_one_line_per_piece(example_app):
    assert _wsgi_chunks(example_app, "/countdown") == [b"3\n", b"2\n", b"1\n", b"liftoff\n"]
    assert _wsgi_chunks(example_app, "/countdown?from=0") == [b"liftoff\n"]


@pytest.mark.parametrize(("query", "text"), [("", "3\n2\n1\nliftoff\n"), ("?from=5", "5\n4\n3\n2\n1\nliftoff\n"),
                                            ("?from=", "3\n2\n1\nliftoff\n"),
                                            ("?from=" + "0" * 5000 + "2", "2\n1\nliftoff\n")])
def test_countdown_through_the_test_client(client, query, text):
    response = client.get(f"/countdown{query}")
    assert (response.status, response.text) == (200, text)
    assert response.headers.get("content-type") == "text/plain; charset=utf-8"
    assert response.headers.get("content-length") is None


@pytest.mark.parametrize("start", ["11", "99", "-1", "x", "1.5", "%D9%A3", "99999999999999999999999",
                                   "1" * 5000, "0" * 5000 + "11"])
def test_countdown_checks_its_query_before_streaming(client, start):
    response = client.get(f"/countdown?from={start}")
    assert response.status == 400
    assert response.json() == {"error": "from must be a whole number from 0 to 10"}


def test_head_of_countdown_stops_after_the_first_line(example_app, monkeypatch):
    # A HEAD runs the generator up to its first piece, as GET would (so an error
    # there is the answer), then closes it: the countdown never reaches a sleep.
    calls = []
    monkeypatch.setattr(_route_module(example_app, "/countdown"), "time", _Sleeper(calls))
    response = TestClient(validator(example_app)).head("/countdown")
    assert (response.status, response.content) == (200, b"")
    assert calls == []


class _Sleeper:
    """Stands in for the `time` module of the countdown route: each sleep()
    is counted and, when a gate is given, waits for the test to open it."""

    def __init__(self, calls: list, gate: threading.Event | None = None) -> None:
        self.calls = calls
        self.gate = gate

    def sleep(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.gate is not None:
            assert self.gate.wait(timeout=20), "the test never opened the gate"


def test_countdown_reaches_the_client_before_the_generator_ends(example_app, monkeypatch):
    """Through waitress: the first line arrives while the generator is still
    paused after it, so the answer is sent as it is produced, not at the end."""
    calls: list = []
    gate = threading.Event()
    monkeypatch.setattr(_route_module(example_app, "/countdown"), "time", _Sleeper(calls, gate))
    server = LiveServer(example_app)
    connection = _connect(server.url)
    try:
        connection.request("GET", "/countdown")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Transfer-Encoding") == "chunked"
        # The gate is shut, so the generator cannot get past its first sleep:
        # "3" arrives while "2" does not exist yet.
        assert response.readline() == b"3\n"
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls == [0.1]
        gate.set()
        assert response.read() == b"2\n1\nliftoff\n"
    finally:
        gate.set()
        connection.close()
        _stop(server)


# --- /ticks: an async generator body --------------------------------------------------

def test_ticks_come_from_an_async_generator(example_app):
    assert _wsgi_chunks(example_app, "/ticks") == [b"tick 1\n", b"tick 2\n", b"tick 3\n"]


def test_ticks_through_waitress(live_server):
    status, headers, body = _get(live_server, "/ticks")
    assert (status, body) == (200, b"tick 1\ntick 2\ntick 3\n")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Transfer-Encoding"] == "chunked"


def test_ticks_in_parallel_threads(live_server):
    """Each waitress worker drives its own event loop: four at once all finish."""
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(_get(live_server, "/ticks")[2])) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [b"tick 1\ntick 2\ntick 3\n"] * 4


# --- /echo: request.stream() piped into the response -----------------------------------

@pytest.mark.parametrize("body", [b"", b"Hello, pipe\n", bytes(range(256)) * 700, "h\u00e9llo\r\n".encode()])
def test_echo_sends_the_body_back_unchanged(client, body):
    response = client.post("/echo", data=body, headers={"Content-Type": "text/html"})
    assert (response.status, response.content) == (200, body)
    # never the client's type: what anyone sends must not come back as a page
    assert response.headers.get("content-type") == "application/octet-stream"
    assert response.headers.get("x-content-type-options") == "nosniff"


def test_echo_only_answers_post(client):
    response = client.get("/echo")
    assert response.status == 405
    assert response.headers.get("allow") == "OPTIONS, POST"


def test_echo_refuses_a_body_over_the_limit_before_reading_it(example_env):
    app = App(str(APP_DIR), max_body_size=1000)
    response = TestClient(validator(app)).post("/echo", data=b"x" * 1001)
    assert response.status == 413
    assert response.json() == {"error": "request body is larger than the limit of 1000 bytes"}
    assert TestClient(validator(app)).post("/echo", data=b"x" * 1000).content == b"x" * 1000


class _Zeros(io.RawIOBase):
    """`size` bytes of a repeating pattern, produced as they are read."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = bytes(range(256)) * 256  # 64 KiB

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left, len(self.block))
        buffer[:count] = self.block[:count]
        self.left -= count
        return count


# waitress keeps up to 16 MB of unsent output in memory before it pauses the
# app (outbuf_high_watermark); smaller marks keep the measure about the route.
WAITRESS_BUFFERS = {"outbuf_high_watermark": 1 * MB, "outbuf_overflow": 256 * 1024}


def test_echo_pipes_8_mb_through_waitress_with_memory_bounded(example_app):
    size = 8 * MB  # under the example app's max_body_size (10 MiB)
    expected = hashlib.sha256()
    source = _Zeros(size)
    while chunk := source.read(256 * 1024):
        expected.update(chunk)

    server = LiveServer(example_app, **WAITRESS_BUFFERS)
    connection = _connect(server.url)
    tracemalloc.start()
    try:
        connection.putrequest("POST", "/echo")
        connection.putheader("Content-Length", str(size))
        connection.putheader("Content-Type", "application/octet-stream")
        connection.endheaders()
        connection.send(io.BufferedReader(_Zeros(size), 64 * 1024))
        response = connection.getresponse()
        got, received = hashlib.sha256(), 0
        while chunk := response.read(256 * 1024):
            got.update(chunk)
            received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        connection.close()
        _stop(server)
    assert response.status == 200
    assert (received, got.hexdigest()) == (size, expected.hexdigest())
    # Server, app and client share this process: together they never held
    # the body (waitress spools the request to a temporary file). On a busy
    # machine waitress's output buffers fill while the client is still sending,
    # so the bound leaves room for them: holding the body would be 8 MB or more.
    assert peak < size * 3 / 4, f"peak {peak} bytes while piping {size}"


# --- /files: a plain field beside the file, and each limit's 413 -------------------------

def test_name_field_saves_under_another_safe_name(client, example_env):
    response = client.post("/files", data={"name": "../greeting notes.txt"},
                           files={"file": ("hello.txt", b"Hello\n", "text/plain")})
    assert response.status == 201, response.text
    assert response.json() == {"name": "greeting_notes.txt", "size": 6, "type": "text/plain"}
    assert response.headers.get("location") == "/files/greeting_notes.txt"
    assert sorted(p.name for p in (example_env / "uploads").iterdir()) == ["greeting_notes.txt"]


def test_an_empty_name_field_keeps_the_file_name(client):
    response = client.post("/files", data={"name": ""}, files={"file": ("a.txt", b"a", "text/plain")})
    assert response.json()["name"] == "a.txt"


@pytest.mark.parametrize("name", [".env", "..", "/"])
def test_a_dot_name_field_is_refused(client, example_env, name):
    response = client.post("/files", data={"name": name}, files={"file": ("a.txt", b"a", "text/plain")})
    assert response.status == 400
    assert not (example_env / "uploads").exists() or list((example_env / "uploads").iterdir()) == []


@pytest.mark.parametrize("name", ["CON", "con.txt", "NUL", "Com1.log", "lpt9.tar.gz", "aux"])
def test_a_windows_device_name_is_refused(client, example_env, name):
    # On Windows, opening CON.txt opens the console: an upload there would fail or vanish.
    response = client.post("/files", files={"file": (name, b"a", "text/plain")})
    assert response.status == 400 and "device" in response.json()["error"]
    assert client.get(f"/files/{name}").status == 404
    assert client.post("/files", files={"file": ("console.txt", b"a", "text/plain")}).status == 201


def test_a_name_sent_as_a_file_is_refused(client):
    response = client.post("/files", files={"file": ("a.txt", b"a", "text/plain"),
                                            "name": ("b.txt", b"b", "text/plain")})
    assert response.status == 400
    assert response.json() == {"error": '"name" must be a text field, not a file'}


def _readme_says(message: str) -> str:
    assert f'413 {{"error":"{message}"}}' in README, f"the README's table of 413s lost {message!r}"
    return message


def test_a_body_over_max_body_size_is_413_before_the_handler(client, example_env):
    response = client.post("/files", files={"file": ("big.bin", bytes(10 * MB + 1), "application/octet-stream")})
    assert response.status == 413
    assert response.json()["error"] == _readme_says("request body is larger than the limit of 10485760 bytes")
    assert not (example_env / "uploads").exists()  # the route never ran


def test_more_than_max_form_parts_is_413(client, example_env):
    fields = {f"f{i}": "x" for i in range(1000)}
    response = client.post("/files", data=fields, files={"file": ("a.txt", b"a", "text/plain")})
    assert response.status == 413
    assert response.json()["error"] == _readme_says("form has more than 1000 parts")
    assert not (example_env / "uploads").exists()
    # 999 fields and the file are 1,000 parts: allowed
    del fields["f0"]
    assert client.post("/files", data=fields, files={"file": ("a.txt", b"a", "text/plain")}).status == 201


def test_a_field_over_max_form_memory_is_413(client, example_env):
    big = {"name": "n" * (500 * 1024 + 1)}
    response = client.post("/files", data=big, files={"file": ("a.txt", b"a", "text/plain")})
    assert response.status == 413
    assert response.json()["error"] == _readme_says("form field 'name' is larger than 512000 bytes")
    assert not (example_env / "uploads").exists()


def test_a_file_over_spool_size_round_trips_through_waitress(live_server, example_env):
    """3 MiB, above spool_size: spooled to a temporary file, saved, sent back."""
    content = bytes(range(251)) * (3 * MB // 251)
    boundary = "example-streaming-boundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nbig.bin\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    connection = _connect(live_server)
    try:
        connection.request("POST", "/files", body=body,
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    assert response.status == 201, answer
    assert (example_env / "uploads" / "big.bin").read_bytes() == content
    status, headers, back = _get(live_server, "/files/big.bin")
    assert (status, len(back), back == content) == (200, len(content), True)


# --- page.html and public/ ----------------------------------------------------------------

def test_page_html_methods(client):
    head = client.head("/profile")
    assert (head.status, head.content) == (200, b"")
    assert head.headers.get("content-type") == "text/html; charset=utf-8"
    assert head.headers.get("etag") and head.headers.get("last-modified")
    options = client.options("/profile")
    assert (options.status, options.headers.get("allow")) == (204, "GET, HEAD, OPTIONS")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        refused = client.request(method, "/profile")
        assert (refused.status, refused.headers.get("allow")) == (405, "GET, HEAD, OPTIONS")


def test_hello_txt_is_what_the_readme_shows(client):
    response = client.get("/hello.txt")
    assert response.status == 200
    assert response.content == HELLO == b"Hello from public/\n"
    assert response.headers.get("content-length") == "19"
    assert response.headers.get("content-type") == "text/plain; charset=utf-8"
    assert response.headers.get("accept-ranges") == "bytes"


def test_validators_with_the_real_etag_through_waitress(live_server):
    status, headers, body = _get(live_server, "/hello.txt")
    assert (status, body) == (200, HELLO)
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert etag.startswith('"') and etag.endswith('"')
    assert parsedate_to_datetime(modified).timestamp() == int((ROOT / "public" / "hello.txt").stat().st_mtime)

    for asked in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        status, headers, body = _get(live_server, "/hello.txt", {"If-None-Match": asked})
        assert (status, body, headers["ETag"]) == (304, b"", etag), asked
    status, _, body = _get(live_server, "/hello.txt", {"If-None-Match": '"other"'})
    assert (status, body) == (200, HELLO)

    status, _, body = _get(live_server, "/hello.txt", {"If-Modified-Since": modified})
    assert (status, body) == (304, b"")
    earlier = formatdate(parsedate_to_datetime(modified).timestamp() - 86400, usegmt=True)
    status, _, body = _get(live_server, "/hello.txt", {"If-Modified-Since": earlier})
    assert (status, body) == (200, HELLO)


@pytest.mark.parametrize(
    ("asked", "status", "content_range", "body"),
    [
        ("bytes=0-4", 206, "bytes 0-4/19", b"Hello"),
        ("bytes=11-", 206, "bytes 11-18/19", b"public/\n"),
        ("bytes=-8", 206, "bytes 11-18/19", b"public/\n"),
        ("bytes=6-1000", 206, "bytes 6-18/19", b"from public/\n"),
        ("bytes=0-1,4-5", 200, None, HELLO),  # several ranges: the whole file
        ("bytes=100-", 416, "bytes */19", b'{"error":"range not satisfiable"}'),
        ("bytes=19-", 416, "bytes */19", b'{"error":"range not satisfiable"}'),
    ],
)
def test_ranges_of_hello_txt_through_waitress(live_server, asked, status, content_range, body):
    got_status, headers, got_body = _get(live_server, "/hello.txt", {"Range": asked})
    assert (got_status, headers.get("Content-Range"), got_body) == (status, content_range, body)


@pytest.mark.parametrize(
    "path",
    ["/../run.py", "/%2e%2e/run.py", "/..%2frun.py", "/%2E%2E%2Frun.py", "/..%5crun.py", "/%5c..%5crun.py",
     "/%2e%2e/.gitignore", "/hello.txt%00", "/hello.txt/..", "//etc/passwd", "/%2fetc%2fpasswd",
     "/public/hello.txt", "/.gitignore"],
)
def test_nothing_outside_public_through_waitress(live_server, path):
    status, _, body = _get(live_server, path)
    assert status == 404, (path, status)
    assert b"minirouter" not in body and b"__pycache__" not in body


def test_dotfiles_inside_a_public_folder_are_404(example_env, tmp_path):
    public = tmp_path / "site-public"
    (public / ".git").mkdir(parents=True)
    (public / ".env").write_text("SECRET=1\n")
    (public / ".git" / "config").write_text("[core]\n")
    (public / "hello").write_text("a file named like a route\n")
    (public / "ok.txt").write_text("fine\n")
    client = TestClient(validator(App(str(APP_DIR), public_dir=str(public))))
    assert client.get("/ok.txt").text == "fine\n"
    for path in ("/.env", "/.git/config", "/%2eenv", "/ok.txt/../.env"):
        response = client.get(path)
        assert response.status == 404, path
        assert b"SECRET" not in response.content and b"core" not in response.content
    assert client.get("/hello").text == "Hello World!"  # the route wins over the file


def test_the_readme_shows_these_routes_with_curl(tmp_path):
    """The README sections replay these through tests/test_example_app.py;
    deleting one of their curl lines fails here."""
    import readme_curl

    (tmp_path / "hello.txt").write_text("x\n")
    shown = set()
    for section in readme_curl.read_sections(ROOT / "README.md"):
        for step in section.curl_steps:
            request = readme_curl.parse_curl(step.argv, tmp_path)
            headers = {name.lower() for name, _ in request.headers}
            shown.add((request.method, urlsplit(request.url).path, "range" in headers, "if-none-match" in headers))
    needed = {
        ("GET", "/countdown", False, False), ("GET", "/ticks", False, False), ("POST", "/echo", False, False),
        ("POST", "/files", False, False), ("HEAD", "/profile", False, False),
        ("GET", "/hello.txt", False, False), ("GET", "/hello.txt", True, False), ("GET", "/hello.txt", False, True),
        ("GET", "/%2e%2e/run.py", False, False), ("GET", "/%2e%2e/.gitignore", False, False),
    }
    assert needed <= shown, f"missing from the README: {sorted(needed - shown)}"
