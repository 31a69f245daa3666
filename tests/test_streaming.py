"""Streamed bodies: responses produced as they are sent, requests piped through.

Issue 3: a Response body may be any iterable or generator of bytes or str,
sync or async, sent with no Content-Length; request.stream() yields the body
in chunks; 50 MB goes through waitress with memory bounded (tracemalloc).
"""
from __future__ import annotations

import asyncio
import errno
import io
import logging
import hashlib
import time
import http.client
import tracemalloc
from pathlib import Path

import pytest

from conftest import LiveServer
from helpers import client, import_from_app, make_app_dir, make_environ
from minirouter import App, HTTPError

MB = 1024 * 1024

ROUTES = {
    "numbers/route.py": """
        from minirouter import Response

        def GET(request):
            count = int(request.search_params.get("count", "3"))
            def lines():
                for i in range(count):
                    yield f"line {i}\\n"          # str chunks are UTF-8 encoded
            return Response(lines(), headers={"Content-Type": "text/plain; charset=utf-8"})
        """,
    "bytes/route.py": """
        from minirouter import Response

        def GET():
            return Response(iter([b"ab", b"", b"cd"]))
        """,
    "async/route.py": """
        import asyncio
        from minirouter import Response

        async def GET():
            async def chunks():
                for word in ("async ", "chunks"):
                    await asyncio.sleep(0)
                    yield word
            return Response(chunks())
        """,
    "zeros/route.py": """
        from minirouter import Response

        def GET(request):
            megabytes = int(request.search_params.get("mb", "1"))
            block = bytes(1024 * 1024)
            return Response(block for _ in range(megabytes))
        """,
    "pipe/route.py": """
        from minirouter import Response

        def POST(request):
            # Send the upload back as it arrives, never holding it whole.
            return Response(request.stream(), headers={"Content-Type": "application/octet-stream"})
        """,
    "closing/route.py": """
        from minirouter import Response
        from PKG._lib import state

        def GET():
            def body():
                try:
                    yield b"first"
                    yield b"second"
                finally:
                    state.closed.append(True)
            return Response(body())
        """,
    "_lib/state.py": "closed = []\n",
}


@pytest.fixture
def stream_app(tmp_path: Path) -> App:
    return App(str(make_app_dir(tmp_path, ROUTES)), max_body_size=64 * MB)


def test_generator_of_str_is_streamed_without_content_length(stream_app):
    r = client(stream_app).get("/numbers?count=4")
    assert r.status == 200
    assert r.text == "line 0\nline 1\nline 2\nline 3\n"
    assert "content-length" not in r.headers


def test_iterable_of_bytes_defaults_to_octet_stream(stream_app):
    r = client(stream_app).get("/bytes")
    assert r.content == b"abcd"
    assert r.headers["content-type"] == "application/octet-stream"


def test_async_generator_body(stream_app):
    assert client(stream_app).get("/async").text == "async chunks"


def test_head_of_a_streamed_response_sends_no_body_and_closes_it(stream_app, tmp_path):
    from importlib import import_module

    state = import_module(f"{Path(stream_app.app_dir).name}._lib.state")
    r = client(stream_app).head("/closing")
    assert r.status == 200 and r.content == b""
    assert state.closed == [True]  # run up to its first piece, as for GET, then closed
    r = client(stream_app).get("/closing")
    assert r.content == b"firstsecond"
    assert state.closed == [True, True]


@pytest.mark.parametrize("failure, status", [
    ("not_found()", 404), ("raise HTTPError(409, 'busy')", 409), ("raise RuntimeError('boom')", 500),
])
def test_head_gets_the_status_get_gets_when_the_body_fails_before_its_first_piece(tmp_path, failure, status):
    # RFC 9110 9.3.2: HEAD is GET without the content, so the same status.
    app = App(str(make_app_dir(tmp_path, {"r/route.py": f"""
        from minirouter import HTTPError, Response, not_found

        def GET():
            def body():
                {failure}
                yield b"never"
            return Response(body())
        """})))
    get, head = client(app).get("/r"), client(app).head("/r")
    assert get.status == head.status == status
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"] == "application/json"


def test_an_explicit_head_handler_may_say_how_long_get_would_be(tmp_path):
    # RFC 9110 8.6: a HEAD answer's Content-Length, if any, is the length GET would send.
    app = App(str(make_app_dir(tmp_path, {"r/route.py": """
        from minirouter import Response

        def GET():
            return Response("hello")

        def HEAD():
            return Response(None, headers={"Content-Length": "5", "Content-Type": "text/plain; charset=utf-8"})
        """, "bogus/route.py": """
        from minirouter import Response

        def HEAD():
            return Response(None, headers={"Content-Length": "five"})
        """})))
    get, head = client(app).get("/r"), client(app).head("/r")
    assert get.headers["content-length"] == head.headers["content-length"] == "5"
    assert head.content == b""
    assert client(app).head("/bogus").status == 500  # not a length: refused when set, as a CR would be
    assert client(app).get("/r").headers["content-length"] == "5"


def test_request_stream_yields_the_body_in_chunks(stream_app):
    data = bytes(range(256)) * 1000
    r = client(stream_app).post("/pipe", data=data)
    assert r.content == data


# waitress holds up to 16 MB of unsent output in memory by default before it
# pauses the app; a smaller mark keeps the measurement about minirouter.
WAITRESS_BUFFERS = {"outbuf_high_watermark": 2 * MB, "outbuf_overflow": 256 * 1024}


def size_limit(body_size: int) -> int:
    """Peak memory allowed for streaming a body of this size: a fifth of it
    (the 1 MiB chunks in flight, the server's buffers and the client's)."""
    return body_size // 5


def _split(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def test_50_mb_upload_is_piped_back_through_waitress_with_memory_bounded(stream_app):
    size = 50 * MB
    block = bytes(range(256)) * 256  # 64 KiB
    server = LiveServer(stream_app, **WAITRESS_BUFFERS)
    tracemalloc.start()
    try:
        conn = http.client.HTTPConnection(*_split(server.url), timeout=60)
        conn.putrequest("POST", "/pipe")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        for _ in range(size // len(block)):
            conn.send(block)
        response = conn.getresponse()
        digest, received = hashlib.sha256(), 0
        while True:
            chunk = response.read(256 * 1024)
            if not chunk:
                break
            digest.update(chunk)
            received += len(chunk)
        conn.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server.stop()
    expected = hashlib.sha256(block * (size // len(block))).hexdigest()
    assert response.status == 200
    assert received == size and digest.hexdigest() == expected
    # Client, server and app run in this process: all of it together stays a
    # small fraction of the body.
    assert peak < size_limit(size), f"peak {peak / MB:.1f} MB for a {size / MB:.0f} MB body"


def test_50_mb_streamed_response_through_waitress_with_memory_bounded(stream_app):
    server = LiveServer(stream_app, **WAITRESS_BUFFERS)
    tracemalloc.start()
    try:
        conn = http.client.HTTPConnection(*_split(server.url), timeout=60)
        conn.request("GET", "/zeros?mb=50")
        response = conn.getresponse()
        assert response.getheader("Content-Length") is None
        received = 0
        while True:
            chunk = response.read(256 * 1024)
            if not chunk:
                break
            assert not chunk.strip(b"\0")
            received += len(chunk)
        conn.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server.stop()
    assert received == 50 * MB
    assert peak < size_limit(50 * MB), f"peak {peak / MB:.1f} MB"


def test_body_without_content_length_is_read_up_to_the_limit_then_413(tmp_path):
    """With no Content-Length, a body the server marks as terminated
    (wsgi.input_terminated, as waitress does for chunked requests) is read up
    to max_body_size and refused past it."""
    import io

    files = dict(ROUTES)
    files["size/route.py"] = "def POST(request):\n    return {'n': len(request.body())}\n"
    app = App(str(make_app_dir(tmp_path, files)), max_body_size=1000)

    def call(data: bytes):
        environ = {
            "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": "/size", "QUERY_STRING": "",
            "SERVER_NAME": "t", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(data),
            "wsgi.errors": io.StringIO(), "wsgi.multithread": False, "wsgi.multiprocess": False,
            "wsgi.run_once": False, "wsgi.input_terminated": True,
        }
        seen = []
        body = b"".join(app(environ, lambda status, headers, exc=None: seen.append(status)))
        return seen[0], body

    assert call(b"x" * 1000) == ("200 OK", b'{"n":1000}')
    status, body = call(b"x" * 5000)
    assert status.startswith("413") and b"limit" in body


def test_an_error_before_the_first_piece_is_still_the_answer(tmp_path, caplog):
    """Nothing is sent before the first piece (PEP 3333), so an error the
    generator raises before it becomes a JSON answer, not the server's 500."""
    import io

    files = dict(ROUTES)
    files["pipe/route.py"] = (
        "from minirouter import Response\n"
        "def POST(request):\n"
        "    return Response(request.stream())\n"
    )
    files["gen/[how]/route.py"] = (
        "from minirouter import HTTPError, Response\n"
        "def GET(request, context):\n"
        "    how = context.params['how']\n"
        "    def pieces():\n"
        "        yield b''\n"
        "        if how == 'forbidden':\n"
        "            raise HTTPError(403, 'not yours')\n"
        "        raise RuntimeError('broken generator')\n"
        "    return Response(pieces())\n"
    )
    app = App(str(make_app_dir(tmp_path, files)), max_body_size=1000)
    test_client = client(app)
    assert test_client.get("/gen/forbidden").status == 403
    assert test_client.get("/gen/forbidden").json() == {"error": "not yours"}
    crashed = test_client.get("/gen/crash")
    assert crashed.status == 500 and crashed.json() == {"error": "internal server error"}
    assert "broken generator" in caplog.text
    assert "route.py: GET handler: its streamed body failed before the first piece" in caplog.text

    # A chunked upload (no Content-Length) over the limit, piped back: a JSON 413.
    environ = {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": "/pipe", "QUERY_STRING": "",
        "SERVER_NAME": "t", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b"x" * 2000),
        "wsgi.errors": io.StringIO(), "wsgi.multithread": False, "wsgi.multiprocess": False,
        "wsgi.run_once": False, "wsgi.input_terminated": True,
    }
    seen = []
    body = b"".join(app(environ, lambda status, headers, exc=None: seen.append((status, headers))))
    assert seen[0][0].startswith("413") and b"limit of 1000 bytes" in body
    assert ("Content-Type", "application/json") in seen[0][1]


def test_a_streamed_body_that_fails_first_is_answered_like_the_handler_raising(tmp_path, caplog):
    # The middleware's headers and cookies land on that answer too, and sys.exit() is a 500.
    files = dict(ROUTES)
    files["middleware.py"] = (
        "from minirouter import Response\n"
        "def middleware(request):\n"
        "    response = Response.next(headers={'Access-Control-Allow-Origin': '*'})\n"
        "    response.cookies.set('mw', '1')\n"
        "    return response\n"
    )
    files["fail/[how]/route.py"] = (
        "import sys\n"
        "from minirouter import HTTPError, Response, cookies\n"
        "def GET(request, context):\n"
        "    how = context.params['how']\n"
        "    cookies().set('half', 'done')\n"
        "    def pieces():\n"
        "        if how == 'exit':\n"
        "            sys.exit(3)\n"
        "        if how == 'bad-header':\n"
        "            raise HTTPError(400, 'bad', headers={'X-A': 'a\\r\\nb'})\n"
        "        raise HTTPError(403, 'nope')\n"
        "        yield b''\n"
        "    return Response(pieces())\n"
    )
    test_client = client(App(str(make_app_dir(tmp_path, files))))
    for how, status in (("forbidden", 403), ("exit", 500), ("bad-header", 500)):
        response = test_client.get(f"/fail/{how}")
        assert response.status == status, how
        assert response.headers.get("access-control-allow-origin") == "*"
        assert response.cookies == {"mw": "1"}  # the handler's own cookie is not sent with an error
    assert "SystemExit" in caplog.text


def test_a_module_level_response_with_a_list_body_is_sent_whole_every_time(tmp_path):
    files = dict(ROUTES)
    files["same/route.py"] = (
        "from minirouter import Response\n"
        "ANSWER = Response([b'a', b'b', b'c'])  # built once, returned to every request\n"
        "def GET():\n"
        "    return ANSWER\n"
    )
    test_client = client(App(str(make_app_dir(tmp_path, files))))
    assert [test_client.get("/same").content for _ in range(3)] == [b"abc"] * 3


def test_a_stream_on_a_status_without_content_is_never_run(tmp_path):
    files = dict(ROUTES)
    files["nocontent/route.py"] = (
        "from minirouter import Response\n"
        "def GET():\n"
        "    def body():\n"
        "        raise RuntimeError('never meant to run')\n"
        "        yield b''\n"
        "    return Response(body(), 204)\n"
    )
    response = client(App(str(make_app_dir(tmp_path, files)))).get("/nocontent")
    assert (response.status, response.content) == (204, b"")


def test_a_redirect_from_the_first_piece_keeps_the_cookies_set(tmp_path):
    files = dict(ROUTES)
    files["away/route.py"] = (
        "from minirouter import Response, cookies, redirect\n"
        "def GET():\n"
        "    cookies().set('session', 'abc')\n"
        "    def body():\n"
        "        redirect('/elsewhere')\n"
        "        yield b''\n"
        "    return Response(body())\n"
    )
    response = client(App(str(make_app_dir(tmp_path, files)))).get("/away")
    assert response.status == 307 and response.cookies == {"session": "abc"}


ONE_TASK_ROUTE = '''
import asyncio, contextvars
from minirouter import Response

var = contextvars.ContextVar("var", default="unset")
log = []


async def gen(tag):
    var.set("set")
    task = asyncio.current_task()
    try:
        yield var.get() + " "
        try:
            await asyncio.wait_for(slow_pieces(), timeout=0.05)
        except asyncio.TimeoutError:
            yield "timeout "
        yield "same-task=%s " % (asyncio.current_task() is task)
        yield var.get()
        yield " more"
    finally:
        log.append((tag, var.get(), asyncio.current_task() is task))


async def slow_pieces():
    await asyncio.sleep(0.5)


def GET(request):
    return Response(gen(request.search_params.get("tag")))
'''


def test_an_async_body_runs_in_one_task_as_async_for_would(tmp_path):
    # Context variables set in the body and a timeout hold across its yields,
    # and its finally runs in the same task when the server stops early.
    app_dir = make_app_dir(tmp_path, {"g/route.py": ONE_TASK_ROUTE})
    app = App(str(app_dir))
    assert client(app).get("/g?tag=whole").text == "set timeout same-task=True set more"
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/g", "QUERY_STRING": "tag=early", "SERVER_NAME": "x",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    body = app(environ, lambda status, headers, exc_info=None: None)
    pieces = iter(body)
    assert next(pieces) == b"set "
    body.close()  # the server stops after one piece (a client gone)
    log = import_from_app(app_dir, "g.route").log
    assert log == [("whole", "set", True), ("early", "set", True)]


def _call(app: App, path: str, query: str = ""):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "x",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    return app(environ, lambda status, headers, exc_info=None: None)


ENDINGS = {
    "exit/route.py": (
        "from minirouter import Response\n"
        "async def gen():\n    yield 'a'\n    raise SystemExit(3)\n"
        "def GET():\n    return Response(gen())\n"
    ),
    "interrupt/route.py": (
        "from minirouter import Response\n"
        "async def gen():\n    yield 'a'\n    raise KeyboardInterrupt\n"
        "def GET():\n    return Response(gen())\n"
    ),
    "later/route.py": "import asyncio\nasync def GET():\n    await asyncio.sleep(0)\n    return {'ok': True}\n",
    "self-cancel/route.py": (
        "import asyncio\nfrom minirouter import Response\n"
        "async def gen():\n    yield 'a'\n    asyncio.current_task().cancel()\n    yield 'b'\n    yield 'c'\n"
        "def GET():\n    return Response(gen())\n"
    ),
    "timeout/route.py": (  # asyncio.timeout() is Python 3.11+; the test skips before
        "import asyncio\nfrom minirouter import Response\n"
        "async def gen():\n"
        "    async with asyncio.timeout(0.05):\n"
        "        for i in range(5):\n            yield 'x%d ' % i\n"
        "def GET():\n    return Response(gen())\n"
    ),
}


@pytest.mark.parametrize("path, error", [("/exit", RuntimeError), ("/sync-exit", RuntimeError),
                                         ("/interrupt", KeyboardInterrupt)])
def test_a_body_that_exits_after_its_first_piece_raises_to_the_server(tmp_path, path, error):
    # A future holding SystemExit would never stop the loop (a hang). To the server it is
    # an error like any other, which cuts the connection: a SystemExit escaped waitress's
    # thread, which kept the connection open and the client waiting.
    app = App(str(make_app_dir(tmp_path, {**ENDINGS, "sync-exit/route.py": (
        "import sys\nfrom minirouter import Response\n"
        "def gen():\n    yield 'a'\n    sys.exit(3)\n"
        "def GET():\n    return Response(gen())\n"
    )})))
    body = _call(app, path)
    with pytest.raises(error) as caught:
        list(body)
    if error is RuntimeError:
        assert str(caught.value) == "a streamed body raised SystemExit(3)"
    body.close()
    # The thread's event loop is left fit for the next request's async handler.
    assert client(app).get("/later").json() == {"ok": True}


@pytest.mark.parametrize("path", ["/self-cancel", "/timeout"])
def test_an_async_body_cancelled_between_pieces_is_an_error_not_a_hang(tmp_path, path):
    if path == "/timeout" and not hasattr(asyncio, "timeout"):
        pytest.skip("asyncio.timeout() is Python 3.11+")
    app = App(str(make_app_dir(tmp_path, ENDINGS)))
    body = _call(app, path)
    pieces = iter(body)
    assert next(pieces) in (b"a", b"x0 ")
    time.sleep(0.1)  # a slow client: the deadline passes between two pieces
    with pytest.raises(RuntimeError, match="cancelled between two pieces"):
        list(pieces)
    body.close()


FAILING_LATE = {
    "late/route.py": (
        "from minirouter import Response\n"
        "def gen():\n    yield b'one'\n    raise ValueError('late')\n"
        "def GET():\n    return Response(gen())\n"
    ),
    "closing/route.py": (
        "from minirouter import Response\n"
        "def gen():\n    try:\n        yield b'one'\n        yield b'two'\n    finally:\n"
        "        raise RuntimeError('in finally')\n"
        "def GET():\n    return Response(gen())\n"
    ),
}


def test_a_body_that_fails_after_it_started_is_logged_with_its_route(tmp_path, caplog):
    # The server logs it too, but without the route file: the minirouter logger names it, once.
    app = App(str(make_app_dir(tmp_path, FAILING_LATE)))
    caplog.set_level(logging.ERROR, logger="minirouter")
    body = _call(app, "/late")
    with pytest.raises(ValueError, match="late"):
        list(body)
    body.close()
    [record] = [r for r in caplog.records if r.name == "minirouter"]
    assert "late/route.py: GET handler: its streamed body failed after it started" in record.getMessage()
    assert record.exc_info is not None


def test_a_head_whose_body_fails_when_closed_keeps_its_answer(tmp_path, caplog):
    # HEAD runs the body to its first piece, then closes it: an error there is logged,
    # and the answer is still GET's (not the server's own 500).
    app = App(str(make_app_dir(tmp_path, FAILING_LATE)))
    caplog.set_level(logging.ERROR, logger="minirouter")
    response = client(app).head("/closing")
    assert (response.status, response.content) == (200, b"")
    assert any("its streamed body failed when it was closed" in r.getMessage() for r in caplog.records)


def _within(seconds: float, work):
    """work() on a daemon thread; its result, or a failure if it has not returned in time
    (a body that never hands over its first piece would otherwise hang the test run)."""
    import threading

    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"no answer within {seconds} s: the request hangs"
    return outcome[0]


# The methods of an async iterable of two pieces, "x" and "x" (self.n counts them),
# which the route sources below give their classes.
TWO_ASYNC_PIECES = (
    "    def __aiter__(self):\n        return self\n"
    "    async def __anext__(self):\n"
    "        self.n += 1\n"
    "        if self.n > 2:\n            raise StopAsyncIteration\n"
    "        return 'x'\n"
)

ODD_SOURCES = {
    "aiter-raises/route.py": (
        "from minirouter import Response\n"
        "class Source:\n    def __aiter__(self):\n        raise ValueError('cannot open')\n"
        "def GET():\n    return Response(Source())\n"
    ),
    "aiter-none/route.py": (
        "from minirouter import Response\n"
        "class Source:\n    __aiter__ = None\n"
        "def GET():\n    return Response(Source())\n"
    ),
    "plain-close/route.py": (
        "from minirouter import Response\n"
        "closed = []\n"
        "class Source:\n"
        "    def __init__(self, tag):\n        self.tag, self.n = tag, 0\n"
        + TWO_ASYNC_PIECES +
        "    def close(self):\n        closed.append(self.tag)\n"
        "def GET(request):\n    return Response(Source(request.search_params.get('tag')))\n"
    ),
    "async-close/route.py": (
        "from minirouter import Response\n"
        "closed = []\n"
        "class File:\n"
        "    def __init__(self):\n        self.n = 0\n"
        + TWO_ASYNC_PIECES +
        "    async def close(self):  # as aiofiles' files have\n        closed.append(True)\n"
        "def GET():\n    return Response(File())\n"
    ),
    "close-raises/route.py": (
        "from minirouter import Response\n"
        "class Body:\n"
        "    def __init__(self):\n        self.pieces = iter(['one ', 'two'])\n"
        "    def __iter__(self):\n        return self\n"
        "    def __next__(self):\n        return next(self.pieces)\n"
        "    def close(self):\n        raise ValueError('boom on close')\n"
        "def GET():\n    return Response(Body())\n"
    ),
    "aclose-raises/route.py": (
        "from minirouter import Response\n"
        "class Body:\n"
        "    def __init__(self):\n        self.n = 0\n"
        + TWO_ASYNC_PIECES +
        "    async def aclose(self):\n        raise ValueError('lost in aclose')\n"
        "def GET():\n    return Response(Body())\n"
    ),
}


@pytest.mark.parametrize("path", ["/aiter-raises", "/aiter-none"])
def test_an_async_body_that_cannot_start_iterating_is_a_500_not_a_hang(tmp_path, path, caplog):
    # __aiter__ ran outside the task's error handling: its piece was never handed over,
    # and the server thread waited for it for good.
    app = App(str(make_app_dir(tmp_path, ODD_SOURCES)))
    caplog.set_level(logging.ERROR, logger="minirouter")
    response = _within(10, lambda: client(app).get(path))
    assert response.status == 500 and response.json() == {"error": "internal server error"}
    assert any("its streamed body failed before the first piece" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("stop", ["end", "early"])
def test_an_async_body_with_only_a_plain_close_is_closed_once_started(tmp_path, stop):
    app_dir = make_app_dir(tmp_path, ODD_SOURCES)
    app = App(str(app_dir))
    body = _call(app, "/plain-close")
    pieces = iter(body)
    if stop == "end":
        assert b"".join(pieces) == b"xx"
    else:
        assert next(pieces) == b"x"
    body.close()
    assert import_from_app(app_dir, "plain-close.route").closed == [None]


@pytest.mark.parametrize("path, message", [("/close-raises", "boom on close"), ("/aclose-raises", "lost in aclose")])
def test_a_body_whose_close_fails_after_the_last_piece_is_logged_and_the_answer_stands(tmp_path, path, message,
                                                                                        caplog):
    # Raised to waitress, a complete body reached the client without its last chunk
    # (curl: transfer closed with outstanding read data); an aclose() error was dropped.
    app = App(str(make_app_dir(tmp_path, ODD_SOURCES)))
    caplog.set_level(logging.ERROR, logger="minirouter")
    body = _call(app, path)
    assert b"".join(body) in (b"one two", b"xx")
    body.close()  # does not raise to the server
    [record] = [r for r in caplog.records if r.name == "minirouter"]
    assert record.getMessage().endswith(f"{path}/route.py: GET handler: its streamed body failed when it was closed")
    assert message in str(record.exc_info[1])


def test_an_async_body_is_sent_when_an_async_handler_calls_the_app_in_process(tmp_path):
    # The README says an async handler may call the app in-process; its async body ran
    # on the outer handler's loop, which was running: "The future belongs to a different loop".
    app_dir = make_app_dir(tmp_path, {
        "inner/route.py": (
            "from minirouter import Response\n"
            "async def body():\n    yield 'h'\n    yield 'i'\n"
            "async def GET():\n    return Response(body())\n"
        ),
        "outer/route.py": (
            "from minirouter import App, Response, TestClient\n"
            "import os\n"
            "inner = []  # built on the first request: this module is loaded while the app is built\n"
            "async def GET():\n"
            "    if not inner:\n"
            "        inner.append(TestClient(App(os.path.dirname(os.path.dirname(__file__)))))\n"
            "    answer = inner[0].get('/inner')\n"
            "    return Response(answer.content, answer.status)\n"
        ),
    })
    response = _within(20, lambda: client(App(str(app_dir))).get("/outer"))
    assert (response.status, response.content) == (200, b"hi")


COOKIE_IN_STREAM = (
    "from minirouter import Response, cookies\n"
    "def GET(request):\n"
    "    jar = cookies()\n"
    "    late = request.search_params.get('late') == '1'\n"
    "    def body():\n"
    "        if not late:\n            jar.set('early', '1')\n"
    "        yield 'a'\n"
    "        if late:\n            jar.set('late', '1')\n"
    "        yield 'b'\n"
    "    return Response(body())\n"
)


def test_a_cookie_set_in_a_stream_after_its_first_piece_is_an_error_not_lost(tmp_path, caplog):
    app = App(str(make_app_dir(tmp_path, {"s/route.py": COOKIE_IN_STREAM})))
    early = client(app).get("/s")  # before the first piece: merged with the headers
    assert early.text == "ab" and early.headers.get_all("set-cookie") == ["early=1; Path=/"]
    caplog.set_level(logging.ERROR, logger="minirouter")
    body = _call(app, "/s", "late=1")
    with pytest.raises(RuntimeError, match=r"cookies\(\)\.set\(\) after the answer's headers were made"):
        b"".join(body)
    body.close()
    assert any("its streamed body failed after it started" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_async_body_whose_close_is_async_def_is_closed(tmp_path, method):
    # close() was called and its coroutine never awaited: the file stayed open.
    app_dir = make_app_dir(tmp_path, ODD_SOURCES)
    response = client(App(str(app_dir))).request(method, "/async-close")
    assert response.status == 200 and response.content == (b"xx" if method == "GET" else b"")
    assert import_from_app(app_dir, "async-close.route").closed == [True]


def test_the_main_threads_event_loop_is_closed_at_exit(tmp_path):
    # Left to _ThreadLoop.__del__ at interpreter shutdown, Python 3.13's -X dev printed a traceback.
    import minirouter

    assert client(App(str(make_app_dir(tmp_path, ROUTES)))).get("/async").text == "async chunks"
    loop = minirouter._thread_loop()
    minirouter._close_main_thread_loop()
    assert loop.is_closed()
    assert minirouter._thread_loop() is not loop  # a later request gets a fresh one


class _ClientLeavesInput:
    """A chunked upload (no Content-Length) whose client goes away after some bytes."""

    def __init__(self, before: int, then: BaseException) -> None:
        self.left, self.then = before, then

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            raise self.then
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        return b"x" * size


@pytest.mark.parametrize("then, raised", [
    (ConnectionResetError("peer gone"), ConnectionResetError),  # a gone client, as servers know it
    (None, HTTPError),  # over max_body_size: the 413 can no longer be the answer
])
def test_a_piped_upload_that_fails_after_the_first_piece_is_one_warning_line(tmp_path, caplog, then, raised):
    app = App(str(make_app_dir(tmp_path, ROUTES)), max_body_size=200_000)
    environ = make_environ("POST", "/pipe", input_terminated=True,
                           wsgi_input=_ClientLeavesInput(150_000 if then else 10**6, then or OSError()))
    body = app(environ, lambda status, headers, exc_info=None: None)
    with caplog.at_level(logging.DEBUG, logger="minirouter"):
        with pytest.raises(raised):
            for _ in body:
                pass
        body.close()
    records = [r for r in caplog.records if r.name == "minirouter"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING and records[0].exc_info is None
    assert "pipe/route.py: POST handler: its streamed body stopped after it started: " in records[0].getMessage()


def test_an_upload_cut_short_after_the_first_piece_is_a_gone_client_and_one_warning_line(tmp_path, caplog):
    # The body ends before its Content-Length (the client half-closed): raised as the
    # ECONNRESET servers take for a gone client (gunicorn logs no traceback for it).
    app = App(str(make_app_dir(tmp_path, ROUTES)))
    environ = make_environ("POST", "/pipe", wsgi_input=io.BytesIO(b"x" * 150_000), content_length=str(10**6))
    body = app(environ, lambda status, headers, exc_info=None: None)
    with caplog.at_level(logging.DEBUG, logger="minirouter"):
        with pytest.raises(ConnectionResetError) as raised:
            for _ in body:
                pass
        body.close()
    assert raised.value.errno == errno.ECONNRESET
    records = [r for r in caplog.records if r.name == "minirouter"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING and records[0].exc_info is None
    assert records[0].getMessage().endswith(
        "its streamed body stopped after it started: 400 'request body ended before Content-Length bytes arrived'")


def test_a_client_chosen_message_after_the_first_piece_cannot_forge_a_log_line(tmp_path, caplog):
    files = {"gen/route.py": (
        "from minirouter import HTTPError, Response\n"
        "def GET(request):\n"
        "    def pieces():\n"
        "        yield 'a'\n"
        "        raise HTTPError(400, 'bad id ' + request.search_params.get('id'))\n"
        "    return Response(pieces())\n"
    )}
    app = App(str(make_app_dir(tmp_path, files)))
    body = app(make_environ("GET", "/gen", query="id=1%0AFAKE%20LINE"), lambda status, headers, exc_info=None: None)
    with caplog.at_level(logging.DEBUG, logger="minirouter"):
        with pytest.raises(HTTPError):
            for _ in body:
                pass
        body.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "minirouter"]
    assert len(messages) == 1 and "\n" not in messages[0] and messages[0].endswith("400 'bad id 1\\nFAKE LINE'")


def test_an_apps_own_5xx_after_the_first_piece_keeps_its_traceback(tmp_path, caplog):
    # Only the client's errors (a gone client, a body over the limit) are one line:
    # an upstream failure the app raised as a 502 is its own, and is logged as such.
    app = App(str(make_app_dir(tmp_path, {"up/route.py": """
        from minirouter import HTTPError, Response

        def pieces():
            yield "x"
            try:
                raise ConnectionRefusedError("upstream")
            except ConnectionError as exc:
                raise HTTPError(502, "upstream down") from exc

        def GET():
            return Response(pieces())
        """})))
    body = app(make_environ("GET", "/up"), lambda status, headers, exc_info=None: None)
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        with pytest.raises(HTTPError):  # not re-raised as the upstream's ConnectionError
            for _ in body:
                pass
        body.close()
    records = [r for r in caplog.records if r.name == "minirouter"]
    assert len(records) == 1 and records[0].levelno == logging.ERROR and records[0].exc_info is not None


def test_a_sys_exit_in_a_bodys_finally_when_a_head_closes_it_is_logged_not_raised(tmp_path, caplog):
    # A HEAD closes the body after its first piece: its finally runs then, in the app.
    # A SystemExit there escaped the app (gunicorn's worker exited, waitress hung).
    files = {"s/route.py": (
        "import sys\n"
        "from minirouter import Response\n"
        "def GET():\n"
        "    def pieces():\n"
        "        try:\n"
        "            yield 'first'\n"
        "            yield 'second'\n"
        "        finally:\n"
        "            sys.exit(0)\n"
        "    return Response(pieces())\n"
    )}
    response = client(App(str(make_app_dir(tmp_path, files)))).head("/s")
    assert response.status == 200 and response.content == b""
    assert "its streamed body failed when it was closed" in caplog.text and "SystemExit" in caplog.text
