"""app/middleware.py: matchers, next(), rewrite(), answering at once, errors.

Most tests build a small app whose middleware calls `probe.impl(request)`, a
function the test installs, and whose routes record what they saw; the
example app's middleware (retired path, API header, CORS) is checked through
TestClient and through waitress. The README's Middleware section is replayed
by tests/test_example_app.py.
"""
from __future__ import annotations

import http.client
import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

import pytest

from conftest import ROOT, LiveServer
from helpers import client, import_from_app, make_app_dir

import readme_curl
from minirouter import (
    App,
    HTTPError,
    Response,
    StartupError,
    TestClient,
    cookies,
    headers,
    redirect,
)
from minirouter import compile_matcher, compile_matchers

PROBE_FILES = {
    "_lib/probe.py": """
        impl = None
        calls = []
        """,
    "middleware.py": """
        from PKG._lib import probe

        def middleware(request):
            return probe.impl(request)
        """,
    "echo/route.py": """
        from minirouter import Response, cookies, headers
        from PKG._lib import probe

        def GET(request, context):
            probe.calls.append(("echo", request.url))
            return {
                "url": request.url,
                "path": request.path,
                "x_a": request.headers.get("x-a"),
                "x_b": request.headers.get("x-b"),
                "via_headers": headers().get("x-a"),
                "has_x_b": "x-b" in headers(),
                "user": request.cookies.get("user"),
                "jar_user": cookies().get("user"),
                "query": dict(request.search_params.items()),
            }
        """,
    "items/[id]/route.py": """
        from minirouter import Response
        from PKG._lib import probe

        def GET(request, context):
            probe.calls.append(("items", context.params["id"]))
            return {"id": context.params["id"], "url": request.url}
        """,
    "own/route.py": """
        from minirouter import Response

        def GET():
            response = Response("own", headers={"X-Shared": "route", "Vary": "Accept"})
            response.cookies.set("flavour", "route")
            return response
        """,
    "wrong/route.py": """
        from minirouter import Response

        def GET():
            return Response.next()
        """,
}


class ProbeApp:
    def __init__(self, tmp_path: Path, extra: Optional[dict[str, str]] = None, **kwargs: Any) -> None:
        files = dict(PROBE_FILES)
        files.update(extra or {})
        self.dir = make_app_dir(tmp_path, files)
        self.app = App(str(self.dir), **kwargs)
        self.probe = import_from_app(self.dir, "_lib.probe")
        self.client = client(self.app)

    def use(self, impl: Callable[[Any], Any]) -> "ProbeApp":
        self.probe.impl = impl
        return self

    @property
    def route_calls(self) -> list:
        return self.probe.calls


@pytest.fixture
def probe_app(tmp_path: Path) -> ProbeApp:
    return ProbeApp(tmp_path)


# --- going on ------------------------------------------------------------------


@pytest.mark.parametrize("outcome", [lambda request: None, lambda request: Response.next()])
def test_none_and_next_go_on_to_the_route(probe_app: ProbeApp, outcome: Callable) -> None:
    response = probe_app.use(outcome).client.get("/echo?q=1")
    assert response.status == 200
    assert response.json()["query"] == {"q": "1"}
    assert len(probe_app.route_calls) == 1


def test_without_matcher_it_runs_on_every_request_even_without_a_route(probe_app: ProbeApp) -> None:
    seen = []

    def impl(request):
        seen.append(request.path)
        if request.path == "/ghost":
            return Response.json({"answered": "by middleware"})
        return None

    probe_app.use(impl)
    assert probe_app.client.get("/ghost").json() == {"answered": "by middleware"}
    assert probe_app.client.get("/nowhere").status == 404
    assert probe_app.client.get("/echo").status == 200
    assert seen == ["/ghost", "/nowhere", "/echo"]


def test_request_headers_add_replace_and_remove(probe_app: ProbeApp) -> None:
    probe_app.use(lambda request: Response.next(request_headers={"X-A": "from middleware", "x-b": None}))
    body = probe_app.client.get("/echo", headers={"X-A": "from client", "X-B": "drop me"}).json()
    assert body["x_a"] == "from middleware"
    assert body["via_headers"] == "from middleware"  # headers() sees the same
    assert body["x_b"] is None and body["has_x_b"] is False


def test_an_allow_list_of_request_headers_drops_the_others_as_the_readme_writes_it(probe_app: ProbeApp) -> None:
    # request_headers changes only the names it gives (Next.js's replaces the whole set):
    # the README's way to keep an allow-list names every other header with None.
    def allow_list(request):
        allowed = {name: value for name, value in request.headers.items()
                   if not name.startswith("x-") and name not in ("authorization", "cookie")}
        return Response.next(request_headers={**{name: None for name in request.headers.keys()}, **allowed})

    probe_app.use(allow_list)
    body = probe_app.client.get("/echo", headers={"X-B": "secret", "Authorization": "Bearer t"},
                                cookies={"user": "ada"}).json()
    assert body["has_x_b"] is False and body["user"] is None and body["jar_user"] is None
    assert body["url"] == "http://testserver/echo"  # Host was allowed


def test_request_headers_can_change_the_cookies_the_route_reads(probe_app: ProbeApp) -> None:
    probe_app.use(lambda request: Response.next(request_headers={"cookie": "user=ada"}))
    body = probe_app.client.get("/echo", cookies={"user": "mallory"}).json()
    assert body["user"] == "ada" and body["jar_user"] == "ada"


def test_request_header_changes_never_reach_the_response(probe_app: ProbeApp) -> None:
    probe_app.use(lambda request: Response.next(request_headers={"x-a": "secret-value", "x-b": None}))
    response = probe_app.client.get("/echo")
    names = {name.lower() for name, _ in response.headers.raw()}
    assert names == {"content-type", "content-length"}
    assert all("secret-value" not in value for _, value in response.headers.raw())


def test_request_headers_follow_rfc_9110_not_the_response_rules(probe_app: ProbeApp) -> None:
    # A tab inside a value (a client's header passed on) and a header named
    # Status are fine for the route to read: they are never sent (PEP 3333's
    # response rules refuse both on a Response).
    probe_app.use(lambda request: Response.next(request_headers={"x-a": request.headers.get("x-tag"),
                                                                 "status": "member"}))
    body = probe_app.client.get("/echo", headers={"X-Tag": "a\tb"}).json()
    assert body["x_a"] == "a\tb"
    with pytest.raises(ValueError):
        Response("x", headers={"X-A": "a\tb"})


def test_bad_request_header_is_refused_in_the_middleware() -> None:
    with pytest.raises(ValueError):
        Response.next(request_headers={"x-a": "line\r\nbreak"})
    with pytest.raises(ValueError):
        Response.next(request_headers={"bad name": None})


def test_next_headers_and_cookies_land_on_the_final_response(probe_app: ProbeApp) -> None:
    def impl(request):
        response = Response.next(headers={"X-From-Middleware": "yes"})
        response.cookies.set("seen", "1")
        return response

    response = probe_app.use(impl).client.get("/echo")
    assert response.status == 200
    assert response.headers.get("x-from-middleware") == "yes"
    assert response.cookies == {"seen": "1"}
    # Also on an answer the framework writes itself.
    missing = probe_app.client.get("/nowhere")
    assert missing.status == 404 and missing.headers.get("x-from-middleware") == "yes"


def test_the_routes_own_headers_and_cookies_win_and_vary_merges(probe_app: ProbeApp) -> None:
    def impl(request):
        response = Response.next(headers={"X-Shared": "middleware", "Vary": "Origin"})
        response.cookies.set("flavour", "middleware")
        response.cookies.set("extra", "1")
        return response

    response = probe_app.use(impl).client.get("/own")
    assert response.headers.get_all("x-shared") == ["route"]
    assert response.cookies == {"flavour": "route", "extra": "1"}
    assert len(response.headers.get_all("set-cookie")) == 2
    assert response.headers.get_all("vary") == ["Accept, Origin"]


def test_cookies_set_through_cookies_in_middleware_land_on_the_response(probe_app: ProbeApp) -> None:
    def impl(request):
        cookies().set("visited", "yes")
        assert headers().get("x-a") == "1"
        return None

    response = probe_app.use(impl).client.get("/echo", headers={"x-a": "1"})
    assert response.status == 200 and response.cookies == {"visited": "yes"}


def test_every_value_of_a_repeated_next_header_lands_on_the_final_response(probe_app: ProbeApp) -> None:
    def impl(request):
        response = Response.next(headers=[("Link", "</a.css>; rel=preload"), ("Link", "</b.js>; rel=preload")])
        response.headers.append("X-Multi", "1")
        response.headers.append("X-Multi", "2")
        return response

    for path in ("/echo", "/nowhere"):
        response = probe_app.use(impl).client.get(path)
        assert response.headers.get_all("link") == ["</a.css>; rel=preload", "</b.js>; rel=preload"]
        assert response.headers.get_all("x-multi") == ["1", "2"]


def test_the_route_reads_the_cookies_the_middleware_set_and_deleted(probe_app: ProbeApp) -> None:
    # As in Next.js (since 14.2): cookies set on the way in are the request's cookies for the route.
    def through_the_jar(request):
        cookies().set("user", "from middleware")
        cookies().delete("old")
        return None

    response = probe_app.use(through_the_jar).client.get("/echo", cookies={"user": "client", "old": "1"})
    assert response.json()["user"] == "from middleware"
    assert response.json()["jar_user"] == "from middleware"
    assert response.cookies == {"user": "from middleware"}  # "old" is deleted: a browser drops it
    assert any(line.startswith("old=;") for line in response.headers.get_all("set-cookie"))

    def on_the_next_response(request):
        response = Response.next()
        response.cookies.set("user", "a b;c")  # percent-encoded on the wire, read back decoded
        return response

    response = probe_app.use(on_the_next_response).client.get("/echo")
    assert response.json()["user"] == "a b;c" and response.json()["jar_user"] == "a b;c"


def test_cookie_header_after_set_cookie_lines() -> None:
    from minirouter import _cookie_header_after, format_delete_cookie, format_set_cookie

    lines = [
        format_set_cookie("a", "new"),
        format_delete_cookie("b"),
        format_set_cookie("c", "3", max_age=60),
        format_set_cookie("d", "gone", max_age=0),
        "e=5; Max-Age=-1",
        "f=6; Expires=Wed, 01 Jan 2020 00:00:00 GMT",
        "g=7; Max-Age=60; Expires=Wed, 01 Jan 2020 00:00:00 GMT",  # Max-Age wins
    ]
    header = _cookie_header_after("a=old; b=2; keep=1; a=shadowed", lines)
    assert header == "keep=1; a=new; c=3; g=7"


def test_a_nameless_set_cookie_from_the_middleware_replaces_no_cookie_for_the_route() -> None:
    # "Set-Cookie: session" sets a cookie with an empty name (RFC 6265bis 5.7): the
    # browser keeps session=client, and so must the Cookie header the route reads.
    from minirouter import _cookie_header_after, parse_cookie_header

    assert parse_cookie_header(_cookie_header_after("session=client", ["session"])) == {"session": "client"}
    assert parse_cookie_header(_cookie_header_after("session=client", ["session; Path=/"])) == {"session": "client"}


@pytest.mark.parametrize("header", ["sid=%ZZ; sid=abc", "sid; sid=abc", "sid=%0A; sid=abc", " ; sid=abc"])
def test_a_pair_the_route_cannot_read_never_hides_a_readable_one_after_a_middleware_cookie(header: str) -> None:
    # The unreadable first pair claimed the name, and the readable sid=abc that
    # followed was dropped from the rewritten header: gone for the route whenever
    # the middleware set any cookie (a sibling subdomain could send sid=%ZZ on purpose).
    from minirouter import _cookie_header_after, format_set_cookie, parse_cookie_header

    assert parse_cookie_header(header) == {"sid": "abc"}
    after = _cookie_header_after(header, [format_set_cookie("theme", "dark")])
    assert parse_cookie_header(after) == {"sid": "abc", "theme": "dark"}


def test_cookies_set_before_a_raised_error_are_not_sent(probe_app: ProbeApp) -> None:
    def impl(request):
        cookies().set("half", "done")
        raise HTTPError(401, "sign in first")

    response = probe_app.use(impl).client.get("/echo")
    assert response.status == 401 and response.cookies == {}

    def then_redirect(request):
        cookies().set("next", "/echo")
        redirect("/login")

    response = probe_app.use(then_redirect).client.get("/echo")
    assert response.status == 307 and response.cookies == {"next": "/echo"}

    def then_not_an_answer(request):
        cookies().set("half", "done")
        return 5  # a 500, like a crash: no cookies

    response = probe_app.use(then_not_an_answer).client.get("/echo")
    assert response.status == 500 and response.cookies == {}

    def then_a_bad_status(request):
        cookies().set("half", "done")
        return Response("x", status=600)

    response = probe_app.use(then_a_bad_status).client.get("/echo")
    assert response.status == 500 and response.cookies == {}


def test_rewrite_to_a_path_with_non_ascii_characters(tmp_path: Path) -> None:
    app = ProbeApp(tmp_path, {
        "café/route.py": """
            def GET():
                return {"route": "café"}
            """,
    })
    for target in ("/café", "/caf%C3%A9"):
        response = app.use(lambda request, target=target: Response.rewrite(target)).client.get("/echo")
        assert response.status == 200 and response.json() == {"route": "café"}
    response = app.use(lambda request: Response.rewrite("/items/日本")).client.get("/echo")
    assert response.json()["id"] == "日本"


def test_async_middleware(probe_app: ProbeApp, tmp_path: Path) -> None:
    app = ProbeApp(tmp_path / "async", {
        "middleware.py": """
            from minirouter import Response

            async def middleware(request):
                if request.path == "/blocked":
                    return Response.json({"error": "no"}, status=403)
                return Response.next(headers={"X-Async": "1"})
            """,
    })
    assert app.client.get("/blocked").status == 403
    assert app.client.get("/echo").headers.get("x-async") == "1"


# --- rewriting -------------------------------------------------------------------


def test_rewrite_serves_another_route_under_the_same_url(probe_app: ProbeApp) -> None:
    probe_app.use(lambda request: Response.rewrite("/items/7") if request.path == "/old/7" else None)
    response = probe_app.client.get("/old/7?x=1")
    assert response.status == 200
    assert response.json() == {"id": "7", "url": "http://testserver/old/7?x=1"}
    assert probe_app.route_calls == [("items", "7")]


def test_rewrite_to_a_path_with_a_trailing_slash_serves_the_path_without_it(probe_app: ProbeApp) -> None:
    probe_app.use(lambda request: Response.rewrite("/items/7/?y=2") if request.path == "/old/7" else None)
    response = probe_app.client.get("/old/7")
    assert response.status == 200 and response.json()["id"] == "7"
    probe_app.use(lambda request: Response.rewrite("/") if request.path == "/home" else None)
    assert probe_app.client.get("/home").status == probe_app.client.get("/").status


def test_rewrite_keeps_or_replaces_the_query(probe_app: ProbeApp) -> None:
    probe_app.use(lambda request: Response.rewrite("/echo"))
    assert probe_app.client.get("/anything?a=1").json()["query"] == {"a": "1"}
    probe_app.use(lambda request: Response.rewrite("/echo?b=2"))
    body = probe_app.client.get("/anything?a=1").json()
    assert body["query"] == {"b": "2"}
    assert body["url"] == "http://testserver/anything?a=1"


def test_rewrite_to_a_missing_route_is_a_404(probe_app: ProbeApp) -> None:
    probe_app.use(lambda request: Response.rewrite("/does/not/exist"))
    response = probe_app.client.get("/echo")
    assert response.status == 404
    assert response.json() == {"error": "no route matches /echo"}
    assert probe_app.route_calls == []


def test_rewrite_with_headers_and_request_headers(probe_app: ProbeApp) -> None:
    probe_app.use(lambda request: Response.rewrite("/echo", headers={"X-Rewritten": "1"},
                                                   request_headers={"x-a": "rw"}))
    response = probe_app.client.get("/shown")
    assert response.headers.get("x-rewritten") == "1"
    assert response.json()["x_a"] == "rw"


@pytest.mark.parametrize("target", ["relative", "http://elsewhere/x", "//elsewhere/x", "/a\r\nb", ""])
def test_rewrite_refuses_targets_off_the_app(target: str) -> None:
    with pytest.raises(ValueError):
        Response.rewrite(target)


# --- answering at once, and errors ---------------------------------------------------


def test_a_response_answers_at_once_and_the_route_never_runs(probe_app: ProbeApp) -> None:
    probe_app.use(lambda request: Response.json({"error": "sign in first"}, status=401))
    response = probe_app.client.get("/echo")
    assert response.status == 401 and response.json() == {"error": "sign in first"}
    assert probe_app.route_calls == []


def test_redirect_from_middleware(probe_app: ProbeApp) -> None:
    def impl(request):
        redirect("/login")

    response = probe_app.use(impl).client.get("/echo")
    assert response.status == 307 and response.headers.get("location") == "/login"
    assert probe_app.route_calls == []


def test_http_error_from_middleware(probe_app: ProbeApp) -> None:
    def impl(request):
        raise HTTPError(429, "slow down")

    response = probe_app.use(impl).client.get("/echo")
    assert response.status == 429 and response.json() == {"error": "slow down"}


def test_a_middleware_that_raises_is_a_logged_500(probe_app: ProbeApp, caplog: pytest.LogCaptureFixture) -> None:
    def impl(request):
        raise RuntimeError("database password is hunter2")

    with caplog.at_level(logging.ERROR, logger="minirouter"):
        response = probe_app.use(impl).client.get("/echo")
    assert response.status == 500
    assert response.json() == {"error": "internal server error"}
    assert "hunter2" not in response.text
    assert any("middleware.py" in record.getMessage() for record in caplog.records)
    assert probe_app.route_calls == []


@pytest.mark.parametrize("value", [42, "text", Response(status=700)])
def test_a_middleware_returning_nonsense_is_a_500(probe_app: ProbeApp, value: Any,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="minirouter"):
        assert probe_app.use(lambda request: value).client.get("/echo").status == 500
    assert caplog.records


def test_a_route_returning_next_is_a_500(probe_app: ProbeApp, caplog: pytest.LogCaptureFixture) -> None:
    probe_app.use(lambda request: None)
    with caplog.at_level(logging.ERROR, logger="minirouter"):
        response = probe_app.client.get("/wrong")
    assert response.status == 500
    assert any("only middleware" in record.getMessage() for record in caplog.records)


def test_head_through_middleware_has_no_body(probe_app: ProbeApp) -> None:
    probe_app.use(lambda request: Response("from middleware"))
    response = probe_app.client.head("/echo")
    assert response.status == 200 and response.content == b""


# --- matchers --------------------------------------------------------------------------


def test_matcher_selects_the_paths(tmp_path: Path) -> None:
    app = ProbeApp(tmp_path, {
        "middleware.py": """
            from minirouter import Response

            config = {"matcher": ["/items/:id+", "/echo"]}

            def middleware(request):
                return Response.next(headers={"X-Matched": request.path})
            """,
    })
    assert app.client.get("/echo").headers.get("x-matched") == "/echo"
    assert app.client.get("/items/3").headers.get("x-matched") == "/items/3"
    assert app.client.get("/own").headers.get("x-matched") is None
    assert app.client.get("/nowhere").headers.get("x-matched") is None


@pytest.mark.parametrize(
    "pattern, path, expected",
    [
        ("/about", "/about", True),
        ("/about", "/about/x", False),
        ("/about", "/About", False),
        ("/", "/", True),
        ("/", "/a", False),
        ("/api/:path*", "/api", True),
        ("/api/:path*", "/api/a/b/c", True),
        ("/api/:path*", "/apix", False),
        ("/items/:id+", "/items", False),
        ("/items/:id+", "/items/1/2", True),
        ("/items/:id", "/items/1", True),
        ("/items/:id", "/items/1/2", False),
        ("/items/:id?", "/items", True),
        ("/items/:id?", "/items/1", True),
        ("/items/:id?", "/items/1/2", False),
        ("/:lang/docs", "/en/docs", True),
        ("/:lang/docs", "/docs", False),
        ("/a/:x*/b", "/a/b", True),
        ("/a/:x*/b", "/a/1/2/b", True),
        ("/a/:x*/b", "/a/1/2/c", False),
        ("/about/(.*)", "/about/a/b", True),
        ("/caf%C3%A9", "/café", True),
        # One trailing slash is optional, as in Next.js.
        ("/about/", "/about", True),
        ("/about/", "/about/x", False),
        ("/api/:path*/", "/api/a", True),
    ],
)
def test_matcher_patterns(pattern: str, path: str, expected: bool) -> None:
    segments = [] if path == "/" else path[1:].split("/")
    assert compile_matcher(pattern).match(segments) is expected


@pytest.mark.parametrize("misplaced", ["../middleware.py", "proxy.py", "../proxy.py", "middleware.ts", "../proxy.ts"])
def test_a_middleware_where_nextjs_keeps_it_warns_that_it_never_runs(tmp_path: Path, caplog, misplaced: str) -> None:
    folder = make_app_dir(tmp_path, {"dashboard/route.py": "def GET():\n    return {}\n"})
    guard = "from minirouter import Response\ndef middleware():\n    return Response.json({}, status=401)\n"
    (folder / misplaced).resolve().write_text(guard)
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        app = App(str(folder))
    assert any("is not run" in r.getMessage() and misplaced.lstrip("./") in r.getMessage()
               for r in caplog.records), caplog.text
    assert client(app).get("/dashboard").status == 200  # open: hence the warning


@pytest.mark.parametrize("nested", ["api/admin/middleware.py", "(admin)/middleware.py", "api/proxy.py"])
def test_a_middleware_in_a_folder_below_the_app_warns_that_it_never_runs(tmp_path: Path, caplog, nested: str) -> None:
    # Flask's before_request of one blueprint, placed beside its routes: never run, so the routes are open.
    folder = make_app_dir(tmp_path, {
        "api/admin/stats/route.py": "def GET():\n    return {}\n",
        "api/_lib/middleware.py": "def middleware(request):\n    return None\n",  # private: a helper, no warning
        "api/admin/helpers/middleware.py": "class Gzip:\n    pass\n",  # defines no middleware: no warning
        nested: "from minirouter import HTTPError\ndef middleware(request):\n    raise HTTPError(401)\n",
    })
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        app = App(str(folder))
    warnings = [r.getMessage() for r in caplog.records if "is not run" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(str(folder / nested)), warnings
    assert str(folder / "middleware.py") in warnings[0]
    assert client(app).get("/api/admin/stats").status == 200  # open: hence the warning


def test_a_projects_own_middleware_module_beside_app_is_no_warning(tmp_path: Path, caplog) -> None:
    folder = make_app_dir(tmp_path, {"x/route.py": "def GET():\n    return {}\n"})
    (folder.parent / "middleware.py").write_text("class GzipMiddleware:\n    pass\n")  # WSGI middleware
    (folder / "proxy.py").write_text("def forward(url):\n    return url\n")  # a helper module
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        App(str(folder))
    assert "is not run" not in caplog.text


def test_a_misplaced_middleware_bound_by_name_warns_and_a_fifo_never_blocks(tmp_path: Path, caplog) -> None:
    folder = make_app_dir(tmp_path, {"x/route.py": "def GET():\n    return {}\n"})
    (folder.parent / "middleware.py").write_text("from auth import guard\nmiddleware = guard(['/admin'])\n")
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "proxy.py")  # would block an open() for ever
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        App(str(folder))
    assert "middleware.py is not run" in caplog.text


def test_a_middleware_defining_proxy_says_the_name_to_use(tmp_path: Path) -> None:
    folder = make_app_dir(tmp_path, {
        "x/route.py": "def GET():\n    return {}\n",
        "middleware.py": "def proxy(request):\n    return None\n",
    })
    with pytest.raises(StartupError, match="Next.js 16 calls it proxy"):
        App(str(folder))


def test_a_routes_own_cache_control_on_serve_file_wins_over_the_middlewares(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("only yours")
    folder = make_app_dir(tmp_path, {
        "middleware.py": (
            "from minirouter import Response\n"
            "def middleware():\n"
            "    return Response.next(headers={'Cache-Control': 'public, max-age=31536000'})\n"
        ),
        "doc/route.py": (
            "from minirouter import serve_file\n"
            f"def GET(request):\n    answer = serve_file(request.environ, {str(secret)!r})\n"
            "    answer.headers['Cache-Control'] = 'private, no-store'\n    return answer\n"
        ),
        "plain/route.py": (
            "from minirouter import serve_file\n"
            f"def GET(request):\n    return serve_file(request.environ, {str(secret)!r})\n"
        ),
    })
    app = App(str(folder))
    assert client(app).get("/doc").headers.get_all("cache-control") == ["private, no-store"]
    assert client(app).get("/plain").headers.get_all("cache-control") == ["public, max-age=31536000"]


def test_matcher_compares_unicode_in_one_form(tmp_path: Path) -> None:
    # macOS serves public/café.txt for the decomposed spelling too: a matcher
    # written composed must cover both, or the file is reachable past it.
    folder = make_app_dir(tmp_path, {
        "middleware.py": (
            "from minirouter import Response\n"
            "config = {'matcher': ['/caf\u00e9.txt']}\n"
            "def middleware():\n"
            "    return Response.json({'error': 'sign in'}, status=401)\n"
        ),
        "x/route.py": "def GET():\n    return {}\n",
    })
    app = App(str(folder))
    composed, decomposed = "/caf%C3%A9.txt", "/cafe%CC%81.txt"
    assert client(app).get(composed).status == 401
    assert client(app).get(decomposed).status == 401
    assert compile_matcher("/cafe\u0301").match(["caf\u00e9"]) is True


@pytest.mark.parametrize(
    "pattern",
    ["", "about", "/about//", "/a//b", "/:", "/:*", "/:na-me", "/a:id", "/about(.*)", "/(foo)",
     "/:id(\\d+)", "/x?", "/a*", "/%FF", 42, None],
)
def test_bad_matcher_pattern_names_itself(pattern: Any) -> None:
    with pytest.raises(ValueError) as info:
        compile_matcher(pattern)
    assert repr(pattern) in str(info.value)


def test_the_nextjs_negative_lookahead_matcher_is_refused_with_what_to_do_instead() -> None:
    # The matcher of Next.js's own examples, which excludes paths by a regular expression.
    with pytest.raises(ValueError, match="leave matcher out and test request.path in middleware"):
        compile_matcher("/((?!api|_next/static|favicon.ico).*)")


def test_matcher_config_forms() -> None:
    assert compile_matchers(None) is None
    assert compile_matchers({}) is None
    assert [m.pattern for m in compile_matchers({"matcher": "/a"}) or []] == ["/a"]
    assert [m.pattern for m in compile_matchers({"matcher": ["/a", {"source": "/b/:p*"}]}) or []] == ["/a", "/b/:p*"]
    for bad in ({"matcher": []}, {"matcher": 3}, {"matcher": [{"source": "/a", "has": []}]}, ["/a"]):
        with pytest.raises(ValueError):
            compile_matchers(bad)
    # A misspelt key would run the middleware on every request: refused, not ignored.
    with pytest.raises(ValueError, match="'matchers': only 'matcher' is read"):
        compile_matchers({"matchers": ["/api/:path*"]})


def test_matching_with_many_stars_answers_both_ways() -> None:
    # How long it takes, against ordinary input: tests/test_linear_time.py.
    matcher = compile_matcher("/" + "/".join([":a*"] * 12) + "/end")
    segments = ["x"] * 3000
    assert matcher.match(segments + ["nope"]) is False
    assert matcher.match(segments + ["end"]) is True


# --- start-up errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, words",
    [
        ('config = {"matcher": ["/ok", "/bad(.*)"]}\ndef middleware(request):\n    return None\n',
         ["/bad(.*)", "middleware.py"]),
        ('config = {"matcher": "no-slash"}\ndef middleware(request):\n    return None\n', ["no-slash"]),
        ("def handler(request):\n    return None\n", ["middleware(request)"]),
        ("import does_not_exist_anywhere\n", ["failed to import", "does_not_exist_anywhere"]),
        ("def middleware(request, event):\n    return None\n", ["middleware()"]),
    ],
)
def test_middleware_mistakes_are_start_up_errors(tmp_path: Path, source: str, words: list[str]) -> None:
    folder = make_app_dir(tmp_path, {"hello/route.py": "def GET():\n    return {}\n", "middleware.py": source})
    with pytest.raises(StartupError) as info:
        App(str(folder))
    message = str(info.value)
    assert all(word in message for word in words), message


def test_middleware_without_arguments(tmp_path: Path) -> None:
    folder = make_app_dir(tmp_path, {
        "hello/route.py": "def GET():\n    return {'hello': 1}\n",
        "middleware.py": "from minirouter import Response\n\ndef middleware():\n    return Response.next(headers={'X-M': '1'})\n",
    })
    assert client(App(str(folder))).get("/hello").headers.get("x-m") == "1"


# --- the example app: TestClient and waitress ----------------------------------------------


def test_example_redirects_the_retired_path(client) -> None:
    response = client.get("/old-comments/2?via=x")
    assert response.status == 308
    assert response.headers.get("location") == "/comments/2?via=x"
    assert client.get("/old-comments").headers.get("location") == "/comments"


def test_example_redirect_of_an_encoded_prefix(client) -> None:
    # The matcher saw the decoded path; the new URL keeps the rest as it was sent.
    assert client.get("/old%2Dcomments/2").headers.get("location") == "/comments/2"
    assert client.get("/old-%63omments/3?x=1").headers.get("location") == "/comments/3?x=1"


def test_example_redirect_stays_under_the_mount_point(example_app) -> None:
    mounted = TestClient(example_app, base_url="http://testserver/my%20api")
    assert mounted.get("/old-comments/2?via=x").headers.get("location") == "/my%20api/comments/2?via=x"
    assert mounted.get("/old-comments").headers.get("location") == "/my%20api/comments"


def test_request_base_path_is_the_mount_point_as_in_a_url(tmp_path: Path) -> None:
    app = App(str(make_app_dir(tmp_path, {"r/route.py": (
        "def GET(request):\n    return {'base': request.base_path, 'url': request.url}\n")})))
    assert TestClient(app).get("/r").json()["base"] == ""
    mounted = TestClient(app, base_url="http://testserver/caf\u00e9/")
    assert mounted.get("/r").json() == {"base": "/caf%C3%A9", "url": "http://testserver/caf%C3%A9/r"}
    # Never //host: a redirect built on it would leave the site.
    environ = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "//evil.example", "PATH_INFO": "/r", "SERVER_NAME": "t",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": __import__("io").BytesIO()}
    body = b"".join(app(environ, lambda status, headers, exc_info=None: None))
    assert __import__("json").loads(body)["base"] == "/evil.example"


@pytest.mark.parametrize("escaped", ["%0A", "%00", "%3Fx=1", "a%2Fb"])
def test_example_redirect_keeps_the_path_as_sent(client, escaped: str) -> None:
    # Built from the decoded path, a newline would break the header (a 500),
    # an encoded "?" would become a query and an encoded "/" a new segment.
    response = client.get(f"/old-comments/{escaped}")
    assert response.status == 308
    assert response.headers.get("location") == f"/comments/{escaped}"


def test_example_api_header_only_on_the_api(client) -> None:
    assert client.get("/comments").headers.get("x-api-version") == "1"
    assert client.get("/comments/1").headers.get("x-api-version") == "1"
    assert client.get("/hello").headers.get("x-api-version") is None


def test_example_cors_for_allowed_origin_only(client) -> None:
    allowed = client.get("/comments", headers={"Origin": "http://localhost:3000"})
    assert allowed.headers.get("access-control-allow-origin") == "http://localhost:3000"
    assert allowed.headers.get("vary") == "Origin"
    other = client.get("/comments", headers={"Origin": "https://elsewhere.example"})
    assert other.status == 200
    assert not [name for name, _ in other.headers.raw() if name.lower().startswith("access-control-")]


def test_example_preflight(client) -> None:
    preflight = {"Origin": "https://comments.example", "Access-Control-Request-Method": "POST"}
    answered = client.options("/comments", headers=preflight)
    assert answered.status == 204
    assert answered.headers.get("access-control-allow-origin") == "https://comments.example"
    assert "POST" in answered.headers.get("access-control-allow-methods")
    assert answered.headers.get("allow") is None  # the middleware answered, not the route
    refused = client.options("/comments", headers={**preflight, "Origin": "https://elsewhere.example"})
    assert refused.status == 204 and refused.headers.get("allow") == "GET, HEAD, OPTIONS, POST"
    assert not [name for name, _ in refused.headers.raw() if name.lower().startswith("access-control-")]


def _http(url: str, method: str = "GET", path: str = "/", headers: Optional[dict] = None) -> http.client.HTTPResponse:
    target = urlsplit(url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    connection.close()
    return response


def test_example_middleware_through_waitress(live_server: str) -> None:
    moved = _http(live_server, path="/old-comments/1")
    assert moved.status == 308 and moved.getheader("Location") == "/comments/1"
    api = _http(live_server, path="/comments/1", headers={"Origin": "http://localhost:3000"})
    assert api.status == 200
    assert api.getheader("X-API-Version") == "1"
    assert api.getheader("Access-Control-Allow-Origin") == "http://localhost:3000"
    other = _http(live_server, path="/comments/1", headers={"Origin": "https://elsewhere.example"})
    assert other.getheader("Access-Control-Allow-Origin") is None
    preflight = _http(live_server, "OPTIONS", "/comments",
                      {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"})
    assert preflight.status == 204 and preflight.getheader("Access-Control-Allow-Origin") == "http://localhost:3000"


def test_next_rewrite_and_errors_through_waitress(probe_app: ProbeApp, caplog: pytest.LogCaptureFixture) -> None:
    def impl(request):
        if request.path == "/boom":
            raise RuntimeError("boom")
        if request.path.startswith("/old/"):
            return Response.rewrite("/items/" + request.path[len("/old/"):])
        if request.path == "/private":
            return Response.json({"error": "sign in first"}, status=401)
        return Response.next(headers={"X-Mw": "1"}, request_headers={"x-a": "set", "x-b": None})

    probe_app.use(impl)
    server = LiveServer(probe_app.app)
    try:
        echo = _http(server.url, path="/echo", headers={"X-B": "gone"})
        body = readme_curl.json.loads(echo.body)  # type: ignore[attr-defined]
        assert echo.getheader("X-Mw") == "1"
        assert (body["x_a"], body["x_b"]) == ("set", None)
        assert body["url"] == f"{server.url}/echo"
        rewritten = _http(server.url, path="/old/5")
        assert rewritten.status == 200
        assert readme_curl.json.loads(rewritten.body)["url"].endswith("/old/5")  # type: ignore[attr-defined]
        assert _http(server.url, path="/private").status == 401
        with caplog.at_level(logging.ERROR, logger="minirouter"):
            assert _http(server.url, path="/boom").status == 500
    finally:
        server.stop()


def test_cookies_on_next_a_rewrite_to_nothing_and_a_plus_matcher_through_waitress(tmp_path: Path) -> None:
    # Issue 4: each behaviour through waitress as well as the test client.
    app = App(str(make_app_dir(tmp_path, {
        "middleware.py": """
            from minirouter import Response

            config = {"matcher": "/items/:id+"}

            def middleware(request):
                if request.path == "/items/gone":
                    return Response.rewrite("/nowhere")
                response = Response.next(headers={"X-Mw": request.path})
                response.cookies.set("seen", "1")
                return response
            """,
        "items/[...id]/route.py": "def GET(request, context):\n    return {'id': context.params['id']}\n",
        "other/route.py": "def GET():\n    return {}\n",
    })))
    server = LiveServer(app)
    try:
        deep = _http(server.url, path="/items/a/b")
        assert deep.status == 200 and deep.getheader("X-Mw") == "/items/a/b"
        assert deep.getheader("Set-Cookie") == "seen=1; Path=/"
        gone = _http(server.url, path="/items/gone")
        assert gone.status == 404 and gone.getheader("Content-Type") == "application/json"
        other = _http(server.url, path="/other")  # outside the matcher: no middleware
        assert other.status == 200 and other.getheader("X-Mw") is None and other.getheader("Set-Cookie") is None
    finally:
        server.stop()


def test_readme_has_a_middleware_section_with_curl_lines() -> None:
    # tests/test_example_app.py replays these lines; make sure they stay there.
    sections = {s.title: s for s in readme_curl.read_sections(ROOT / "README.md")}
    assert len(sections["Middleware"].curl_steps) >= 4


def test_a_content_type_changed_by_the_middleware_is_what_the_body_methods_read(tmp_path: Path) -> None:
    app = ProbeApp(tmp_path, {
        "parse/route.py": """
            def POST(request):
                return {"type": request.content_type, "json": request.json(), "header": request.headers["content-type"]}
            """,
    })
    app.use(lambda request: Response.next(request_headers={"content-type": "application/json"}))
    response = app.client.post("/parse", data=b'{"a": 1}', headers={"Content-Type": "text/plain"})
    assert response.status == 200
    assert response.json() == {"type": "application/json", "json": {"a": 1}, "header": "application/json"}


def test_logs_show_the_path_as_sent() -> None:
    # A %0A in the URL must not start a new line in a log; an absolute-form target logs its path.
    from minirouter import _loggable_path

    environ = {"REQUEST_URI": "/a%0Ab?q=1", "PATH_INFO": "/a\nb"}
    assert _loggable_path(environ) == "/a%0Ab"
    assert _loggable_path({"REQUEST_URI": "http://evil.example/forged?x", "PATH_INFO": "/forged"}) == "/forged"
    assert _loggable_path({"PATH_INFO": "/a\nb"}) == "/a%0Ab"


def test_deleting_the_last_cookie_in_middleware_leaves_no_cookie_header(tmp_path: Path) -> None:
    app = ProbeApp(tmp_path, {
        "raw/route.py": """
            def GET(request):
                return {"cookie": request.headers.get("cookie"), "cookies": dict(request.cookies)}
            """,
    })
    app.use(lambda request: cookies().delete("a"))
    assert app.client.get("/raw", cookies={"a": "1"}).json() == {"cookie": None, "cookies": {}}
    assert app.client.get("/raw", cookies={"a": "1", "b": "2"}).json() == {"cookie": "b=2", "cookies": {"b": "2"}}


def test_a_route_named_middleware_goes_in_a_group(tmp_path: Path) -> None:
    # middleware.py is in the app folder, so app/middleware/ would be the same
    # module: a start-up error naming both; in a (group) the URL is the same.
    mw = "def middleware(request):\n    return None\n"
    route = "def GET():\n    return {'route': 'middleware'}\n"
    clash = make_app_dir(tmp_path / "clash", {"middleware.py": mw, "middleware/route.py": route})
    with pytest.raises(StartupError, match="middleware.py") as info:
        App(str(clash))
    assert "middleware and" in str(info.value)
    grouped = make_app_dir(tmp_path / "grouped", {"middleware.py": mw, "(api)/middleware/route.py": route})
    assert client(App(str(grouped))).get("/middleware").json() == {"route": "middleware"}


def test_middleware_cache_control_replaces_a_files_default(tmp_path: Path) -> None:
    # A file from public/ is "public, max-age=0" (as in Next.js); middleware that
    # guards it by cookie must be able to keep shared caches from storing it (RFC 9111 5.2.2.7).
    app_dir = make_app_dir(tmp_path, {
        "middleware.py": """
from minirouter import Response

def middleware(request):
    return Response.next(headers={"Cache-Control": "private, no-store", "X-Guarded": "yes"})

config = {"matcher": ["/secret/:path*", "/own"]}
""",
        "own/route.py": """
from minirouter import Response

def GET():
    return Response("own", headers={"Cache-Control": "max-age=60"})
""",
    })
    public = tmp_path / "public"
    (public / "secret").mkdir(parents=True)
    (public / "secret" / "doc.txt").write_text("secret\n")
    (public / "open.txt").write_text("open\n")
    guarded = client(App(str(app_dir), public_dir=str(public)))
    first = guarded.get("/secret/doc.txt")
    assert first.status == 200 and first.text == "secret\n"
    assert first.headers.get_all("cache-control") == ["private, no-store"]
    assert first.headers.get("x-guarded") == "yes"
    revalidated = guarded.get("/secret/doc.txt", headers={"If-None-Match": first.headers["etag"]})
    assert revalidated.status == 304
    assert revalidated.headers.get_all("cache-control") == ["private, no-store"]
    # Outside the matcher the default stays; a route's own Cache-Control is never replaced.
    assert guarded.get("/open.txt").headers.get_all("cache-control") == ["public, max-age=0"]
    own = guarded.get("/own")
    assert own.headers.get_all("cache-control") == ["max-age=60"] and own.headers.get("x-guarded") == "yes"


def test_a_content_length_from_the_middleware_is_never_sent(tmp_path: Path) -> None:
    # It cannot know the route's body: beside a stream it would be a wrong length on
    # the wire, and on an automatic HEAD of an empty answer it would differ from GET's 0.
    app_dir = make_app_dir(tmp_path, {
        "middleware.py": """
from minirouter import Response

def middleware(request):
    return Response.next(headers={"Content-Length": "999", "X-Seen": "yes"})
""",
        "s/route.py": """
from minirouter import Response

def GET():
    def pieces():
        yield b"ab"
    return Response(pieces())
""",
        "r/route.py": """
from minirouter import Response

def GET():
    return Response.redirect("/s")
""",
    })
    c = client(App(str(app_dir)))
    streamed = c.get("/s")
    assert streamed.content == b"ab" and streamed.headers.get("content-length") is None
    assert streamed.headers.get("x-seen") == "yes"
    for method in ("GET", "HEAD"):
        redirect = c.request(method, "/r")
        assert redirect.status == 307 and redirect.headers.get_all("content-length") == ["0"], method


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_stream_the_middleware_returns_runs_out_of_the_request(tmp_path: Path, kind: str) -> None:
    # As a route's stream: the body runs after the middleware has returned, where
    # headers() and cookies() raise, from its first piece on (it used to be started
    # inside the request's context, so the first piece, or every async one, still read them).
    define = "async def" if kind == "async" else "def"
    app = App(str(make_app_dir(tmp_path, {
        "middleware.py": f"""
            from minirouter import Response, headers

            {define} pieces():
                for i in range(3):
                    try:
                        seen = headers().get("x-a")
                    except RuntimeError:
                        seen = "RuntimeError"
                    yield f"{{i}}: {{seen}}\\n"

            def middleware(request):
                return Response(pieces())
            """,
        "r/route.py": "def GET():\n    return {}\n",
    })))
    body = client(app).get("/r", headers={"X-A": "A"}).text
    assert body == "0: RuntimeError\n1: RuntimeError\n2: RuntimeError\n"


def test_a_param_in_a_matcher_never_takes_an_empty_segment() -> None:
    # path-to-regexp's :p is one or more characters.
    assert not compile_matcher("/a/:p/b").match(["a", "", "b"])
    assert compile_matcher("/a/:p/b").match(["a", "x", "b"])


@pytest.mark.parametrize("patterns, warned", [
    (["/api/admin"], True),  # Flask's url_prefix habit: that one path, which serves nothing
    (["/api/admin/"], True),
    (["/api"], True),  # a path that is served: the paths below it are still open
    (["/api/admin/:path*"], False),
    (["/api/admin", "/api/admin/:path*"], False),  # the other matcher covers them
    (["/api/admin/stats", "/api/admin/users/:id"], False),  # each path named
    (["/elsewhere"], False),  # nothing below it either
    (["/api/admin/docs"], True),  # /api/admin/docs/x reaches the [[...rest]] route unguarded
])
def test_a_matcher_of_one_path_above_routes_it_does_not_cover_warns(
    tmp_path: Path, caplog, patterns: list[str], warned: bool
) -> None:
    # Next.js's docs say "/about matches /about and /about/team"; its matcher code, as this one, does not.
    folder = make_app_dir(tmp_path, {
        "api/route.py": "def GET():\n    return {}\n",
        "api/admin/stats/route.py": "def GET():\n    return {}\n",
        "api/admin/users/[id]/route.py": "def GET():\n    return {}\n",
        "api/admin/docs/[[...rest]]/route.py": "def GET():\n    return {}\n",
        "middleware.py": f"config = {{'matcher': {patterns!r}}}\ndef middleware(request):\n    return None\n",
    })
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        App(str(folder))
    messages = [r.getMessage() for r in caplog.records if "matches that one path" in r.getMessage()]
    assert bool(messages) is warned, caplog.text
    if warned:
        prefix = patterns[0].rstrip("/")
        assert "below it" in messages[0] and f"write '{prefix}/:path*'" in messages[0]
