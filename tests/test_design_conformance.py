"""Black-box conformance tests written from shared/design.md and the issues.

One test per sentence of the design that states behaviour, exercised through
the public API only (App, TestClient, Response, ...), every in-process
exchange checked by wsgiref's PEP 3333 validator unless the test needs an
environ the validator refuses (malformed Content-Length, odd methods).
Each app tree is built in a temporary folder whose basename is a fresh,
identifier-like package name.
"""
from __future__ import annotations

import datetime
import email.utils
import inspect
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional
from urllib.parse import unquote
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import WSGIWarning, validator

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import minirouter  # noqa: E402
from minirouter import (  # noqa: E402
    App,
    HTTPError,
    Response,
    StartupError,
    TestClient,
    cookies,
    headers,
    not_found,
    permanent_redirect,
    redirect,
)

# ---------------------------------------------------------------------------
# Helpers: app trees in temporary folders, a validated client, raw WSGI calls.
# ---------------------------------------------------------------------------


def _write(base: Path, files: dict[str, Any], pkg: str) -> None:
    for rel, content in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).replace("PKGNAME", pkg), encoding="utf-8")


def tree(tmp_path: Path, files: dict[str, Any], public: Optional[dict[str, Any]] = None) -> Path:
    """Write an app folder (and optionally public/ beside it); return the app folder."""
    parent = tmp_path / ("p" + uuid.uuid4().hex[:8])
    pkg = "mrt_" + uuid.uuid4().hex[:12]
    base = parent / pkg
    base.mkdir(parents=True)
    _write(base, files, pkg)
    if public is not None:
        (parent / "public").mkdir()
        _write(parent / "public", public, pkg)
    return base


def make_app(tmp_path: Path, files: dict[str, Any], public: Optional[dict[str, Any]] = None, **kw: Any) -> App:
    return App(str(tree(tmp_path, files, public)), **kw)


def client(app: Any) -> TestClient:
    return TestClient(validator(app))


def label_route(label: str) -> str:
    return f"""
    def GET(request, context):
        return {{"label": {label!r}, "params": context.params}}
    """


def wsgi_call(
    app: Any,
    method: str = "GET",
    path_info: str = "/",
    *,
    body: Any = b"",
    extra: Optional[dict[str, Any]] = None,
    validate: bool = True,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Call a WSGI app with a hand-made environ (no REQUEST_URI unless given)."""
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ["REQUEST_METHOD"] = method
    environ["PATH_INFO"] = path_info
    environ["QUERY_STRING"] = ""  # as servers set it (PEP 3333 allows none; the validator warns)
    environ["wsgi.input"] = body if hasattr(body, "read") else io.BytesIO(body)
    if extra:
        environ.update(extra)
    started: list[Any] = []

    def start_response(status: str, header_list: list, exc_info: Any = None) -> Any:
        started[:] = [status, header_list]
        return lambda data: None

    target = validator(app) if validate else app
    result = target(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return int(started[0].split(" ", 1)[0]), list(started[1]), content


def header_values(header_list: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in header_list if k.lower() == name.lower()]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self, min_level: int = logging.DEBUG) -> str:
        out = []
        for r in self.records:
            if r.levelno >= min_level:
                out.append(r.getMessage())
                if r.exc_info:
                    out.append(logging.Formatter().formatException(r.exc_info))
        return "\n".join(out)


@contextmanager
def minirouter_log() -> Iterator[_Records]:
    """Capture everything logged on the `minirouter` logger (and its children)."""
    logger = logging.getLogger("minirouter")
    handler = _Records()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def assert_json_error(res: Any, status: int) -> dict:
    assert res.status == status, (res.status, res.text)
    assert res.headers.get("content-type", "").split(";")[0].strip() == "application/json"
    assert res.headers.get("content-length") == str(len(res.content))
    body = res.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    return body


# ---------------------------------------------------------------------------
# The route tree (filesystem conventions)
# ---------------------------------------------------------------------------

ROUTING_TREE = {
    "route.py": label_route("root"),
    "hello/route.py": label_route("hello"),
    "comments/[id]/route.py": label_route("comment"),
    "shop/[...slug]/route.py": label_route("shop"),
    "docs/[[...slug]]/route.py": label_route("docs"),
    "(admin)/users/route.py": label_route("users"),
    "(outer)/(inner)/nested/route.py": label_route("nested"),
    "_lib/helpers.py": "X = 1\n",
    "_lib/route.py": label_route("private"),
    "misc/data.py": "X = 1\n",
    "misc/other.html": "<p>no</p>",
    "profile/page.html": "<!doctype html><title>profile</title><p>Profile page</p>",
    "%5Fname/route.py": label_route("underscore"),
    "robots.txt/route.py": label_route("robots"),
    "files/[id]/route.py": label_route("file"),
}


@pytest.fixture
def routing(tmp_path: Path) -> TestClient:
    return client(make_app(tmp_path, ROUTING_TREE))


def test_root_route_py_is_slash(routing: TestClient) -> None:
    res = routing.get("/")
    assert res.status == 200 and res.json()["label"] == "root"


def test_nested_folder_nests_urls(routing: TestClient) -> None:
    assert routing.get("/hello").json()["label"] == "hello"


def test_param_folder_gives_params(routing: TestClient) -> None:
    res = routing.get("/comments/42")
    assert res.status == 200
    assert res.json() == {"label": "comment", "params": {"id": "42"}}


def test_catchall_gives_list_of_segments(routing: TestClient) -> None:
    assert routing.get("/shop/a/b").json() == {"label": "shop", "params": {"slug": ["a", "b"]}}
    assert routing.get("/shop/a").json()["params"] == {"slug": ["a"]}


def test_catchall_needs_at_least_one_segment(routing: TestClient) -> None:
    assert routing.get("/shop").status == 404


def test_optional_catchall_empty_and_list(routing: TestClient) -> None:
    assert routing.get("/docs").json() == {"label": "docs", "params": {"slug": []}}
    assert routing.get("/docs/a/b").json()["params"] == {"slug": ["a", "b"]}


def test_route_group_adds_no_segment(routing: TestClient) -> None:
    assert routing.get("/users").json()["label"] == "users"
    assert routing.get("/nested").json()["label"] == "nested"
    assert routing.get("/admin/users").status == 404
    assert routing.get("/(admin)/users").status == 404


def test_private_folders_never_routed(routing: TestClient) -> None:
    assert routing.get("/_lib").status == 404
    assert routing.get("/_lib/helpers").status == 404
    assert routing.get("/_lib/helpers.py").status == 404


def test_only_route_py_and_page_html_are_routed(routing: TestClient) -> None:
    assert routing.get("/misc").status == 404
    assert routing.get("/misc/data").status == 404
    assert routing.get("/misc/data.py").status == 404
    assert routing.get("/misc/other.html").status == 404
    assert routing.get("/misc/other").status == 404


def test_page_html_served_for_get_and_head(routing: TestClient) -> None:
    res = routing.get("/profile")
    assert res.status == 200
    assert "Profile page" in res.text
    assert res.headers.get("content-type", "").startswith("text/html")
    head = routing.head("/profile")
    assert head.status == 200 and head.content == b""
    assert head.headers.get("content-type", "").startswith("text/html")


def test_static_route_has_empty_params(routing: TestClient) -> None:
    assert routing.get("/hello").json()["params"] == {}


def test_percent_5f_folder_gives_underscore_segment(routing: TestClient) -> None:
    res = routing.get("/_name")
    assert res.status == 200 and res.json()["label"] == "underscore"


def test_folder_name_with_dot(routing: TestClient) -> None:
    assert routing.get("/robots.txt").json()["label"] == "robots"


def test_url_cannot_reach_file_added_after_start(tmp_path: Path) -> None:
    base = tree(tmp_path, {"hello/route.py": label_route("hello")})
    c = client(App(str(base)))
    (base / "late").mkdir()
    (base / "late" / "route.py").write_text(label_route("late"))
    assert c.get("/late").status == 404
    assert c.get("/hello").status == 200


# Matching order and backtracking -------------------------------------------


def test_matching_order_static_param_catchall(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {
        "m/static/route.py": label_route("static"),
        "m/[p]/route.py": label_route("param"),
        "m/[...c]/route.py": label_route("catchall"),
        "n/[p]/route.py": label_route("param"),
        "n/[[...o]]/route.py": label_route("optional"),
    }))
    assert c.get("/m/static").json()["label"] == "static"
    assert c.get("/m/x").json() == {"label": "param", "params": {"p": "x"}}
    assert c.get("/m/x/y").json() == {"label": "catchall", "params": {"c": ["x", "y"]}}
    assert c.get("/n/x").json()["label"] == "param"
    assert c.get("/n").json() == {"label": "optional", "params": {"o": []}}
    assert c.get("/n/x/y").json() == {"label": "optional", "params": {"o": ["x", "y"]}}


def test_backtracking_design_example(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {
        "files/special/route.py": label_route("special"),
        "files/[...path]/route.py": label_route("catchall"),
    }))
    assert c.get("/files/special").json()["label"] == "special"
    assert c.get("/files/special/x").json() == {"label": "catchall", "params": {"path": ["special", "x"]}}


def test_backtracking_from_static_to_param(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {
        "b/static/x/route.py": label_route("static-x"),
        "b/[id]/y/route.py": label_route("param-y"),
    }))
    assert c.get("/b/static/x").json()["label"] == "static-x"
    assert c.get("/b/static/y").json() == {"label": "param-y", "params": {"id": "static"}}
    assert c.get("/b/other/x").status == 404


def test_backtracking_from_param_to_catchall(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {
        "a/[id]/edit/route.py": label_route("edit"),
        "a/[...rest]/route.py": label_route("rest"),
    }))
    assert c.get("/a/1/edit").json() == {"label": "edit", "params": {"id": "1"}}
    assert c.get("/a/1/other").json() == {"label": "rest", "params": {"rest": ["1", "other"]}}


# Percent-decoding -----------------------------------------------------------


def test_encoded_slash_stays_inside_segment(routing: TestClient) -> None:
    res = routing.get("/files/a%2Fb")
    assert res.status == 200
    assert res.json()["params"] == {"id": "a/b"}


def test_segment_decoded_exactly_once(routing: TestClient) -> None:
    assert routing.get("/comments/%2541").json()["params"] == {"id": "%41"}


def test_utf8_escapes_decode_with_request_uri(routing: TestClient) -> None:
    assert routing.get("/comments/caf%C3%A9").json()["params"] == {"id": "café"}


def test_non_ascii_path_in_test_client(routing: TestClient) -> None:
    assert routing.get("/comments/café").json()["params"] == {"id": "café"}


def test_utf8_decode_from_path_info_only(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"comments/[id]/route.py": label_route("c")})
    # PEP 3333: PATH_INFO is the decoded path as a latin-1 string.
    status, _, body = wsgi_call(app, "GET", "/comments/caf\u00c3\u00a9")
    assert status == 200
    assert json.loads(body)["params"] == {"id": "café"}


def test_raw_uri_is_used_when_given(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"files/[id]/route.py": label_route("f")})
    status, _, body = wsgi_call(app, "GET", "/files/a/b", extra={"RAW_URI": "/files/a%2Fb"})
    assert status == 200
    assert json.loads(body)["params"] == {"id": "a/b"}


@pytest.mark.parametrize("path", ["/comments/%zz", "/comments/%", "/comments/%C3", "/comments/%ff"])
def test_malformed_escape_or_bad_utf8_is_400(routing: TestClient, path: str) -> None:
    assert_json_error(routing.get(path), 400)


def test_bad_utf8_in_path_info_is_400(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"comments/[id]/route.py": label_route("c")})
    status, _, body = wsgi_call(app, "GET", "/comments/\u00ff")
    assert status == 400
    assert "error" in json.loads(body)


def test_request_path_is_decoded(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"c/[id]/route.py": """
        def GET(request):
            return {"path": request.path, "url": request.url}
        """}))
    body = c.get("/c/caf%C3%A9?x=1").json()
    assert body["path"] == "/c/café"
    assert body["url"].endswith("/c/caf%C3%A9?x=1")


# Start-up errors ------------------------------------------------------------


def startup_error(tmp_path: Path, files: dict[str, Any]) -> str:
    with pytest.raises(Exception) as info:
        make_app(tmp_path, files)
    return str(info.value)


def test_startup_two_groups_same_url(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"(a)/x/route.py": label_route("a"), "(b)/x/route.py": label_route("b")})
    assert "(a)" in msg and "(b)" in msg


def test_startup_group_and_plain_folder_same_url(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"x/route.py": label_route("a"), "(g)/x/route.py": label_route("b")})
    assert "(g)" in msg


def test_startup_two_param_names_same_level(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"[id]/route.py": label_route("a"), "[slug]/route.py": label_route("b")})
    assert "[id]" in msg and "[slug]" in msg


def test_startup_two_catchall_names_same_level(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"s/[...a]/route.py": label_route("a"), "s/[...b]/route.py": label_route("b")})
    assert "[...a]" in msg and "[...b]" in msg


def test_param_beside_catchall_is_fine(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"[id]/route.py": label_route("a"), "[...rest]/route.py": label_route("b")}))
    assert c.get("/x").json()["label"] == "a"
    assert c.get("/x/y").json()["label"] == "b"


def test_startup_same_param_twice_in_path(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"[id]/sub/[id]/route.py": label_route("a")})
    assert "[id]" in msg


def test_startup_catchall_beside_optional(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"s/[...a]/route.py": label_route("a"), "s/[[...b]]/route.py": label_route("b")})
    assert "[...a]" in msg and "[[...b]]" in msg


def test_startup_route_beside_optional_catchall(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"x/route.py": label_route("a"), "x/[[...slug]]/route.py": label_route("b")})
    assert "[[...slug]]" in msg


def test_startup_catchall_not_last(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"[...a]/x/route.py": label_route("a")})
    assert "[...a]" in msg


def test_startup_optional_catchall_not_last(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"[[...a]]/x/route.py": label_route("a")})
    assert "[[...a]]" in msg


def test_startup_route_that_fails_to_import(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"broken/route.py": "import no_such_module_for_minirouter_xyz\n"})
    assert "broken" in msg and "route.py" in msg


def test_startup_route_with_syntax_error(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"broken/route.py": "def GET(:\n"})
    assert "broken" in msg


def test_startup_route_with_no_handler(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"empty/route.py": "X = 1\n"})
    assert "empty" in msg


def test_lowercase_method_function_warns(tmp_path: Path) -> None:
    with minirouter_log() as log:
        app = make_app(tmp_path, {"w/route.py": """
            def GET():
                return {"ok": True}
            def post():
                return {"typo": True}
            """})
    warnings = [r for r in log.records if r.levelno == logging.WARNING]
    assert any("post" in r.getMessage() for r in warnings), log.text()
    # the typo is never called as a handler
    res = client(app).post("/w")
    assert res.status == 405


def test_route_beside_page_html_route_wins_and_warns(tmp_path: Path) -> None:
    with minirouter_log() as log:
        app = make_app(tmp_path, {"p/route.py": label_route("route"), "p/page.html": "<p>page</p>"})
    assert any(r.levelno == logging.WARNING and "page.html" in r.getMessage() for r in log.records), log.text()
    assert client(app).get("/p").json()["label"] == "route"


# Package imports -------------------------------------------------------------


def test_routes_share_modules_through_absolute_import(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {
        "lib/data.py": "store = []\n",
        "a/route.py": """
            from PKGNAME.lib.data import store
            def POST(request):
                store.append(request.json()["v"])
                return {"n": len(store)}
            """,
        "b/route.py": """
            import PKGNAME.lib.data as data
            def GET():
                return {"store": data.store}
            """,
    }))
    assert c.post("/a", json={"v": 1}).json() == {"n": 1}
    assert c.get("/b").json() == {"store": [1]}


def test_relative_imports_work(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {
        "lib/data.py": "VALUE = 'shared'\n",
        "x/y/route.py": """
            from ...lib.data import VALUE
            def GET():
                return {"v": VALUE}
            """,
    }))
    assert c.get("/x/y").json() == {"v": "shared"}


def test_each_app_imports_afresh(tmp_path: Path) -> None:
    base = tree(tmp_path, {
        "lib/data.py": "store = []\n",
        "a/route.py": """
            from PKGNAME.lib.data import store
            def POST():
                store.append(1)
                return {"n": len(store)}
            """,
    })
    first = client(App(str(base)))
    assert first.post("/a").json() == {"n": 1}
    assert first.post("/a").json() == {"n": 2}
    second = client(App(str(base)))
    assert second.post("/a").json() == {"n": 1}


# ---------------------------------------------------------------------------
# A route module: handlers, signatures, return values
# ---------------------------------------------------------------------------


@pytest.fixture
def handlers_app(tmp_path: Path) -> TestClient:
    return client(make_app(tmp_path, {
        "zero/route.py": "def GET():\n    return {'sig': 0}\n",
        "one/route.py": "def GET(request):\n    return {'sig': 1, 'method': request.method}\n",
        "two/route.py": "def GET(request, context):\n    return {'sig': 2, 'params': context.params}\n",
        "aio/route.py": """
            import asyncio
            async def GET(request, context):
                await asyncio.sleep(0)
                return {"async": True}
            async def POST(request):
                return {"got": request.json(), "text": request.text()}
            """,
        "lst/route.py": "def GET():\n    return [1, 'two', None]\n",
        "none/route.py": "def GET():\n    return None\n",
        "int/route.py": "def GET():\n    return 42\n",
        "badstatus/route.py": "from minirouter import Response\ndef GET():\n    return Response('x', status=600)\n",
        "lowstatus/route.py": "from minirouter import Response\ndef GET():\n    return Response('x', status=99)\n",
        "methods/route.py": """
            from minirouter import Response
            def GET(): return Response("get")
            def POST(): return Response("post")
            def PUT(): return Response("put")
            def PATCH(): return Response("patch")
            def DELETE(): return Response("delete")
            def HEAD(): return Response(headers={"x-head": "own"})
            def OPTIONS(): return Response("options", headers={"x-options": "own"})
            def TRACE(): return Response("trace")
            def FOO(): return Response("foo")
            def Get(): return Response("Get")
            """,
    }))


def test_handler_signatures(handlers_app: TestClient) -> None:
    assert handlers_app.get("/zero").json() == {"sig": 0}
    assert handlers_app.get("/one").json() == {"sig": 1, "method": "GET"}
    assert handlers_app.get("/two").json() == {"sig": 2, "params": {}}


def test_async_handlers_and_sync_body_methods(handlers_app: TestClient) -> None:
    assert handlers_app.get("/aio").json() == {"async": True}
    res = handlers_app.post("/aio", json={"a": 1})
    assert res.json() == {"got": {"a": 1}, "text": '{"a": 1}'}


def test_list_shorthand_is_json(handlers_app: TestClient) -> None:
    res = handlers_app.get("/lst")
    assert res.status == 200
    assert res.headers["content-type"].startswith("application/json")
    assert res.json() == [1, "two", None]


@pytest.mark.parametrize("path", ["/none", "/int", "/badstatus", "/lowstatus"])
def test_bad_return_values_are_500_logged_with_file(handlers_app: TestClient, path: str) -> None:
    with minirouter_log() as log:
        res = handlers_app.get(path)
    assert_json_error(res, 500)
    errors = log.text(logging.ERROR)
    assert "route.py" in errors and path.strip("/") in errors, errors


def test_every_method_name_is_a_handler(handlers_app: TestClient) -> None:
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        res = handlers_app.request(method, "/methods")
        assert res.status == 200 and res.text == method.lower()
    head = handlers_app.head("/methods")
    assert head.headers.get("x-head") == "own" and head.content == b""
    opt = handlers_app.options("/methods")
    assert opt.headers.get("x-options") == "own" and opt.text == "options"


def test_only_seven_names_are_handlers(handlers_app: TestClient) -> None:
    app = handlers_app.app
    for method in ("TRACE", "FOO", "Get", "get"):
        with warnings.catch_warnings():  # the client's validator warns of methods RFC 9110 does not list
            warnings.simplefilter("ignore", WSGIWarning)
            status, _, body = wsgi_call(app, method, "/methods", validate=False)
        assert status == 501, method
        assert "error" in json.loads(body)


# ---------------------------------------------------------------------------
# The public API, exactly as listed
# ---------------------------------------------------------------------------


def test_app_signature_and_named_defaults() -> None:
    sig = inspect.signature(App)
    params = sig.parameters
    assert list(params)[0] == "app_dir" and params["app_dir"].default == "app"
    expected = {
        "debug": False,
        "public_dir": None,
        "max_body_size": 10 * 1024 * 1024,
        "max_form_parts": 1000,
        "max_form_memory": 500 * 1024,
        "spool_size": 1024 * 1024,
        "cache_size": 1024,
    }
    for name, default in expected.items():
        assert name in params, name
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert params[name].default == default, name


def test_app_is_a_wsgi_callable(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"route.py": label_route("root")})
    status, _, body = wsgi_call(app, "GET", "/")
    assert status == 200 and json.loads(body)["label"] == "root"


def test_request_attributes(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"r/route.py": """
        from minirouter import Request, Context
        def POST(request, context):
            assert isinstance(request, Request) and isinstance(context, Context)
            return {
                "method": request.method,
                "url": request.url,
                "path": request.path,
                "h": request.headers.get("X-Thing"),
                "cookie": request.cookies.get("c"),
                "q": request.search_params.get("q"),
                "body": request.body().decode(),
                "text": request.text(),
                "json": request.json(),
            }
        """}))
    res = c.post("/r?q=1", json={"k": "v"}, headers={"X-Thing": "t", "Host": "example.com"}, cookies={"c": "cv"})
    assert res.json() == {
        "method": "POST",
        "url": "http://example.com/r?q=1",
        "path": "/r",
        "h": "t",
        "cookie": "cv",
        "q": "1",
        "body": '{"k": "v"}',
        "text": '{"k": "v"}',
        "json": {"k": "v"},
    }


def test_request_headers_case_insensitive_and_read_only(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"r/route.py": """
        from minirouter import headers
        def GET(request):
            out = {"lower": request.headers.get("x-a"), "upper": request.headers.get("X-A"),
                   "fn": headers().get("x-a")}
            for name, target in (("req", request.headers), ("fn", headers())):
                try:
                    target["x-new"] = "1"
                    out[name + "_set"] = "allowed"
                except Exception as exc:
                    out[name + "_set"] = type(exc).__name__ + ": " + str(exc)
            return out
        """}))
    body = c.get("/r", headers={"X-A": "1"}).json()
    assert body["lower"] == "1" and body["upper"] == "1" and body["fn"] == "1"
    assert body["req_set"] != "allowed" and body["fn_set"] != "allowed"
    assert len(body["req_set"]) > len("TypeError: ")  # a clear error, with a message


def test_request_url_absolute_from_host(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"u/route.py": "def GET(request):\n    return {'url': request.url}\n"}))
    assert c.get("/u?a=1&b=2", headers={"Host": "example.org:8080"}).json()["url"] == "http://example.org:8080/u?a=1&b=2"
    assert c.get("/u", headers={"Host": "example.org"}).json()["url"] == "http://example.org/u"


def test_forwarded_headers_ignored_by_default(tmp_path: Path) -> None:
    files = {"u/route.py": "def GET(request):\n    return {'url': request.url}\n"}
    hdrs = {"Host": "real.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    assert client(make_app(tmp_path, files)).get("/u", headers=hdrs).json()["url"] == "http://real.example/u"
    trusted = client(make_app(tmp_path, files, trust_forwarded=True)).get("/u", headers=hdrs).json()["url"]
    assert trusted == "https://evil.example/u"


def test_search_params(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"q/route.py": """
        def GET(request):
            sp = request.search_params
            return {"a": sp.get("a"), "all": sp.get_all("a"), "missing": sp.get("zz"),
                    "has_a": sp.has("a"), "in_b": "b" in sp, "has_zz": sp.has("zz"),
                    "blank": sp.get("e"), "items": [list(p) for p in sp.items()]}
        """}))
    body = c.get("/q?a=1&b=x&a=2&e=").json()
    assert body["a"] == "1" and body["all"] == ["1", "2"] and body["missing"] is None
    assert body["has_a"] is True and body["in_b"] is True and body["has_zz"] is False
    assert body["blank"] == ""
    assert body["items"] == [["a", "1"], ["b", "x"], ["a", "2"], ["e", ""]]


def test_query_splits_on_ampersand_only(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"q/route.py": """
        def GET(request):
            sp = request.search_params
            return {"a": sp.get("a"), "b": sp.get("b"), "flag": sp.has("flag"), "flagv": sp.get("flag")}
        """}))
    body = c.get("/q?a=1;b=2&flag").json()
    assert body["a"] == "1;b=2" and body["b"] is None
    assert body["flag"] is True and body["flagv"] == ""


def test_request_cookies_read_only_mapping_percent_decoded(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"c/route.py": """
        def GET(request):
            ck = request.cookies
            try:
                ck["new"] = "x"
                ro = False
            except Exception:
                ro = True
            return {"a": ck.get("a"), "has": "a" in ck, "names": sorted(ck), "missing": ck.get("zz"),
                    "enc": ck.get("enc"), "ro": ro}
        """}))
    body = c.get("/c", headers={"Cookie": "a=1; enc=caf%C3%A9%20x"}).json()
    assert body == {"a": "1", "has": True, "names": ["a", "enc"], "missing": None, "enc": "café x", "ro": True}


def test_cookie_header_parsed_pair_by_pair(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"c/route.py": "def GET(request):\n    return dict(request.cookies)\n"}))
    body = c.get("/c", headers={"Cookie": "a=1; garbage; =nameless; b=2"}).json()
    assert body == {"a": "1", "b": "2"}


def test_form_urlencoded(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"f/route.py": """
        def POST(request):
            form = request.form()
            return {"a": form.get("a"), "all": form.get_all("a"), "b": form.get("b"), "none": form.get("zz")}
        """}))
    body = c.post("/f", data={"a": ["1", "2"], "b": "x y"}).json()
    assert body == {"a": "1", "all": ["1", "2"], "b": "x y", "none": None}
    body = c.post("/f", data="a=1&a=2&b=x+y", headers={"Content-Type": "application/x-www-form-urlencoded"}).json()
    assert body == {"a": "1", "all": ["1", "2"], "b": "x y", "none": None}


def test_form_multipart_files(tmp_path: Path) -> None:
    saved = tmp_path / "saved.bin"
    c = client(make_app(tmp_path, {"f/route.py": f"""
        def POST(request):
            form = request.form()
            up = form.get("upload")
            data = up.read()
            up.save({str(saved)!r})
            return {{"field": form.get("field"), "filename": up.filename, "type": up.content_type,
                    "size": up.size, "data": data.decode()}}
        """}))
    res = c.post("/f", data={"field": "v"}, files={"upload": ("name.txt", b"hello file", "text/plain")})
    assert res.json() == {"field": "v", "filename": "name.txt", "type": "text/plain", "size": 10, "data": "hello file"}
    assert saved.read_bytes() == b"hello file"


def test_response_constructor_and_content_types(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {
        "s/route.py": "from minirouter import Response\ndef GET():\n    return Response('héllo', status=201, headers={'X-A': '1'})\n",
        "b/route.py": "from minirouter import Response\ndef GET():\n    return Response(b'\\x00\\x01')\n",
        "i/route.py": "from minirouter import Response\ndef GET():\n    return Response(iter([b'ab', b'cd']))\n",
        "g/route.py": """
            from minirouter import Response
            def gen():
                yield b"x"
                yield "y"
            def GET():
                return Response(gen(), headers={"Content-Type": "text/plain"})
            """,
        "e/route.py": "from minirouter import Response\ndef GET():\n    return Response()\n",
        "j/route.py": "from minirouter import Response\ndef GET():\n    return Response.json({'a': [1]}, status=202, headers={'X-J': 'j'})\n",
    }))
    s = c.get("/s")
    assert s.status == 201 and s.text == "héllo" and s.headers["x-a"] == "1"
    assert s.headers["content-type"] == "text/plain; charset=utf-8"
    b = c.get("/b")
    assert b.content == b"\x00\x01" and b.headers["content-type"] == "application/octet-stream"
    assert c.get("/i").content == b"abcd"
    assert c.get("/g").content == b"xy"
    e = c.get("/e")
    assert e.status == 200 and e.content == b""
    j = c.get("/j")
    assert j.status == 202 and j.json() == {"a": [1]} and j.headers["x-j"] == "j"
    assert j.headers["content-type"].split(";")[0] == "application/json"


def test_async_generator_body_streams(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"g/route.py": """
        from minirouter import Response
        async def agen():
            yield b"a"
            yield "b"
        def GET():
            return Response(agen(), headers={"Content-Type": "text/plain"})
        """}))
    res = c.get("/g")
    assert res.status == 200 and res.content == b"ab"
    assert "content-length" not in res.headers


def test_streamed_body_has_no_content_length(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"g/route.py": """
        from minirouter import Response
        def gen():
            for i in range(3):
                yield b"chunk"
        def GET():
            return Response(gen(), headers={"Content-Type": "text/plain"})
        """}))
    res = c.get("/g")
    assert res.content == b"chunk" * 3
    assert "content-length" not in res.headers


def test_request_stream_yields_chunks(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"s/route.py": """
        def POST(request):
            chunks = list(request.stream())
            return {"n": sum(len(x) for x in chunks), "bytes": all(isinstance(x, bytes) for x in chunks)}
        """}))
    assert c.post("/s", data=b"x" * 200_000).json() == {"n": 200_000, "bytes": True}


def test_response_headers_case_insensitive_and_several_set_cookie() -> None:
    r = Response("x")
    r.headers["X-Thing"] = "1"
    assert r.headers["x-thing"] == "1" and r.headers.get("X-THING") == "1"
    r.headers.append("Set-Cookie", "a=1")
    r.headers.append("set-cookie", "b=2")
    assert r.headers.get_all("Set-Cookie") == ["a=1", "b=2"]


def test_several_set_cookie_reach_the_wire(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"c/route.py": """
        from minirouter import Response
        def GET():
            r = Response("x")
            r.cookies.set("a", "1")
            r.cookies.set("b", "2")
            r.headers.append("Set-Cookie", "c=3")
            return r
        """})
    _, hdrs, _ = wsgi_call(app, "GET", "/c")
    lines = header_values(hdrs, "set-cookie")
    assert len(lines) == 3
    assert [x.split(";")[0] for x in lines] == ["a=1", "b=2", "c=3"]


def test_redirect_helpers(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {
        "r307/route.py": "from minirouter import redirect\ndef GET():\n    redirect('/target?x=1')\n",
        "r308/route.py": "from minirouter import permanent_redirect\ndef GET():\n    permanent_redirect('https://other.example/a')\n",
        "rr/route.py": "from minirouter import Response\ndef GET():\n    return Response.redirect('rel/path')\n",
        "rr301/route.py": "from minirouter import Response\ndef GET():\n    return Response.redirect('/x', 301)\n",
        "nf/route.py": "from minirouter import not_found\ndef GET():\n    not_found()\n",
        "he/route.py": "from minirouter import HTTPError\ndef GET():\n    raise HTTPError(418, 'short and stout')\n",
    }))
    r = c.get("/r307")
    assert r.status == 307 and r.headers["location"] == "/target?x=1" and r.content == b""
    r = c.get("/r308")
    assert r.status == 308 and r.headers["location"] == "https://other.example/a" and r.content == b""
    r = c.get("/rr")
    assert r.status == 307 and r.headers["location"] == "rel/path" and r.content == b""
    r = c.get("/rr301")
    assert r.status == 301 and r.headers["location"] == "/x"
    assert_json_error(c.get("/nf"), 404)
    assert assert_json_error(c.get("/he"), 418) == {"error": "short and stout"}


def test_redirect_is_not_followed_by_test_client(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {
        "a/route.py": "from minirouter import redirect\ndef GET():\n    redirect('/b')\n",
        "b/route.py": label_route("b"),
    }))
    assert c.get("/a").status == 307


def test_test_client_keywords_and_result(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"e/route.py": """
        from minirouter import Response
        def POST(request):
            ct = request.headers.get("content-type") or ""
            r = Response.json({"ct": ct, "body": request.text(), "h": request.headers.get("x-h"),
                               "c": dict(request.cookies)})
            r.cookies.set("out", "v")
            return r
        """}))
    res = c.post("/e", json={"a": 1})
    assert isinstance(res.status, int) and res.status == 200
    assert res.json()["ct"].startswith("application/json") and json.loads(res.json()["body"]) == {"a": 1}
    assert isinstance(res.content, bytes) and isinstance(res.text, str)
    assert res.headers.get("Content-Type") == res.headers.get("content-type")
    assert res.cookies == {"out": "v"}
    assert c.post("/e", data=b"raw").json()["body"] == "raw"
    assert c.post("/e", data="strbody").json()["body"] == "strbody"
    form = c.post("/e", data={"k": "v w"}).json()
    assert form["ct"].startswith("application/x-www-form-urlencoded") and form["body"] == "k=v+w"
    assert c.post("/e", headers={"X-H": "1"}).json()["h"] == "1"
    assert c.post("/e", cookies={"k": "v"}).json()["c"] == {"k": "v"}
    for method in ("put", "patch", "delete", "get", "head", "options"):
        assert callable(getattr(c, method))
    assert c.request("POST", "/e").status == 200


def test_cookies_are_not_kept_between_requests(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"c/route.py": """
        from minirouter import Response
        def GET(request):
            r = Response.json(dict(request.cookies))
            r.cookies.set("set", "1")
            return r
        """}))
    assert c.get("/c").json() == {}
    assert c.get("/c").json() == {}


# Response semantics -----------------------------------------------------------


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b", "a\r\nInjected: 1"])
def test_header_value_with_cr_lf_nul_raises_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        Response("x", headers={"X-A": bad})
    r = Response("x")
    with pytest.raises(ValueError):
        r.headers["X-A"] = bad
    with pytest.raises(ValueError):
        r.headers.set("X-A", bad)
    with pytest.raises(ValueError):
        r.headers.append("X-A", bad)
    with pytest.raises(ValueError):
        Response.redirect("/a" + bad)


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b"])
def test_cookie_with_cr_lf_nul_raises_value_error(bad: str) -> None:
    r = Response("x")
    with pytest.raises(ValueError):
        r.cookies.set(bad, "v")
    with pytest.raises(ValueError):
        r.cookies.set("n", "v", path="/" + bad)
    with pytest.raises(ValueError):
        r.cookies.set("n", "v", domain="example.com" + bad)


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b"])
def test_cookie_value_with_cr_lf_nul_raises_value_error(bad: str) -> None:
    r = Response("x")
    with pytest.raises(ValueError):
        r.cookies.set("n", bad)


def test_header_injection_from_handler_is_500_never_sent(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {
        "h/route.py": "from minirouter import Response\ndef GET():\n    return Response('x', headers={'X-A': 'a\\r\\nInjected: 1'})\n",
        "r/route.py": "from minirouter import redirect\ndef GET():\n    redirect('/x\\r\\nInjected: 1')\n",
        "k/route.py": "from minirouter import cookies\ndef GET():\n    cookies().set('a\\r\\nInjected', '1')\n    return {'ok': True}\n",
    }))
    with minirouter_log():
        for path in ("/h", "/r", "/k"):
            res = c.get(path)
            assert_json_error(res, 500)
            assert "injected" not in res.headers
            assert all("\n" not in v and "\r" not in v for v in res.headers.values())


# Cookies -----------------------------------------------------------------------

COOKIE_LINE = re.compile(
    r"^a=1; Path=/p; Expires=(?P<exp>[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT); "
    r"Max-Age=60; Domain=example\.com; Secure; HttpOnly; SameSite=Lax; Partitioned$"
)


def _set_cookie_lines(r: Response) -> list[str]:
    return r.headers.get_all("set-cookie")


def test_cookie_full_format_and_order() -> None:
    r = Response("x")
    r.cookies.set("a", "1", max_age=60, path="/p", domain="example.com", secure=True,
                  http_only=True, same_site="lax", partitioned=True)
    line = _set_cookie_lines(r)[0]
    m = COOKIE_LINE.match(line)
    assert m, line
    expires = email.utils.parsedate_to_datetime(m.group("exp")).timestamp()
    assert abs(expires - (time.time() + 60)) < 30


def test_cookie_default_path() -> None:
    r = Response("x")
    r.cookies.set("a", "1")
    assert _set_cookie_lines(r) == ["a=1; Path=/"]


@pytest.mark.parametrize("expires", [
    datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc),
    1893456000,
    1893456000.0,
])
def test_cookie_expires_datetime_or_epoch(expires: Any) -> None:
    r = Response("x")
    r.cookies.set("a", "1", expires=expires)
    assert _set_cookie_lines(r) == ["a=1; Path=/; Expires=Tue, 01 Jan 2030 00:00:00 GMT"]


@pytest.mark.parametrize("given,written", [("lax", "Lax"), ("STRICT", "Strict"), ("None", "None"), ("nOnE", "None")])
def test_cookie_same_site_any_case(given: str, written: str) -> None:
    r = Response("x")
    r.cookies.set("a", "1", same_site=given)
    assert _set_cookie_lines(r) == [f"a=1; Path=/; SameSite={written}"]


def test_cookie_delete_writes_expired_empty_value() -> None:
    r = Response("x")
    r.cookies.delete("a")
    line = _set_cookie_lines(r)[0]
    assert line.startswith("a=;")
    assert "Path=/" in line
    assert "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in line


def test_cookie_delete_with_path_and_domain() -> None:
    r = Response("x")
    r.cookies.delete("a", path="/sub", domain="example.com")
    line = _set_cookie_lines(r)[0]
    assert line.startswith("a=;") and "Path=/sub" in line and "Domain=example.com" in line
    assert "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in line


def test_cookie_value_percent_encoded_where_needed() -> None:
    r = Response("x")
    value = 'x y;z,"q"\\é'
    r.cookies.set("a", value)
    line = _set_cookie_lines(r)[0]
    pair = line.split("; Path=")[0]
    raw = pair[len("a="):]
    # RFC 6265 cookie-octet: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
    assert all(ch == "!" or "#" <= ch <= "+" or "-" <= ch <= ":" or "<" <= ch <= "[" or "]" <= ch <= "~" for ch in raw), raw
    assert unquote(raw) == value
    assert Response("x").cookies is not None
    plain = Response("x")
    plain.cookies.set("a", "abc-123_x.y")
    assert _set_cookie_lines(plain) == ["a=abc-123_x.y; Path=/"]


@pytest.mark.parametrize("kwargs", [
    {"name": "a b"}, {"name": "a;b"}, {"name": "a=b"}, {"name": "a,b"}, {"name": ""}, {"name": "é"},
    {"path": "/a;b"}, {"domain": "exa mple.com"}, {"domain": "example.com;x=1"},
])
def test_cookie_bad_name_path_domain_raise_at_set(kwargs: dict) -> None:
    name = kwargs.pop("name", "ok")
    r = Response("x")
    with pytest.raises(ValueError):
        r.cookies.set(name, "v", **kwargs)


def test_cookies_function_set_visible_and_merged(tmp_path: Path) -> None:
    app = make_app(tmp_path, {
        "s/route.py": """
            from minirouter import cookies
            def GET():
                jar = cookies()
                jar.set("m", "1")
                return {"seen": jar.get("m"), "has": jar.has("m"), "in": "m" in jar}
            """,
        "r/route.py": """
            from minirouter import cookies, redirect
            def GET():
                cookies().set("m", "1")
                redirect("/elsewhere")
            """,
        "w/route.py": """
            from minirouter import cookies, Response
            def GET():
                cookies().set("m", "from-jar")
                cookies().set("other", "kept")
                r = Response("x")
                r.cookies.set("m", "own")
                return r
            """,
        "d/route.py": """
            from minirouter import cookies
            def GET():
                before = cookies().get("c")
                cookies().delete("c")
                return {"before": before, "after": cookies().get("c"), "has": cookies().has("c")}
            """,
    })
    c = client(app)
    res = c.get("/s")
    assert res.json() == {"seen": "1", "has": True, "in": True}
    assert res.cookies == {"m": "1"}
    res = c.get("/r")
    assert res.status == 307 and res.cookies == {"m": "1"}
    _, hdrs, _ = wsgi_call(app, "GET", "/w")
    lines = [x.split(";")[0] for x in header_values(hdrs, "set-cookie")]
    assert sorted(lines) == ["m=own", "other=kept"]
    res = c.get("/d", cookies={"c": "v"})
    assert res.json() == {"before": "v", "after": None, "has": False}
    line = res.headers.get_all("set-cookie")[0]
    assert line.startswith("c=;") and "1970" in line


def test_cookies_function_reads_request_cookies(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"g/route.py": """
        from minirouter import cookies
        def GET():
            jar = cookies()
            return {"a": jar.get("a"), "in": "a" in jar, "none": jar.get("zz"), "names": sorted(jar)}
        """}))
    assert c.get("/g", cookies={"a": "1", "b": "2"}).json() == {"a": "1", "in": True, "none": None, "names": ["a", "b"]}


def test_headers_and_cookies_functions_outside_request_raise() -> None:
    with pytest.raises(RuntimeError):
        headers()
    with pytest.raises(RuntimeError):
        cookies()


# ---------------------------------------------------------------------------
# What the framework answers by itself
# ---------------------------------------------------------------------------


@pytest.fixture
def auto_app(tmp_path: Path) -> Any:
    return make_app(tmp_path, {
        "comments/route.py": """
            from minirouter import Response
            def GET(request):
                return Response("list", headers={"X-Custom": "kept"})
            def POST(request):
                return {"posted": True}
            """,
        "postonly/route.py": "def POST():\n    return {'ok': True}\n    \ndef DELETE():\n    return {'ok': True}\n",
        "boom/route.py": "def GET():\n    raise RuntimeError('secret-detail-xyz')\n",
        "json/route.py": "def POST(request):\n    return {'got': request.json()}\n",
        "profile/page.html": "<p>page</p>",
    })


def test_no_route_is_404_json(auto_app: Any) -> None:
    assert_json_error(client(auto_app).get("/nothing/here"), 404)


def test_405_with_allow_same_as_options(auto_app: Any) -> None:
    c = client(auto_app)
    res = c.put("/comments")
    assert_json_error(res, 405)
    assert res.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    opt = c.options("/comments")
    assert opt.status == 204 and opt.headers["allow"] == res.headers["allow"]
    res = c.get("/postonly")
    assert_json_error(res, 405)
    assert res.headers["allow"] == "DELETE, OPTIONS, POST"
    assert c.options("/postonly").headers["allow"] == "DELETE, OPTIONS, POST"


def test_options_204_has_no_body(auto_app: Any) -> None:
    opt = client(auto_app).options("/comments")
    assert opt.status == 204 and opt.content == b""


@pytest.mark.parametrize("method", ["FOO", "get", "TRACE", "CONNECT", "PROPFIND"])
@pytest.mark.parametrize("path", ["/comments", "/nothing", "/profile", "/"])
def test_other_methods_are_501_whatever_the_path(auto_app: Any, method: str, path: str) -> None:
    status, hdrs, body = wsgi_call(auto_app, method, path, validate=False)
    assert status == 501
    assert header_values(hdrs, "content-type")[0].startswith("application/json")
    assert "error" in json.loads(body)


def test_page_html_other_method_405(auto_app: Any) -> None:
    c = client(auto_app)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        res = c.request(method, "/profile")
        assert_json_error(res, 405)
        assert res.headers["allow"] == "GET, HEAD, OPTIONS"


def test_page_html_options_204(auto_app: Any) -> None:
    res = client(auto_app).options("/profile")
    assert res.status == 204 and res.headers["allow"] == "GET, HEAD, OPTIONS"


def test_head_uses_get_body_dropped_headers_kept(auto_app: Any) -> None:
    c = client(auto_app)
    res = c.head("/comments")
    assert res.status == 200
    assert res.content == b""
    assert res.headers["x-custom"] == "kept"
    assert res.headers["content-type"] == "text/plain; charset=utf-8"


def test_trailing_slash_308_query_kept(auto_app: Any) -> None:
    c = client(auto_app)
    res = c.get("/comments/")
    assert res.status == 308
    assert res.headers["location"].endswith("/comments") and "//" not in res.headers["location"].split("://")[-1]
    res = c.get("/comments/?a=1&b=2")
    assert res.status == 308 and res.headers["location"].endswith("/comments?a=1&b=2")
    assert c.post("/comments/").status == 308


def test_trailing_slash_redirect_uses_host_not_forwarded(auto_app: Any) -> None:
    res = client(auto_app).get("/comments/", headers={"Host": "real.example", "X-Forwarded-Host": "evil.example"})
    assert "evil.example" not in res.headers["location"]


def test_malformed_json_is_400_saying_why(auto_app: Any) -> None:
    c = client(auto_app)
    res = c.post("/json", data=b'{"a": ', headers={"Content-Type": "application/json"})
    body = assert_json_error(res, 400)
    assert len(body["error"]) > 5


def test_uncaught_exception_is_500_generic_and_logged(auto_app: Any) -> None:
    with minirouter_log() as log:
        res = client(auto_app).get("/boom")
    assert_json_error(res, 500)
    assert "secret-detail-xyz" not in res.text and "Traceback" not in res.text
    logged = log.text(logging.ERROR)
    assert "secret-detail-xyz" in logged and "Traceback" in logged


def test_debug_true_shows_traceback(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"boom/route.py": "def GET():\n    raise RuntimeError('secret-detail-xyz')\n"}, debug=True)
    with minirouter_log():
        res = client(app).get("/boom")
    assert res.status == 500
    assert "secret-detail-xyz" in res.text and "Traceback" in res.text


@pytest.mark.parametrize("path", ["/comments", "/nothing", "/boom", "/comments/", "/postonly", "/profile"])
def test_head_never_has_a_body(auto_app: Any, path: str) -> None:
    with minirouter_log():
        res = client(auto_app).head(path)
    assert res.content == b""


def test_head_never_has_a_body_over_real_server(auto_app: Any) -> None:
    # over a socket the body would show up as extra bytes after the headers
    with serve_wsgiref(auto_app) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"HEAD /nothing HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 404")
    assert rest == b""


# ---------------------------------------------------------------------------
# Limits and parsing rules
# ---------------------------------------------------------------------------


class SpyInput:
    """A wsgi.input that counts what is read from it; endless when size is None."""

    def __init__(self, size: Optional[int]) -> None:
        self.size = size
        self.read_bytes = 0

    def _take(self, n: int) -> bytes:
        if n is None or n < 0:
            n = (self.size - self.read_bytes) if self.size is not None else 1 << 20
        if self.size is not None:
            n = min(n, self.size - self.read_bytes)
        n = max(n, 0)
        self.read_bytes += n
        return b"x" * n

    def read(self, n: int = -1) -> bytes:
        return self._take(n)

    def readline(self, n: int = -1) -> bytes:
        return self._take(n if n is not None and n >= 0 else 8192)

    def readlines(self, hint: int = -1) -> list:
        return [self.readline()]

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line


def body_app(tmp_path: Path, marker: Path, **kw: Any) -> App:
    return make_app(tmp_path, {"b/route.py": f"""
        def POST(request):
            open({str(marker)!r}, "w").close()
            return {{"n": len(request.body())}}
        """}, **kw)


def test_413_from_content_length_before_handler_body_not_read(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    app = body_app(tmp_path, marker, max_body_size=100)
    spy = SpyInput(1000)
    status, hdrs, body = wsgi_call(app, "POST", "/b", body=spy, extra={"CONTENT_LENGTH": "1000", "CONTENT_TYPE": "text/plain"})
    assert status == 413
    assert "error" in json.loads(body)
    assert not marker.exists()
    assert spy.read_bytes == 0


def test_body_at_limit_is_accepted(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    c = client(body_app(tmp_path, marker, max_body_size=100))
    assert c.post("/b", data=b"x" * 100).json() == {"n": 100}
    assert_json_error(c.post("/b", data=b"x" * 101), 413)


def test_body_without_content_length_cut_at_limit(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    app = body_app(tmp_path, marker, max_body_size=1000)
    spy = SpyInput(None)  # endless
    status, _, body = wsgi_call(app, "POST", "/b", body=spy, extra={"wsgi.input_terminated": True})
    assert status == 413 and "error" in json.loads(body)
    assert spy.read_bytes <= 1000 + 256 * 1024


def test_body_without_content_length_terminated_is_read(tmp_path: Path) -> None:
    app = body_app(tmp_path, tmp_path / "ran")
    status, _, body = wsgi_call(app, "POST", "/b", body=io.BytesIO(b"y" * 50), extra={"wsgi.input_terminated": True})
    assert status == 200 and json.loads(body) == {"n": 50}


def test_body_without_content_length_not_terminated_is_empty(tmp_path: Path) -> None:
    app = body_app(tmp_path, tmp_path / "ran")
    status, _, body = wsgi_call(app, "POST", "/b", body=io.BytesIO(b"y" * 50))
    assert status == 200 and json.loads(body) == {"n": 0}


@pytest.mark.parametrize("value", ["+5", "-1", "0x5", "5_0", "5.0", "five", " 5x", "\u0665", "1e3"])
def test_content_length_ascii_digits_only(tmp_path: Path, value: str) -> None:
    app = body_app(tmp_path, tmp_path / "ran")
    status, _, body = wsgi_call(app, "POST", "/b", body=io.BytesIO(b"hello"), extra={"CONTENT_LENGTH": value}, validate=False)
    assert status == 400, value
    assert "error" in json.loads(body)


def form_limit_app(tmp_path: Path, **kw: Any) -> TestClient:
    return client(make_app(tmp_path, {"f/route.py": """
        def POST(request):
            form = request.form()
            out = {}
            for name in form:
                v = form.get(name)
                out[name] = v if isinstance(v, str) else {"size": v.size, "data": v.read().decode()}
            return out
        """}, **kw))


def test_max_form_parts_multipart(tmp_path: Path) -> None:
    c = form_limit_app(tmp_path, max_form_parts=3)
    ok = c.post("/f", data={"a": "1", "b": "2"}, files={"f": ("f.txt", b"x", "text/plain")})
    assert ok.status == 200
    res = c.post("/f", data={"a": "1", "b": "2", "c": "3"}, files={"f": ("f.txt", b"x", "text/plain")})
    assert_json_error(res, 413)


def test_max_form_parts_urlencoded(tmp_path: Path) -> None:
    c = form_limit_app(tmp_path, max_form_parts=3)
    assert c.post("/f", data={"a": "1", "b": "2", "c": "3"}).status == 200
    assert_json_error(c.post("/f", data={"a": "1", "b": "2", "c": "3", "d": "4"}), 413)


def test_max_form_memory_caps_non_file_field_only(tmp_path: Path) -> None:
    c = form_limit_app(tmp_path, max_form_memory=1000)
    assert_json_error(c.post("/f", data={"big": "x" * 2000}, files={"f": ("f.txt", b"x", "text/plain")}), 413)
    res = c.post("/f", data={"small": "y"}, files={"f": ("f.txt", b"z" * 5000, "text/plain")})
    assert res.status == 200 and res.json()["f"]["size"] == 5000


def test_max_form_memory_urlencoded_field(tmp_path: Path) -> None:
    c = form_limit_app(tmp_path, max_form_memory=1000)
    assert_json_error(c.post("/f", data={"big": "x" * 2000}), 413)


def test_spool_size_file_above_is_still_whole(tmp_path: Path) -> None:
    c = form_limit_app(tmp_path, spool_size=1024)
    payload = "0123456789" * 1000
    res = c.post("/f", files={"f": ("big.txt", payload.encode(), "text/plain")})
    assert res.json()["f"] == {"size": 10000, "data": payload}


def test_each_limit_has_its_own_413_message(tmp_path: Path) -> None:
    c = form_limit_app(tmp_path, max_body_size=5000, max_form_parts=3, max_form_memory=100)
    body_msg = assert_json_error(c.post("/f", data={"a": "x" * 6000}), 413)["error"]
    parts_msg = assert_json_error(c.post("/f", files={k: ("f.txt", b"x", "text/plain") for k in "abcd"}), 413)["error"]
    memory_msg = assert_json_error(c.post("/f", data={"a": "x" * 200}, files={"f": ("f.txt", b"x", "text/plain")}), 413)["error"]
    assert len({body_msg, parts_msg, memory_msg}) == 3, (body_msg, parts_msg, memory_msg)


@pytest.fixture
def json_app(tmp_path: Path) -> TestClient:
    return client(make_app(tmp_path, {"j/route.py": "def POST(request):\n    return {'got': request.json()}\n"}))


@pytest.mark.parametrize("ctype", [
    "application/json", "application/json; charset=utf-8", "Application/JSON",
    "application/problem+json", "application/vnd.api+json; x=y",
])
def test_json_accepted_media_types(json_app: TestClient, ctype: str) -> None:
    res = json_app.post("/j", data=b'{"a": 1}', headers={"Content-Type": ctype})
    assert res.status == 200 and res.json() == {"got": {"a": 1}}


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/jsonx", "application/x-www-form-urlencoded",
                                   "text/json", "application/json-patch"])
def test_json_other_media_types_415(json_app: TestClient, ctype: Optional[str]) -> None:
    hdrs = {"Content-Type": ctype} if ctype else {}
    body = assert_json_error(json_app.post("/j", data=b'{"a": 1}', headers=hdrs), 415)
    assert "application/json" in body["error"]


def test_json_decoded_as_utf8_whatever_charset(json_app: TestClient) -> None:
    res = json_app.post("/j", data='{"a": "é"}'.encode(), headers={"Content-Type": "application/json; charset=latin-1"})
    assert res.json() == {"got": {"a": "é"}}


@pytest.mark.parametrize("body", [b"", b"\xff\xfe{}", b"{bad json}", b"[" * 100000 + b"]" * 100000])
def test_json_bad_bodies_400(json_app: TestClient, body: bytes) -> None:
    res = json_app.post("/j", data=body, headers={"Content-Type": "application/json"})
    assert_json_error(res, 400)


# ---------------------------------------------------------------------------
# Middleware
# ---------------------------------------------------------------------------

MIDDLEWARE = """
from minirouter import Response

config = {"matcher": ["/api/:path*", "/items/:id+", "/about", "/user/:id", "/mw/:rest*"]}

def middleware(request):
    p = request.path
    if p == "/mw/answer":
        return Response.json({"from": "middleware"}, status=401)
    if p == "/mw/noroute":
        return Response("virtual")
    if p == "/mw/none":
        return None
    if p == "/mw/headers":
        return Response.next(request_headers={"x-a": "1", "x-b": None}, headers={"x-extra": "yes"})
    if p == "/mw/cookie":
        r = Response.next()
        r.cookies.set("mwc", "v")
        return r
    if p == "/mw/rewrite":
        return Response.rewrite("/target")
    if p == "/mw/rewrite-missing":
        return Response.rewrite("/no/such/route")
    if p == "/mw/redirect":
        return Response.redirect("/target")
    if p == "/mw/raise":
        raise RuntimeError("middleware boom")
    return Response.next(headers={"x-mw": "ran"})
"""

ECHO = """
from minirouter import headers
def GET(request):
    return {"label": "LABEL", "url": request.url, "path": request.path,
            "x-a": request.headers.get("x-a"), "x-b": request.headers.get("x-b"),
            "fn-x-a": headers().get("x-a"), "fn-x-b": headers().get("x-b")}
"""


@pytest.fixture
def mw(tmp_path: Path) -> TestClient:
    return client(make_app(tmp_path, {
        "middleware.py": MIDDLEWARE,
        "api/[[...p]]/route.py": ECHO.replace("LABEL", "api"),
        "items/[[...p]]/route.py": ECHO.replace("LABEL", "items"),
        "about/[[...p]]/route.py": ECHO.replace("LABEL", "about"),
        "user/[[...p]]/route.py": ECHO.replace("LABEL", "user"),
        "other/route.py": ECHO.replace("LABEL", "other"),
        "target/route.py": ECHO.replace("LABEL", "target"),
        "mw/[...p]/route.py": ECHO.replace("LABEL", "mw"),
    }))


@pytest.mark.parametrize("path,matched", [
    ("/api", True), ("/api/a", True), ("/api/a/b", True),
    ("/items", False), ("/items/1", True), ("/items/1/2", True),
    ("/about", True), ("/about/x", False),
    ("/user", False), ("/user/1", True), ("/user/1/2", False),
    ("/other", False),
])
def test_matcher_syntax(mw: TestClient, path: str, matched: bool) -> None:
    res = mw.get(path)
    assert res.status == 200
    assert (res.headers.get("x-mw") == "ran") is matched


def test_middleware_answers_for_path_without_route(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"middleware.py": MIDDLEWARE, "target/route.py": ECHO.replace("LABEL", "t")}))
    res = c.get("/mw/noroute")
    assert res.status == 200 and res.text == "virtual"


def test_middleware_other_response_answers_at_once(tmp_path: Path) -> None:
    marker = tmp_path / "route-ran"
    c = client(make_app(tmp_path, {
        "middleware.py": MIDDLEWARE,
        "mw/answer/route.py": f"def GET():\n    open({str(marker)!r}, 'w').close()\n    return {{'route': True}}\n",
        "target/route.py": ECHO.replace("LABEL", "t"),
    }))
    res = c.get("/mw/answer")
    assert res.status == 401 and res.json() == {"from": "middleware"}
    assert not marker.exists()
    red = c.get("/mw/redirect")
    assert red.status == 307 and red.headers["location"] == "/target"


def test_middleware_none_goes_on(mw: TestClient) -> None:
    res = mw.get("/mw/none")
    assert res.status == 200 and res.json()["label"] == "mw"


def test_middleware_request_headers_add_replace_remove(mw: TestClient) -> None:
    res = mw.get("/mw/headers", headers={"x-a": "0", "x-b": "gone"})
    body = res.json()
    assert body["x-a"] == "1" and body["fn-x-a"] == "1"
    assert body["x-b"] is None and body["fn-x-b"] is None
    assert res.headers.get("x-extra") == "yes"
    assert "x-a" not in res.headers


def test_middleware_next_cookies_land_on_final_response(mw: TestClient) -> None:
    res = mw.get("/mw/cookie")
    assert res.status == 200 and res.json()["label"] == "mw"
    assert res.cookies.get("mwc") == "v"


def test_middleware_rewrite_keeps_url(mw: TestClient) -> None:
    res = mw.get("/mw/rewrite?q=1", headers={"Host": "example.org"})
    assert res.status == 200
    body = res.json()
    assert body["label"] == "target"
    assert body["url"] == "http://example.org/mw/rewrite?q=1"


def test_middleware_rewrite_to_missing_route_is_404(mw: TestClient) -> None:
    assert_json_error(mw.get("/mw/rewrite-missing"), 404)


def test_middleware_that_raises_is_500(mw: TestClient) -> None:
    with minirouter_log() as log:
        res = mw.get("/mw/raise")
    assert_json_error(res, 500)
    assert "middleware boom" not in res.text
    assert "middleware boom" in log.text(logging.ERROR)


def test_middleware_bookkeeping_never_leaks(mw: TestClient) -> None:
    for path in ("/mw/headers", "/mw/rewrite", "/mw/cookie", "/api/x", "/mw/none"):
        res = mw.get(path)
        for name in res.headers:
            assert "middleware" not in name.lower() and "rewrite" not in name.lower(), (path, name)
            assert not name.lower().startswith("x-minirouter"), (path, name)


def test_middleware_without_matcher_runs_everywhere(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {
        "middleware.py": """
            from minirouter import Response
            def middleware(request):
                if request.path == "/virtual":
                    return Response("from middleware")
                return Response.next(headers={"x-mw": "ran"})
            """,
        "route.py": label_route("root"),
        "a/b/route.py": label_route("ab"),
    }))
    assert c.get("/").headers.get("x-mw") == "ran"
    assert c.get("/a/b").headers.get("x-mw") == "ran"
    assert c.get("/virtual").text == "from middleware"


def test_middleware_bad_matcher_is_startup_error(tmp_path: Path) -> None:
    with pytest.raises(Exception) as info:
        make_app(tmp_path, {
            "middleware.py": "config = {'matcher': ['api/:path*']}\ndef middleware(request):\n    return None\n",
            "route.py": label_route("root"),
        })
    assert "api/:path*" in str(info.value)


# ---------------------------------------------------------------------------
# Caching
# ---------------------------------------------------------------------------

COUNTER_ROUTE = """
from minirouter import Response
POLICY
calls = [0]
def GET(request):
    calls[0] += 1
    return Response.json({"n": calls[0]})
def POST(request):
    calls[0] += 1
    return Response.json({"n": calls[0]})
"""


def counter_app(tmp_path: Path, policy: str, **kw: Any) -> TestClient:
    return client(make_app(tmp_path, {
        "t/route.py": COUNTER_ROUTE.replace("POLICY", policy),
        "e/route.py": """
            from minirouter import Response, HTTPError, cookies
            revalidate = 60
            calls = [0]
            def GET(request):
                calls[0] += 1
                if calls[0] == 1:
                    return Response.json({"n": calls[0]}, status=404)
                if calls[0] == 2:
                    r = Response.json({"n": calls[0]})
                    r.cookies.set("c", "1")
                    return r
                return Response.json({"n": calls[0]})
            """,
    }, **kw))


def test_revalidate_caches_get_for_n_seconds(tmp_path: Path) -> None:
    c = counter_app(tmp_path, "revalidate = 1")
    assert c.get("/t").json() == {"n": 1}
    assert c.get("/t").json() == {"n": 1}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.3)
        if c.get("/t").json() != {"n": 1}:
            break
    assert c.get("/t").json()["n"] == 2


def test_revalidate_per_url_query_included(tmp_path: Path) -> None:
    c = counter_app(tmp_path, "revalidate = 60")
    assert c.get("/t?a=1").json() == {"n": 1}
    assert c.get("/t?a=1").json() == {"n": 1}
    assert c.get("/t?a=2").json() == {"n": 2}
    assert c.get("/t?a=2").json() == {"n": 2}


def test_cache_only_get(tmp_path: Path) -> None:
    c = counter_app(tmp_path, "revalidate = 60")
    assert c.post("/t").json() == {"n": 1}
    assert c.post("/t").json() == {"n": 2}


def test_cache_only_200_without_cookie(tmp_path: Path) -> None:
    c = counter_app(tmp_path, "")
    assert c.get("/e").status == 404
    assert c.get("/e").json() == {"n": 2}
    assert c.get("/e").json() == {"n": 3}  # the one with a cookie was not cached
    assert c.get("/e").json() == {"n": 3}


def test_no_policy_never_caches(tmp_path: Path) -> None:
    c = counter_app(tmp_path, "")
    assert [c.get("/t").json()["n"] for _ in range(3)] == [1, 2, 3]
    c = counter_app(tmp_path, "dynamic = 'force-dynamic'")
    assert [c.get("/t").json()["n"] for _ in range(3)] == [1, 2, 3]


def test_cache_size_lru(tmp_path: Path) -> None:
    c = counter_app(tmp_path, "revalidate = 600", cache_size=2)
    assert c.get("/t?a=1").json()["n"] == 1
    assert c.get("/t?a=2").json()["n"] == 2
    assert c.get("/t?a=1").json()["n"] == 1  # hit: a=1 now most recent
    assert c.get("/t?a=3").json()["n"] == 3  # evicts a=2
    assert c.get("/t?a=1").json()["n"] == 1
    assert c.get("/t?a=2").json()["n"] == 4


def test_force_static_strips_query_headers_cookies(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"s/route.py": """
        dynamic = "force-static"
        calls = [0]
        def GET(request):
            calls[0] += 1
            return {"n": calls[0], "q": request.search_params.get("a"), "h": request.headers.get("x-h"),
                    "c": request.cookies.get("c"), "cookies": len(list(request.cookies))}
        """}))
    first = c.get("/s?a=1", headers={"X-H": "1"}, cookies={"c": "1"}).json()
    assert first == {"n": 1, "q": None, "h": None, "c": None, "cookies": 0}
    assert c.get("/s?a=2", headers={"X-H": "2"}).json()["n"] == 1
    assert c.get("/s").json()["n"] == 1


def test_cached_head_has_no_body(tmp_path: Path) -> None:
    c = counter_app(tmp_path, "revalidate = 60")
    c.get("/t")
    res = c.head("/t")
    assert res.status == 200 and res.content == b""


# ---------------------------------------------------------------------------
# page.html and public/
# ---------------------------------------------------------------------------


@pytest.fixture
def static_setup(tmp_path: Path) -> tuple[Any, Path]:
    base = tree(tmp_path, {
        "hello.txt/route.py": "from minirouter import Response\ndef GET():\n    return Response('from route')\n",
        "page/page.html": "<p>page</p>",
    }, public={
        "logo.png": b"\x89PNG\r\n\x1a\n" + b"0" * 22,
        "data.txt": "0123456789",
        "style.css": "body{}",
        "hello.txt": "from public",
        ".env": "SECRET=1",
        "sub/inner.txt": "inner",
    })
    (base.parent / "secret.txt").write_text("top secret")
    try:
        os.symlink(base.parent / "secret.txt", base.parent / "public" / "link.txt")
    except OSError:
        pass
    return App(str(base)), base


def test_public_served_at_root_with_type(static_setup: tuple) -> None:
    c = client(static_setup[0])
    res = c.get("/logo.png")
    assert res.status == 200 and res.headers["content-type"] == "image/png"
    assert res.content.startswith(b"\x89PNG")
    css = c.get("/style.css")
    assert css.headers["content-type"].startswith("text/css") and css.text == "body{}"
    assert c.get("/sub/inner.txt").text == "inner"


def test_public_etag_last_modified_304(static_setup: tuple) -> None:
    c = client(static_setup[0])
    res = c.get("/data.txt")
    etag, lm = res.headers["etag"], res.headers["last-modified"]
    assert etag and lm
    again = c.get("/data.txt", headers={"If-None-Match": etag})
    assert again.status == 304 and again.content == b""
    assert again.headers["etag"] == etag
    since = c.get("/data.txt", headers={"If-Modified-Since": lm})
    assert since.status == 304 and since.content == b""
    assert since.headers.get("etag") == etag
    other = c.get("/data.txt", headers={"If-None-Match": '"nope"'})
    assert other.status == 200


def test_public_range(static_setup: tuple) -> None:
    c = client(static_setup[0])
    res = c.get("/data.txt", headers={"Range": "bytes=2-5"})
    assert res.status == 206 and res.content == b"2345"
    assert res.headers["content-range"] == "bytes 2-5/10"
    assert c.get("/data.txt", headers={"Range": "bytes=-3"}).content == b"789"
    bad = c.get("/data.txt", headers={"Range": "bytes=100-200"})
    assert bad.status == 416
    assert bad.headers.get("content-range") == "bytes */10"


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/sub/..%2f..%2fsecret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "/sub%5c..%5c..%5csecret.txt",
    "/sub\\..\\..\\secret.txt", "/data.txt%00", "/data%00.txt", "/.env", "/%2eenv", "/link.txt",
    "/sub/../../secret.txt",
])
def test_public_no_way_out(static_setup: tuple, path: str) -> None:
    res = client(static_setup[0]).get(path)
    assert res.status == 404, (path, res.status)
    assert "top secret" not in res.text and "SECRET" not in res.text


def test_routes_win_over_public(static_setup: tuple) -> None:
    assert client(static_setup[0]).get("/hello.txt").text == "from route"


def test_public_head_no_body(static_setup: tuple) -> None:
    res = client(static_setup[0]).head("/data.txt")
    assert res.status == 200 and res.content == b""


def test_public_dir_option(tmp_path: Path) -> None:
    other = tmp_path / "assets"
    other.mkdir()
    (other / "a.txt").write_text("asset")
    app = make_app(tmp_path, {"route.py": label_route("root")}, public_dir=str(other))
    assert client(app).get("/a.txt").text == "asset"


# ---------------------------------------------------------------------------
# route_table (tooling) and the CLI
# ---------------------------------------------------------------------------


def test_route_table(tmp_path: Path) -> None:
    base = tree(tmp_path, {
        "comments/[id]/route.py": "def GET(): return {}\ndef PATCH(): return {}\n",
        "shop/[...slug]/route.py": label_route("s"),
        "docs/[[...slug]]/route.py": label_route("d"),
        "profile/page.html": "<p>x</p>",
    })
    table = {r.url: r for r in App(str(base)).route_table()}
    c = table["/comments/[id]"]
    assert c.kind == "route" and c.methods == ("GET", "HEAD", "OPTIONS", "PATCH")
    assert set(c.handlers) == {"GET", "PATCH"} and c.params == [("id", "single")]
    assert os.path.isabs(c.file) and c.file.endswith("route.py") and c.module is not None
    assert table["/shop/[...slug]"].params == [("slug", "catchall")]
    assert table["/docs/[[...slug]]"].params == [("slug", "optional")]
    p = table["/profile"]
    assert p.kind == "page" and p.handlers == {} and p.module is None


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minirouter", *args], cwd=str(ROOT), capture_output=True,
                          text=True, timeout=30)


def test_cli_routes(tmp_path: Path) -> None:
    base = tree(tmp_path, {"comments/[id]/route.py": label_route("c")})
    res = run_cli("routes", str(base))
    assert res.returncode == 0, res.stderr
    assert "/comments/[id]" in res.stdout and "GET" in res.stdout and "HEAD" in res.stdout


def test_cli_routes_invalid_tree_nonzero(tmp_path: Path) -> None:
    base = tree(tmp_path, {"[id]/route.py": label_route("a"), "[slug]/route.py": label_route("b")})
    res = run_cli("routes", str(base))
    assert res.returncode != 0 and "[slug]" in (res.stderr + res.stdout)


def test_cli_missing_folder_and_help(tmp_path: Path) -> None:
    assert run_cli("routes", str(tmp_path / "nope")).returncode != 0
    assert run_cli("--help").returncode == 0
    for sub in ("serve", "routes", "openapi"):
        assert run_cli(sub, "--help").returncode == 0, sub


def test_cli_openapi(tmp_path: Path) -> None:
    base = tree(tmp_path, {"comments/[id]/route.py": '''
        def GET(request, context):
            """Get one comment.

            Longer description."""
            return {}
        '''})
    res = run_cli("openapi", str(base))
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["openapi"].startswith("3.1")
    paths = doc["paths"]
    assert "/comments/{id}" in paths
    op = paths["/comments/{id}"]["get"]
    assert op["summary"] == "Get one comment."


def test_version_string() -> None:
    assert isinstance(minirouter.__version__, str) and minirouter.__version__


# ---------------------------------------------------------------------------
# The example app
# ---------------------------------------------------------------------------


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("COMMENTS_DB", str(tmp_path / "comments-test.db"))
    monkeypatch.setenv("UPLOADS_DIR", str(tmp_path / "uploads"))
    return client(App(str(ROOT / "app")))


def test_example_seeded_with_three_comments(example: TestClient, tmp_path: Path) -> None:
    res = example.get("/comments")
    assert res.status == 200
    comments = res.json()
    assert isinstance(comments, list) and len(comments) == 3
    assert all(isinstance(c["id"], int) and isinstance(c["text"], str) for c in comments)
    assert (tmp_path / "comments-test.db").exists()


def test_example_query_filter(example: TestClient) -> None:
    comments = example.get("/comments").json()
    word = comments[0]["text"].split()[-1]
    filtered = example.get(f"/comments?query={word}").json()
    assert filtered and all(word in c["text"] for c in filtered)
    assert example.get("/comments?query=zzzz-no-such-text").json() == []


def test_example_crud(example: TestClient) -> None:
    res = example.post("/comments", json={"text": "brand new"})
    assert res.status == 201
    new = res.json()
    assert new["text"] == "brand new"
    cid = new["id"]
    assert example.get(f"/comments/{cid}").json() == new
    patched = example.patch(f"/comments/{cid}", json={"text": "edited"})
    assert patched.status == 200 and patched.json()["text"] == "edited"
    deleted = example.delete(f"/comments/{cid}")
    assert deleted.status == 200 and deleted.json()["id"] == cid and deleted.json()["text"] == "edited"
    missing = example.get(f"/comments/{cid}")
    assert missing.status == 307 and missing.headers["location"] == "/comments"
    assert_json_error(example.patch(f"/comments/{cid}", json={"text": "x"}), 404)
    assert_json_error(example.delete(f"/comments/{cid}"), 404)
    assert len(example.get("/comments").json()) == 3


def test_example_bad_input(example: TestClient) -> None:
    assert_json_error(example.get("/comments/abc"), 400)
    assert_json_error(example.post("/comments", json={"text": 5}), 400)
    assert_json_error(example.post("/comments", json={}), 400)


def test_example_each_app_fresh_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMENTS_DB", str(tmp_path / "one.db"))
    c1 = client(App(str(ROOT / "app")))
    c1.post("/comments", json={"text": "only in one"})
    assert len(c1.get("/comments").json()) == 4
    monkeypatch.setenv("COMMENTS_DB", str(tmp_path / "two.db"))
    c2 = client(App(str(ROOT / "app")))
    assert len(c2.get("/comments").json()) == 3


def test_example_hello_dashboard_profile(example: TestClient) -> None:
    assert example.get("/hello").status == 200
    assert example.get("/dashboard").status == 200
    assert example.get("/dashboard/users").status == 200
    prof = example.get("/profile")
    assert prof.status == 200 and prof.headers["content-type"].startswith("text/html")


def test_example_profile_api_headers_and_cookies(example: TestClient) -> None:
    res = example.get("/profile/api", headers={"Authorization": "Bearer tok", "User-Agent": "ua-test"},
                      cookies={"theme": "light"})
    assert res.status == 200
    assert res.headers["content-type"].startswith("text/html")
    assert res.cookies.get("theme") == "dark"
    assert res.cookies.get("resultsPerPage") == "20"


# ---------------------------------------------------------------------------
# PEP 3333 over a real server (wsgiref: no REQUEST_URI, PATH_INFO decoded)
# ---------------------------------------------------------------------------


@contextmanager
def serve_wsgiref(app: Any) -> Iterator[int]:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, validator(app), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_wsgiref_server_percent_decoding(tmp_path: Path) -> None:
    import urllib.request

    app = make_app(tmp_path, {"comments/[id]/route.py": label_route("c")})
    with serve_wsgiref(app) as port:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/comments/caf%C3%A9", timeout=5) as resp:
            assert json.loads(resp.read())["params"] == {"id": "café"}


def test_waitress_raw_uri_encoded_slash(tmp_path: Path) -> None:
    waitress = pytest.importorskip("waitress")
    import urllib.request

    app = make_app(tmp_path, {"files/[id]/route.py": label_route("f")})
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = waitress.create_server(validator(app), host="127.0.0.1", port=port, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        body = None
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/files/a%2Fb", timeout=5) as resp:
                    body = json.loads(resp.read())
                break
            except OSError:
                time.sleep(0.05)
        assert body is not None and body["params"] == {"id": "a/b"}
    finally:
        server.close()
        thread.join(5)


# ---------------------------------------------------------------------------
# Second pass: corners of the same sentences
# ---------------------------------------------------------------------------


def test_public_api_signatures() -> None:
    params = inspect.signature(Response).parameters
    assert list(params)[:3] == ["body", "status", "headers"]
    assert params["body"].default is None and params["status"].default == 200 and params["headers"].default is None
    params = inspect.signature(Response.json).parameters
    assert list(params)[:3] == ["data", "status", "headers"]
    assert params["status"].default == 200 and params["headers"].default is None
    params = inspect.signature(Response.redirect).parameters
    assert list(params)[:2] == ["url", "status"] and params["status"].default == 307
    params = inspect.signature(Response.next).parameters
    assert "headers" in params and "request_headers" in params
    assert "path" in inspect.signature(Response.rewrite).parameters
    r = Response("x")
    set_params = inspect.signature(r.cookies.set).parameters
    for name in ("max_age", "expires", "path", "domain", "secure", "http_only", "same_site", "partitioned"):
        assert set_params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    del_params = inspect.signature(r.cookies.delete).parameters
    for name in ("path", "domain"):
        assert del_params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    err = HTTPError(409, "conflict")
    assert isinstance(err, Exception)
    for fn in (redirect, permanent_redirect, not_found, headers, cookies):
        assert callable(fn)
    client_params = inspect.signature(TestClient(lambda e, s: []).get).parameters
    assert "path" in client_params


def test_response_keyword_arguments(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"k/route.py": """
        from minirouter import Response
        def GET():
            return Response(body="kw", status=202, headers={"X-K": "1"})
        def POST():
            return Response.json(data={"a": 1}, status=201, headers={"X-K": "2"})
        def PUT():
            return Response.redirect(url="/x", status=303)
        """}))
    r = c.get("/k")
    assert (r.status, r.text, r.headers["x-k"]) == (202, "kw", "1")
    r = c.post("/k")
    assert (r.status, r.json(), r.headers["x-k"]) == (201, {"a": 1}, "2")
    r = c.put("/k")
    assert (r.status, r.headers["location"], r.content) == (303, "/x", b"")


def test_response_204_passes_validator(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"n/route.py": "from minirouter import Response\ndef DELETE():\n    return Response(status=204)\n"}))
    res = c.delete("/n")
    assert res.status == 204 and res.content == b""


def test_head_on_405_has_allow_and_no_body(auto_app: Any) -> None:
    res = client(auto_app).head("/postonly")
    assert res.status == 405 and res.content == b""
    assert res.headers["allow"] == "DELETE, OPTIONS, POST"


def test_head_of_streamed_get_has_no_body(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"g/route.py": """
        from minirouter import Response
        def GET():
            return Response(iter([b"a", b"b"]), headers={"Content-Type": "text/plain"})
        """}))
    res = c.head("/g")
    assert res.status == 200 and res.content == b""


def test_trailing_slash_keeps_raw_encoded_path(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"c/[id]/route.py": label_route("c")}))
    res = c.get("/c/caf%C3%A9/?q=1")
    assert res.status == 308
    location = res.headers["location"]
    assert location.isascii()
    assert location.endswith("/c/caf%C3%A9?q=1")
    assert res.content == b""


def test_trailing_slash_on_nested_route(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"a/b/route.py": label_route("ab")}))
    res = c.get("/a/b/")
    assert res.status == 308 and res.headers["location"].endswith("/a/b")


def test_startup_group_param_conflict(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"(a)/[id]/route.py": label_route("a"), "(b)/[slug]/route.py": label_route("b")})
    assert "[id]" in msg and "[slug]" in msg


def test_startup_two_optional_names(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"s/[[...a]]/route.py": label_route("a"), "s/[[...b]]/route.py": label_route("b")})
    assert "[[...a]]" in msg and "[[...b]]" in msg


def test_startup_two_pages_same_url_through_groups(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"(a)/p/page.html": "<p>a</p>", "(b)/p/page.html": "<p>b</p>"})
    assert "(a)" in msg and "(b)" in msg


def test_startup_route_and_page_same_url_through_groups(tmp_path: Path) -> None:
    msg = startup_error(tmp_path, {"(a)/p/route.py": label_route("a"), "(b)/p/page.html": "<p>b</p>"})
    assert "(a)" in msg and "(b)" in msg


def test_startup_error_is_raised_by_app_not_at_request(tmp_path: Path) -> None:
    base = tree(tmp_path, {"ok/route.py": label_route("ok")})
    app = App(str(base))
    (base / "bad").mkdir()
    (base / "bad" / "route.py").write_text("raise RuntimeError('late')\n")
    assert client(app).get("/ok").status == 200
    with pytest.raises(StartupError):
        App(str(base))


def test_catchall_params_in_context_are_decoded(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"s/[...slug]/route.py": label_route("s")}))
    assert c.get("/s/a%2Fb/caf%C3%A9").json()["params"] == {"slug": ["a/b", "café"]}


def test_query_plus_and_escapes(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"q/route.py": "def GET(request):\n    return dict(request.search_params.items())\n"}))
    assert c.get("/q?a=x+y&b=%2B&c=caf%C3%A9&d=%26").json() == {"a": "x y", "b": "+", "c": "café", "d": "&"}


def test_body_is_lazy(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"l/route.py": "def POST(request):\n    return {'ok': True}\n"})
    spy = SpyInput(1000)
    status, _, _ = wsgi_call(app, "POST", "/l", body=spy, extra={"CONTENT_LENGTH": "1000", "CONTENT_TYPE": "text/plain"})
    assert status == 200
    assert spy.read_bytes == 0


def test_content_length_longer_than_body_is_4xx(tmp_path: Path) -> None:
    app = body_app(tmp_path, tmp_path / "ran")
    status, _, body = wsgi_call(app, "POST", "/b", body=io.BytesIO(b"short"), extra={"CONTENT_LENGTH": "100"})
    assert 400 <= status < 500
    assert "error" in json.loads(body)


def test_json_huge_number_never_500(json_app: TestClient) -> None:
    res = json_app.post("/j", data=b"1" * 5000, headers={"Content-Type": "application/json"})
    assert res.status in (200, 400)
    if res.status == 400:
        assert_json_error(res, 400)


def test_cookie_backslash_quoted_values_never_500(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"c/route.py": "def GET(request):\n    return dict(request.cookies)\n"}))
    res = c.get("/c", headers={"Cookie": 'a="' + "\\" * 5000 + '"; b=2'})
    assert res.status == 200 and res.json()["b"] == "2"


def test_multipart_errors_are_400(tmp_path: Path) -> None:
    c = form_limit_app(tmp_path)
    assert_json_error(c.post("/f", data=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}), 400)
    assert_json_error(c.post("/f", data=b"--x\r\n", headers={"Content-Type": "multipart/form-data; boundary="}), 400)
    truncated = b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue-without-end'
    assert_json_error(c.post("/f", data=truncated, headers={"Content-Type": "multipart/form-data; boundary=xyz"}), 400)
    no_cd = b"--xyz\r\nContent-Type: text/plain\r\n\r\nvalue\r\n--xyz--\r\n"
    assert_json_error(c.post("/f", data=no_cd, headers={"Content-Type": "multipart/form-data; boundary=xyz"}), 400)


def test_upload_temp_files_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_dir))
    c = form_limit_app(tmp_path, spool_size=1024)
    res = c.post("/f", files={"f": ("big.bin", b"z" * 100_000, "application/octet-stream")})
    assert res.status == 200 and res.json()["f"]["size"] == 100_000
    assert list(spool_dir.iterdir()) == []


def test_uploaded_filename_is_the_clients_not_a_path(tmp_path: Path) -> None:
    c = form_limit_app(tmp_path)
    res = c.post("/f", files={"f": ("../../etc/passwd", b"x", "text/plain")})
    assert res.status in (200, 400)


def test_middleware_runs_for_pages_public_and_404(tmp_path: Path) -> None:
    app = make_app(tmp_path, {
        "middleware.py": """
            from minirouter import Response
            def middleware(request):
                return Response.next(headers={"x-mw": "ran"})
            """,
        "p/page.html": "<p>p</p>",
        "r/route.py": label_route("r"),
    }, public={"f.txt": "file"})
    c = client(app)
    assert c.get("/r").headers.get("x-mw") == "ran"
    assert c.get("/p").headers.get("x-mw") == "ran"
    assert c.get("/f.txt").headers.get("x-mw") == "ran"
    missing = c.get("/missing")
    assert missing.status == 404 and missing.headers.get("x-mw") == "ran"


def test_middleware_cookies_and_route_cookies_both_land(tmp_path: Path) -> None:
    app = make_app(tmp_path, {
        "middleware.py": """
            from minirouter import Response
            def middleware(request):
                r = Response.next()
                r.cookies.set("from_mw", "1")
                return r
            """,
        "r/route.py": """
            from minirouter import Response, cookies
            def GET():
                cookies().set("from_jar", "2")
                r = Response("x")
                r.cookies.set("from_route", "3")
                return r
            """,
    })
    assert client(app).get("/r").cookies == {"from_mw": "1", "from_jar": "2", "from_route": "3"}


def test_middleware_sees_request(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {
        "middleware.py": """
            from minirouter import Response
            def middleware(request):
                if request.headers.get("authorization") != "Bearer ok":
                    return Response.json({"error": "unauthorized"}, status=401)
                return None
            """,
        "r/route.py": label_route("r"),
    }))
    assert c.get("/r").status == 401
    assert c.get("/r", headers={"Authorization": "Bearer ok"}).status == 200


def test_cache_serves_head_from_get_entry(tmp_path: Path) -> None:
    c = counter_app(tmp_path, "revalidate = 60")
    assert c.get("/t").json() == {"n": 1}
    assert c.head("/t").status == 200
    assert c.get("/t").json() == {"n": 1}


def test_revalidate_zero_never_caches(tmp_path: Path) -> None:
    c = counter_app(tmp_path, "revalidate = 0")
    assert [c.get("/t").json()["n"] for _ in range(2)] == [1, 2]


def test_public_conditional_variants(static_setup: tuple) -> None:
    c = client(static_setup[0])
    first = c.get("/data.txt")
    etag, lm = first.headers["etag"], first.headers["last-modified"]
    assert c.get("/data.txt", headers={"If-None-Match": f'"other", {etag}'}).status == 304
    assert c.get("/data.txt", headers={"If-None-Match": "*"}).status == 304
    weak = etag if etag.startswith("W/") else "W/" + etag
    assert c.get("/data.txt", headers={"If-None-Match": weak}).status == 304
    # If-None-Match present and not matching: If-Modified-Since is ignored (RFC 9110 13.1.3)
    assert c.get("/data.txt", headers={"If-None-Match": '"other"', "If-Modified-Since": lm}).status == 200
    old = "Mon, 01 Jan 1990 00:00:00 GMT"
    assert c.get("/data.txt", headers={"If-Modified-Since": old}).status == 200
    future = email.utils.formatdate(time.time() + 86400, usegmt=True)
    assert c.get("/data.txt", headers={"If-Modified-Since": future}).status == 304
    assert c.head("/data.txt", headers={"If-None-Match": etag}).status == 304


def test_public_range_variants(static_setup: tuple) -> None:
    c = client(static_setup[0])
    res = c.get("/data.txt", headers={"Range": "bytes=5-"})
    assert res.status == 206 and res.content == b"56789" and res.headers["content-range"] == "bytes 5-9/10"
    assert res.headers["content-length"] == "5"
    res = c.get("/data.txt", headers={"Range": "bytes=5-100"})
    assert res.status == 206 and res.content == b"56789" and res.headers["content-range"] == "bytes 5-9/10"
    res = c.get("/data.txt", headers={"Range": "items=0-1"})
    assert res.status == 200 and res.content == b"0123456789"
    res = c.get("/data.txt", headers={"Range": "bytes=0-1,4-5"})
    assert res.status in (200, 206)
    if res.status == 200:
        assert res.content == b"0123456789"


def test_public_416_is_a_framework_error(static_setup: tuple) -> None:
    res = client(static_setup[0]).get("/data.txt", headers={"Range": "bytes=100-200"})
    assert_json_error(res, 416)


def test_root_page_html(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"page.html": "<p>home</p>"}))
    res = c.get("/")
    assert res.status == 200 and "home" in res.text


@pytest.mark.skipif(not hasattr(sys, "stdlib_module_names"), reason="sys.stdlib_module_names is Python 3.10+")
def test_module_imports_only_stdlib() -> None:
    import ast

    tree_ = ast.parse((ROOT / "minirouter.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree_):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    outside = {n for n in names if n not in sys.stdlib_module_names and n != "__future__"}
    # an optional server import guarded at run time is tolerated only for waitress (serve)
    assert outside <= {"waitress"}, outside


def test_example_non_integer_id_400_all_methods(example: TestClient) -> None:
    assert_json_error(example.patch("/comments/abc", json={"text": "x"}), 400)
    assert_json_error(example.delete("/comments/abc"), 400)


def test_example_time_revalidate(example: TestClient) -> None:
    first = example.get("/time")
    assert first.status == 200
    assert example.get("/time").json() == first.json()


def test_example_files_upload(example: TestClient) -> None:
    res = example.post("/files", files={"file": ("hello.txt", b"Hello from a file\n", "text/plain")})
    assert res.status == 201
    assert res.headers["location"] == "/files/hello.txt"
    assert res.json() == {"name": "hello.txt", "size": 18, "type": "text/plain"}
    assert {"name": "hello.txt", "size": 18, "type": "text/plain"} in example.get("/files").json()
    back = example.get("/files/hello.txt")
    assert back.status == 200 and back.content == b"Hello from a file\n"
    assert back.headers["content-type"].startswith("text/plain")
    assert example.get("/files/missing.txt").status == 404


# ---------------------------------------------------------------------------
# Third pass: PEP 3333 details, streaming, more static and middleware corners
# ---------------------------------------------------------------------------


def test_app_parent_folder_goes_on_sys_path(tmp_path: Path) -> None:
    base = tree(tmp_path, {"route.py": label_route("root")})
    App(str(base))
    assert str(base.parent) in [os.path.abspath(p) for p in sys.path if p]
    assert base.name in sys.modules


def test_request_url_without_host_uses_server_name(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"u/route.py": "def GET(request):\n    return {'url': request.url}\n"})
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    del environ["HTTP_HOST"]
    environ.update({"PATH_INFO": "/u", "QUERY_STRING": "", "SERVER_NAME": "srv.example", "SERVER_PORT": "8080"})
    out: list = []
    result = validator(app)(environ, lambda s, h, e=None: out.append(s))
    try:
        body = b"".join(result)
    finally:
        result.close()
    assert out[0].startswith("200")
    assert json.loads(body)["url"] == "http://srv.example:8080/u"


def test_mounted_under_script_name(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"u/route.py": "def GET(request):\n    return {'url': request.url, 'path': request.path}\n"})
    status, _, body = wsgi_call(app, "GET", "/u", extra={"SCRIPT_NAME": "/mount", "REQUEST_URI": "/mount/u"})
    assert status == 200
    assert json.loads(body) == {"url": "http://127.0.0.1/mount/u", "path": "/u"}


def test_body_methods_can_be_combined(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"b/route.py": """
        def POST(request):
            return {"body": request.body().decode(), "text": request.text(), "json": request.json(),
                    "again": request.json()}
        """}))
    assert c.post("/b", json={"a": 1}).json() == {"body": '{"a": 1}', "text": '{"a": 1}', "json": {"a": 1}, "again": {"a": 1}}


def test_streamed_response_is_lazy_and_closed(tmp_path: Path) -> None:
    marker = tmp_path / "closed"
    app = make_app(tmp_path, {"s/route.py": f"""
        from minirouter import Response
        progress = []
        def gen():
            try:
                for i in range(100):
                    progress.append(i)
                    yield b"chunk"
            finally:
                open({str(marker)!r}, "w").close()
        def GET():
            return Response(gen(), headers={{"Content-Type": "text/plain"}})
        """})
    module = next(r.module for r in app.route_table() if r.url == "/s")
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = "/s"
    result = app(environ, lambda s, h, e=None: None)
    it = iter(result)
    assert next(it) == b"chunk"
    assert len(module.progress) < 100
    result.close()
    assert marker.exists()


def test_public_files_use_file_wrapper(static_setup: tuple) -> None:
    used = []

    class Wrapper:
        def __init__(self, filelike: Any, blksize: int = 8192) -> None:
            used.append(filelike)
            self.filelike = filelike
            self.blksize = blksize

        def __iter__(self) -> Iterator[bytes]:
            while True:
                data = self.filelike.read(self.blksize)
                if not data:
                    return
                yield data

        def close(self) -> None:
            self.filelike.close()

    status, _, body = wsgi_call(static_setup[0], "GET", "/data.txt", extra={"wsgi.file_wrapper": Wrapper})
    assert status == 200 and body == b"0123456789"
    assert used


@pytest.mark.parametrize("path", ["/.git/config", "/sub/.hidden", "//etc/passwd", "/%2fetc/passwd", "/sub/"])
def test_public_more_refusals(static_setup: tuple, path: str) -> None:
    base = static_setup[1]
    (base.parent / "public" / ".git").mkdir(exist_ok=True)
    (base.parent / "public" / ".git" / "config").write_text("GITCFG-CONTENT")
    (base.parent / "public" / "sub" / ".hidden").write_text("HIDDEN-CONTENT")
    res = client(static_setup[0]).get(path)
    assert res.status in (404, 308), (path, res.status)
    assert "GITCFG-CONTENT" not in res.text and "HIDDEN-CONTENT" not in res.text and "root:" not in res.text


def test_page_html_trailing_slash(routing: TestClient) -> None:
    res = routing.get("/profile/")
    assert res.status == 308 and res.headers["location"].endswith("/profile")


def test_middleware_matcher_as_single_string(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {
        "middleware.py": """
            from minirouter import Response
            config = {"matcher": "/api/:path*"}
            def middleware(request):
                return Response.next(headers={"x-mw": "ran"})
            """,
        "api/x/route.py": label_route("x"),
        "other/route.py": label_route("o"),
    }))
    assert c.get("/api/x").headers.get("x-mw") == "ran"
    assert c.get("/other").headers.get("x-mw") is None


def test_middleware_matcher_sees_decoded_path(mw: TestClient) -> None:
    res = mw.get("/%61pi/a")
    assert res.status == 200 and res.json()["label"] == "api"
    assert res.headers.get("x-mw") == "ran"


def test_force_static_request_url_has_no_query(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"s/route.py": """
        dynamic = "force-static"
        def GET(request):
            return {"url": request.url, "items": list(request.search_params.items())}
        """}))
    body = c.get("/s?a=1").json()
    assert "?" not in body["url"] and body["items"] == []


def test_empty_content_length_means_absent(tmp_path: Path) -> None:
    # PEP 3333: CONTENT_LENGTH "may be empty or absent"
    app = body_app(tmp_path, tmp_path / "ran")
    status, _, body = wsgi_call(app, "POST", "/b", body=io.BytesIO(b"hello"), extra={"CONTENT_LENGTH": ""})
    assert status == 200 and json.loads(body) == {"n": 0}


def test_async_handler_request_scope(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"a/route.py": """
        import asyncio
        from minirouter import cookies, headers
        async def GET():
            await asyncio.sleep(0)
            cookies().set("late", "1")
            return {"h": headers().get("x-h"), "c": cookies().get("in")}
        """}))
    res = c.get("/a", headers={"X-H": "hv"}, cookies={"in": "cv"})
    assert res.json() == {"h": "hv", "c": "cv"}
    assert res.cookies == {"late": "1"}


def test_handler_parameter_names_are_free(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"p/[x]/route.py": "def GET(req, ctx):\n    return {'m': req.method, 'p': ctx.params}\n"}))
    assert c.get("/p/1").json() == {"m": "GET", "p": {"x": "1"}}


@pytest.mark.parametrize("value", ["'text'", "b'bytes'", "(1, 2)", "True"])
def test_other_return_types_are_500(tmp_path: Path, value: str) -> None:
    c = client(make_app(tmp_path, {"r/route.py": f"def GET():\n    return {value}\n"}))
    with minirouter_log() as log:
        assert_json_error(c.get("/r"), 500)
    assert "route.py" in log.text(logging.ERROR)


def test_cookies_function_takes_every_attribute(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"c/route.py": """
        from minirouter import cookies
        def GET():
            cookies().set("a", "1", max_age=60, path="/p", domain="example.com", secure=True,
                          http_only=True, same_site="lax", partitioned=True)
            cookies().delete("gone", path="/q", domain="example.com")
            return {"ok": True}
        """})
    _, hdrs, _ = wsgi_call(app, "GET", "/c")
    lines = header_values(hdrs, "set-cookie")
    assert any(COOKIE_LINE.match(x) for x in lines), lines
    gone = [x for x in lines if x.startswith("gone=")]
    assert gone and gone[0].startswith("gone=;") and "Path=/q" in gone[0] and "1970" in gone[0]


def test_streamed_response_not_cached(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"s/route.py": """
        from minirouter import Response
        revalidate = 60
        calls = [0]
        def GET():
            calls[0] += 1
            n = calls[0]
            return Response(iter([str(n).encode()]), headers={"Content-Type": "text/plain"})
        """}))
    assert [c.get("/s").text for _ in range(3)] == ["1", "2", "3"]


def test_access_log_line_per_request(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"u/route.py": label_route("u")})
    logger = logging.getLogger("minirouter.access")
    handler = _Records()
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        res = client(app).get("/u?x=1")
        missing = client(app).get("/nope")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    lines = [r.getMessage() for r in handler.records]
    assert len(lines) == 2, lines
    assert "GET" in lines[0] and "/u" in lines[0] and "200" in lines[0] and str(len(res.content)) in lines[0]
    assert "ms" in lines[0]
    assert "404" in lines[1] and str(len(missing.content)) in lines[1]


def test_example_empty_text_is_400(example: TestClient) -> None:
    assert_json_error(example.post("/comments", json={"text": ""}), 400)
    assert_json_error(example.patch("/comments/1", json={"text": ""}), 400)
    assert_json_error(example.patch("/comments/1", json={}), 400)
    assert example.get("/comments/1").json()["id"] == 1
    assert len(example.get("/comments?query=").json()) == 3


# ---------------------------------------------------------------------------
# run.py (issue 2): serves app/ with waitress, prints address and route table,
# stops cleanly on Ctrl-C; `application` at module level.
# ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("via", ["args", "env"])
def test_run_py_serves_and_stops_on_ctrl_c(tmp_path: Path, via: str) -> None:
    pytest.importorskip("waitress")
    import signal
    import urllib.request

    from helpers import popen_that_stops_on_ctrl_c

    port = _free_port()
    env = dict(os.environ, COMMENTS_DB=str(tmp_path / "run.db"), UPLOADS_DIR=str(tmp_path / "uploads"),
               PYTHONUNBUFFERED="1")
    args = [sys.executable, str(ROOT / "run.py")]
    if via == "args":
        args += ["--host", "127.0.0.1", "--port", str(port)]
    else:
        env.update(HOST="127.0.0.1", PORT=str(port))
    proc = popen_that_stops_on_ctrl_c(args, cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT)
    try:
        comments = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/comments", timeout=2) as resp:
                    comments = json.loads(resp.read())
                break
            except OSError:
                time.sleep(0.1)
        assert comments is not None and len(comments) == 3
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
        text = out.decode(errors="replace")
        assert proc.returncode == 0, text
        assert f"127.0.0.1:{port}" in text
        assert "/comments/[id]" in text and "/hello" in text
        assert "Traceback" not in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_run_py_application_is_wsgi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMENTS_DB", str(tmp_path / "mod.db"))
    monkeypatch.setenv("UPLOADS_DIR", str(tmp_path / "uploads"))
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); import run; "
        "from minirouter import TestClient; "
        "r = TestClient(run.application).get('/comments'); print(r.status, len(r.json()))"
    )
    res = subprocess.run([sys.executable, "-c", code, str(ROOT)], cwd=str(tmp_path), capture_output=True,
                         text=True, timeout=30)
    assert res.stdout.split() == ["200", "3"], res.stderr


def test_static_segments_are_decoded_before_matching(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {
        "hello/route.py": label_route("hello"),
        "café/route.py": label_route("cafe"),
        "a b/route.py": label_route("space"),
        "x+y/route.py": label_route("plus"),
    }))
    assert c.get("/hell%6F").json()["label"] == "hello"
    assert c.get("/caf%C3%A9").json()["label"] == "cafe"
    assert c.get("/a%20b").json()["label"] == "space"
    assert c.get("/x+y").json()["label"] == "plus"
    assert c.get("/x%2By").json()["label"] == "plus"
    assert c.get("/HELLO").status == 404


def test_test_client_cookies_round_trip_any_value(tmp_path: Path) -> None:
    # TestClient(cookies=...) must send what a browser would (the value as the
    # handler should read it back through request.cookies, which percent-decodes)
    c = client(make_app(tmp_path, {"e/route.py": "def GET(request):\n    return dict(request.cookies)\n"}))
    sent = {"plain": "abc", "utf8": "日本", "semi": "x;y", "space": "a b", "accent": "café"}
    assert c.get("/e", cookies=sent).json() == sent


def test_test_client_query_with_non_ascii(tmp_path: Path) -> None:
    c = client(make_app(tmp_path, {"q/route.py": "def GET(request):\n    return dict(request.search_params.items())\n"}))
    assert c.get("/q?a=café&b=日本").json() == {"a": "café", "b": "日本"}
