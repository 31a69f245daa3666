"""What reaches the wire stays valid whatever the client sends or the handler sets.

The trailing-slash redirect and request.url carry the client's query and the
mount point percent-encoded (PEP 3333 strings are bytes as latin-1); a
SCRIPT_NAME of "/" mounts the app at the root; hop-by-hop headers are the
server's (PEP 3333); 205 has no content (RFC 9110 15.3.6); Range is for GET
only (RFC 9110 14.2); a status that is no int from 200 to 599 (a 1xx is interim only) is a 500.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
from pathlib import Path

import pytest

from helpers import call, client, make_app, make_app_dir, make_environ, route_source, unique_name
from minirouter import App, StartupError

ROUTES = {
    "comments/route.py": route_source(
        "def GET(request):",
        "    return {'url': request.url, 'query': request.search_params.items()}",
    ),
    "status/[code]/route.py": route_source(
        "from minirouter import Response",
        "def GET(request, context):",
        "    code = context.params['code']",
        "    return Response('some content', status=float(code) if '.' in code else int(code))",
    ),
    "hop/route.py": route_source(
        "from minirouter import Response",
        "def GET():",
        "    return Response('hello', headers={'Transfer-Encoding': 'chunked', 'Connection': 'close',",
        "                                      'Keep-Alive': 'timeout=5', 'Upgrade': 'h2c', 'Trailers': 'v',",
        "                                      'X-Kept': 'yes'})",
    ),
    "str-subclass/route.py": route_source(
        "import enum",
        "from minirouter import Response",
        "class Cache(str, enum.Enum):",
        "    NO_STORE = 'no-store'",
        "class Name(str):",
        "    pass",
        "def GET():",
        "    return Response('x', headers={'Cache-Control': Cache.NO_STORE, Name('X-Named'): Name('v')})",
    ),
    "files/[id]/route.py": route_source(
        "def GET(request, context):",
        "    return {'id': context.params['id'], 'path': request.path}",
    ),
    "hop-stream/route.py": route_source(
        "from minirouter import Response",
        "def GET():",
        "    return Response(iter([b'a', b'b']), headers={'Transfer-Encoding': 'chunked'})",
    ),
}


@pytest.fixture
def app(tmp_path: Path) -> App:
    return make_app(tmp_path, ROUTES)


def get(app: App, path: str, query: str = "", *, validate: bool = True, **environ: str):
    env = make_environ("GET", path, query=query, request_uri=path + (f"?{query}" if query else ""))
    env.update(environ)
    return call(app, env, validate=validate)


# --- the redirect and request.url carry only what a URL may -----------------------


@pytest.mark.parametrize(
    "query, location_query",
    [
        ("a=\x01b", "a=%01b"),  # a control character
        ("q=caf\xc3\xa9", "q=caf%C3%A9"),  # raw UTF-8 bytes, as latin-1: encoded once
        ("q=a b", "q=a%20b"),
        ("q=%C3%A9&x=1", "q=%C3%A9&x=1"),  # escapes already made are kept
        ("a[]=1", "a%5B%5D=1"),  # brackets are delimiters of a URL's host (RFC 3986), not query text
    ],
)
def test_the_trailing_slash_redirect_encodes_the_query(app: App, query: str, location_query: str) -> None:
    result = get(app, "/comments/", query)
    assert result.status == 308
    assert result.header("location") == f"/comments?{location_query}"


def test_request_url_encodes_a_raw_query_once(app: App) -> None:
    result = get(app, "/comments", "q=caf\xc3\xa9")
    assert result.json()["url"] == "http://testserver/comments?q=caf%C3%A9"
    assert result.json()["query"] == [["q", "café"]]


def test_a_mount_point_with_non_ascii_is_encoded_once(app: App) -> None:
    mount = "/caf\xc3\xa9"  # "/café" as a server passes it
    result = get(app, "/comments/", SCRIPT_NAME=mount, PATH_INFO="/comments/", REQUEST_URI="/caf%C3%A9/comments/")
    assert result.header("location") == "/caf%C3%A9/comments"
    result = get(app, "/comments", SCRIPT_NAME=mount, PATH_INFO="/comments", REQUEST_URI="/caf%C3%A9/comments")
    assert result.json()["url"] == "http://testserver/caf%C3%A9/comments"


@pytest.mark.parametrize("mount, raw_mount", [("/a?b", "/a%3Fb"), ("/100%", "/100%25"), ("/a%41", "/a%2541")])
def test_a_mount_points_question_mark_and_percent_sign_are_written_encoded(app: App, mount: str, raw_mount: str) -> None:
    # SCRIPT_NAME is decoded (RFC 3875 4.1.13): written as it is, "/a?b" would end the path
    # in request.url and the 308's Location, and "/a%41" would name the mount point /aA.
    result = get(app, "/comments/", SCRIPT_NAME=mount, PATH_INFO="/comments/", REQUEST_URI=f"{raw_mount}/comments/")
    assert result.header("location") == f"{raw_mount}/comments"
    result = get(app, "/comments", SCRIPT_NAME=mount, PATH_INFO="/comments", REQUEST_URI=f"{raw_mount}/comments")
    assert result.json()["url"] == f"http://testserver{raw_mount}/comments"


@pytest.mark.parametrize("mount, raw_mount", [
    ("/my app", "/my%20app"), ("/caf\xc3\xa9", "/caf%C3%A9"), ("/caf\xc3\xa9", "/caf%c3%a9"),
    ("/a b/c", "/a%20b/c"), ("/plain", "/%70lain"),
])
def test_a_mount_point_the_target_encodes_still_lets_the_raw_target_decide(app: App, mount: str, raw_mount: str) -> None:
    # The raw target's %2F stays inside its segment (design.md), under any mount point.
    result = get(app, "/files/a/b", SCRIPT_NAME=mount, PATH_INFO="/files/a/b", REQUEST_URI=f"{raw_mount}/files/a%2Fb")
    assert result.status == 200
    assert result.json() == {"id": "a/b", "path": "/files/a/b"}


@pytest.mark.parametrize("raw_mount", ["/my%2Fapp", "/my%20ap", "/my%20appx", "/my%2"])
def test_a_target_not_under_the_encoded_mount_point_falls_back_to_path_info(app: App, raw_mount: str) -> None:
    result = get(app, "/files/a/b", SCRIPT_NAME="/my app", PATH_INFO="/files/x", REQUEST_URI=f"{raw_mount}/files/a%2Fb")
    assert result.json() == {"id": "x", "path": "/files/x"}


def test_characters_beyond_latin_1_in_the_target_are_read_as_utf_8(app: App) -> None:
    # Not PEP 3333 (one character per byte), but a server that decoded the
    # target as UTF-8 meant these characters: never a "?" in their place.
    result = get(app, "/files/\u20ac", PATH_INFO="/files/\xe2\x82\xac", REQUEST_URI="/files/\u20ac", validate=False)
    assert result.json() == {"id": "\u20ac", "path": "/files/\u20ac"}
    result = get(app, "/files/\u20ac%21", PATH_INFO="/files/\xe2\x82\xac!", REQUEST_URI="/files/\u20ac%21", validate=False)
    assert result.json() == {"id": "\u20ac!", "path": "/files/\u20ac!"}


@pytest.mark.parametrize("raw", [True, False], ids=["request-uri", "path-info-only"])
def test_options_asterisk_asks_about_the_server(tmp_path: Path, raw: bool) -> None:
    # RFC 9110 9.3.7: OPTIONS * is about the server, not a resource; no route takes "*",
    # not even a [param] at the root. Any other method may not use it (RFC 9112 3.2.4).
    app = make_app(tmp_path, {"[slug]/route.py": route_source("def GET(request, context):",
                                                              "    return context.params")})
    extra = {"REQUEST_URI": "*"} if raw else {}
    options = call(app, {**make_environ("OPTIONS", "*"), **extra}, validate=False)
    assert options.status == 204 and options.body == b""
    assert options.header("allow") == "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
    refused = call(app, {**make_environ("GET", "*"), **extra}, validate=False)
    assert refused.status == 400
    assert refused.json() == {"error": "the request target * is only for OPTIONS, not GET"}
    assert call(app, make_environ("GET", "/x")).json() == {"slug": "x"}


def test_script_name_slash_is_the_root(app: App) -> None:
    # gunicorn passes SCRIPT_NAME="/" when told to (wsgiref's validator
    # refuses such an environ, so it is left out); the app is then at the root.
    assert get(app, "/comments", SCRIPT_NAME="/", validate=False).json()["url"] == "http://testserver/comments"
    result = get(app, "/evil.com/", SCRIPT_NAME="/", validate=False)
    assert result.status == 308 and result.header("location") == "/evil.com"  # never //evil.com


# "/\\evil.com" is a guard: a backslash is percent-encoded before the Location is built.
@pytest.mark.parametrize("mount", ["//evil.com", "/\\evil.com", "///evil.com/"])
def test_a_mount_point_never_makes_the_trailing_slash_redirect_leave_the_site(app: App, mount: str) -> None:
    # gunicorn takes SCRIPT_NAME from a request header sent from 127.0.0.1
    # (its forwarded_allow_ips), so a client there can choose it.
    result = get(app, "/comments/", SCRIPT_NAME=mount, PATH_INFO="/comments/", validate=False)
    location = result.header("location")
    assert result.status == 308 and location.endswith("/comments")
    assert not location.startswith(("//", "/\\")), location


def test_a_request_outside_the_mount_point_falls_back_to_path_info(app: App) -> None:
    # REQUEST_URI /mountx/comments is not under SCRIPT_NAME /mount: PATH_INFO decides.
    result = get(app, "/mountx/comments", SCRIPT_NAME="/mount", PATH_INFO="/comments")
    assert result.status == 200


# --- statuses -----------------------------------------------------------------------


def test_a_205_has_no_content_and_says_so(app: App) -> None:
    result = get(app, "/status/205")  # the handler gave it some
    assert result.status == 205 and result.body == b""
    assert result.get_all("content-length") == ["0"]


# A 1xx is interim only (RFC 9110 15.2): sent as the answer, a client waits for
# the final one and the server closes the connection, so it is a 500 as well.
@pytest.mark.parametrize("code", ["250.5", "200.0", "99", "600", "100", "103", "199"])
def test_a_status_that_is_no_int_from_200_to_599_is_a_500(app: App, code: str, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="minirouter"):
        result = get(app, f"/status/{code}")
    assert result.status == 500 and result.json() == {"error": "internal server error"}
    assert "status" in caplog.text and "route.py" in caplog.text


def test_an_unlisted_int_status_is_sent_as_it_is(app: App) -> None:
    result = get(app, "/status/299")
    assert result.status_line.startswith("299 ") and result.body == b"some content"


@pytest.mark.parametrize("status, line", [
    (413, "413 Content Too Large"), (414, "414 URI Too Long"), (416, "416 Range Not Satisfiable"),
    (422, "422 Unprocessable Content"), (404, "404 Not Found"),
])
def test_status_lines_carry_rfc_9110_reason_phrases_on_every_python(app: App, status: int, line: str) -> None:
    # Python 3.9-3.12 name 414 "Request-URI Too Long" and 413 "Request Entity Too Large".
    assert get(app, f"/status/{status}").status_line == line


# --- hop-by-hop headers -----------------------------------------------------------


def test_hop_by_hop_headers_are_dropped(app: App) -> None:
    result = get(app, "/hop")  # the validator (PEP 3333) would refuse them
    names = {name.lower() for name, _ in result.header_list}
    # "Trailers" too: PEP 3333 takes its list from RFC 2616 13.5.1, and waitress refuses it.
    assert not names & {"transfer-encoding", "connection", "keep-alive", "upgrade", "trailers"}
    assert result.header("x-kept") == "yes"
    assert result.get_all("content-length") == ["5"] and result.body == b"hello"
    streamed = get(app, "/hop-stream")
    assert streamed.header("transfer-encoding") is None and streamed.body == b"ab"


def test_header_names_and_values_are_exact_str(app: App) -> None:
    # PEP 3333: native strings, "the type named str"; a str subclass (an enum
    # member, say) fails wsgiref's validator and server, so it is sent as its text.
    result = get(app, "/str-subclass")  # through the validator
    assert result.status == 200
    assert all(type(name) is str and type(value) is str for name, value in result.header_list)
    assert result.header("cache-control") == "no-store" and result.header("x-named") == "v"


def test_str_subclasses_are_written_as_their_text_everywhere() -> None:
    import enum

    from minirouter import Headers, Response
    from minirouter import _request_header_changes as request_header_changes

    class Word(str, enum.Enum):  # an f-string writes it as Word.SID since Python 3.12
        SID = "sid"
        DARK = "dark"
        PATH = "/p"
        DOMAIN = "example.com"
        LAX = "lax"
        VALUE = "v"

    response = Response("x")
    response.cookies.set(Word.SID, Word.DARK, path=Word.PATH, domain=Word.DOMAIN, same_site=Word.LAX)
    assert response.headers.get_all("set-cookie") == ["sid=dark; Path=/p; Domain=example.com; SameSite=Lax"]
    headers = Headers()
    headers.set(Word.SID, Word.VALUE)
    assert [(type(n), type(v)) for n, v in headers.raw()] == [(str, str)] and headers.raw() == [("sid", "v")]
    changes = request_header_changes({"x-a": Word.VALUE})
    assert changes == {"x-a": "v"} and type(changes["x-a"]) is str

    class Sly(str):  # checked as the text it will be sent as, whatever its own methods say
        def encode(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return b""

    with pytest.raises(ValueError, match="latin-1"):
        Headers().set("X-Name", Sly("caf\u20ac"))


# --- Range is for GET -------------------------------------------------------------


def test_head_ignores_range(tmp_path: Path) -> None:
    app_dir = make_app_dir(tmp_path, {"x/route.py": "def GET():\n    return {}\n"})
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "ten.txt").write_bytes(b"0123456789")
    web = client(App(str(app_dir)))
    head = web.head("/ten.txt", headers={"Range": "bytes=0-1"})
    assert head.status == 200 and head.content == b""
    assert head.headers["content-length"] == "10" and "content-range" not in head.headers
    assert web.head("/ten.txt", headers={"Range": "bytes=500-"}).status == 200
    assert web.get("/ten.txt", headers={"Range": "bytes=0-1"}).status == 206


# --- start-up -----------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_symlink_back_up_the_tree_is_a_startup_error(tmp_path: Path) -> None:
    app_dir = make_app_dir(tmp_path, {"a/route.py": "def GET():\n    return {}\n"})
    try:
        os.symlink("..", app_dir / "a" / "loop")
    except OSError:
        pytest.skip("cannot make symlinks here")
    with pytest.raises(StartupError, match="loop"):
        App(str(app_dir))


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
@pytest.mark.parametrize("loop", ["mutual", "self"])
def test_a_symlink_loop_is_a_startup_error_naming_it(tmp_path: Path, loop: str) -> None:
    app_dir = make_app_dir(tmp_path, {"a/route.py": "def GET():\n    return {}\n", "b/x.txt": ""})
    if loop == "mutual":  # a/tob -> b, b/toa -> a: neither points above itself
        os.symlink("../b", app_dir / "a" / "tob")
        os.symlink("../a", app_dir / "b" / "toa")
    else:
        os.symlink("itself", app_dir / "itself")
    with pytest.raises(StartupError, match="toa|tob|itself"):
        App(str(app_dir))


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_symlink_to_a_sibling_folder_is_routed(tmp_path: Path) -> None:
    app_dir = make_app_dir(tmp_path, {"a/route.py": "def GET():\n    return {'from': 'a'}\n"})
    try:
        os.symlink(app_dir / "a", app_dir / "b", target_is_directory=True)
    except OSError:
        pytest.skip("cannot make symlinks here")
    assert client(App(str(app_dir))).get("/b").json() == {"from": "a"}


def test_a_handler_that_is_a_class_is_a_startup_error(tmp_path: Path) -> None:
    app_dir = make_app_dir(tmp_path, {"x/route.py": "class GET:\n    pass\n"})
    with pytest.raises(StartupError, match="GET must be a function"):
        App(str(app_dir))


def test_a_folder_named_page_html_is_no_page(tmp_path: Path) -> None:
    app_dir = make_app_dir(tmp_path, {"x/page.html/readme.txt": "a folder, not a page"})
    app = App(str(app_dir))
    assert app.route_table() == [] and client(app).get("/x").status == 404


def test_an_app_built_after_an_edit_runs_the_new_code(tmp_path: Path, monkeypatch) -> None:
    # Python trusts compiled bytecode while the source keeps its size and its
    # modification second; an edit within that second must still be seen.
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    app_dir = make_app_dir(tmp_path, {"v/route.py": "def GET():\n    return {'v': 'one'}\n"})
    route = app_dir / "v" / "route.py"
    second = (int(time.time()) - 5) * 10**9  # a whole second in the past: the edits, then the compile
    os.utime(route, ns=(second + 10**8, second + 10**8))
    assert client(App(str(app_dir))).get("/v").json() == {"v": "one"}  # writes the bytecode
    compiled = importlib.util.cache_from_source(str(route))
    os.utime(compiled, ns=(second + 2 * 10**8, second + 2 * 10**8))  # as if compiled in that second
    route.write_text("def GET():\n    return {'v': 'two'}\n")  # the same size
    os.utime(route, ns=(second + 5 * 10**8, second + 5 * 10**8))  # later in the same second
    assert client(App(str(app_dir))).get("/v").json() == {"v": "two"}


# --- failures that are no Exception, or the server's -------------------------------


def test_a_cancelled_await_in_a_handler_or_middleware_is_a_logged_500(tmp_path: Path, caplog) -> None:
    cancelled = route_source(
        "import asyncio",
        "async def GET():",
        "    task = asyncio.ensure_future(asyncio.sleep(10))",
        "    task.cancel()",
        "    await task  # raises CancelledError, a BaseException",
    )
    middleware = route_source(
        "import asyncio",
        "async def middleware(request):",
        "    if request.path == '/by-middleware':",
        "        task = asyncio.ensure_future(asyncio.sleep(10))",
        "        task.cancel()",
        "        await task",
    )
    web = client(make_app(tmp_path, {"cancelled/route.py": cancelled, "middleware.py": middleware}))
    with caplog.at_level(logging.ERROR, logger="minirouter"):
        for path in ("/cancelled", "/by-middleware"):
            result = web.get(path)
            assert result.status == 500 and result.json() == {"error": "internal server error"}
    assert "cancelled" in caplog.text


class BrokenInput:
    """A wsgi.input as gunicorn's is on a malformed chunked body or a client gone."""

    def read(self, size: int = -1) -> bytes:
        raise ValueError("Invalid chunk size")


@pytest.mark.parametrize("how", ["declared", "terminated", "multipart"])
def test_a_body_the_server_cannot_deliver_is_a_400(tmp_path: Path, how: str, caplog) -> None:
    echo = route_source(
        "def POST(request):",
        "    if request.content_type == 'multipart/form-data':",
        "        return {'got': request.form().get('a')}",
        "    return {'got': len(request.body())}",
    )
    app = make_app(tmp_path, {"echo/route.py": echo})
    env = make_environ("POST", "/echo", wsgi_input=BrokenInput(), request_uri="/echo")
    if how == "declared":
        env["CONTENT_LENGTH"] = "10"
    elif how == "terminated":
        env["wsgi.input_terminated"] = True
    else:
        env["CONTENT_LENGTH"] = "100"
        env["CONTENT_TYPE"] = "multipart/form-data; boundary=XyZ"
    with caplog.at_level(logging.ERROR, logger="minirouter"):
        result = call(app, env, validate=False)
    assert result.status == 400
    assert result.json() == {"error": "request body could not be read (ValueError)"}
    assert caplog.text == ""  # the client's fault, not a traceback


@pytest.mark.parametrize("files", [
    {"route.py": "def GET():\n    return {}\n", "route/x/route.py": "def GET():\n    return {}\n"},
    {"comments/data.py": "store = {}\n", "comments/data/route.py": "def GET():\n    return {}\n"},
])
def test_a_folder_beside_a_module_of_its_name_is_a_startup_error(tmp_path: Path, files: dict) -> None:
    # Both would be one module; which an import gets would depend on the scan order.
    app_dir = make_app_dir(tmp_path, files)
    with pytest.raises(StartupError, match="would both be the module"):
        App(str(app_dir))


# --- App options ------------------------------------------------------------------------


@pytest.mark.parametrize("option, value", [
    ("debug", "no"), ("debug", None), ("debug", 1), ("trust_forwarded", "false"), ("trust_forwarded", 1.5),
    ("openapi_url", 1), ("openapi_url", b"/o.json"), ("openapi_url", "/my%20spec.json"), ("public_dir", ""), ("public_dir", 1), ("public_dir", False),
])
def test_a_wrong_option_value_is_an_error_naming_it(tmp_path: Path, option: str, value: object) -> None:
    app_dir = make_app_dir(tmp_path, {"x/route.py": "def GET():\n    return {}\n"})
    with pytest.raises(ValueError, match=option):
        App(str(app_dir), **{option: value})


def test_a_public_dir_that_holds_the_app_folder_is_refused(tmp_path: Path) -> None:
    app_dir = make_app_dir(tmp_path, {"x/route.py": "def GET():\n    return {}\n"})
    with pytest.raises(StartupError, match="holds the app folder"):
        App(str(app_dir), public_dir=str(tmp_path))
    with pytest.raises(StartupError, match="holds the app folder"):
        App(str(app_dir), public_dir=str(app_dir))


def test_an_app_folder_named_public_is_served_but_not_also_as_its_own_public_folder(tmp_path: Path, caplog) -> None:
    # The default public/ beside the app folder is the app folder itself here: its
    # route.py source would be served as a file. The routes are served, the files not.
    site = tmp_path / unique_name()
    (site / "public" / "x").mkdir(parents=True)
    (site / "public" / "x" / "route.py").write_text("SECRET = 's3cr3t'\ndef GET():\n    return {'ok': True}\n")
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        app = App(str(site / "public"))
    assert app.public_dir is None and "holds the app folder" in caplog.text
    web = client(app)
    assert web.get("/x").json() == {"ok": True} and web.get("/x/route.py").status == 404
    outside = tmp_path / "outside"  # nor a public/ that is a link to a folder holding the app
    (outside / "app" / "x").mkdir(parents=True)
    (outside / "public").symlink_to(outside)
    assert App(str(outside / "app")).public_dir is None


def test_a_public_dir_inside_the_app_folder_is_refused(tmp_path: Path) -> None:
    app_dir = make_app_dir(tmp_path, {"x/route.py": "def GET():\n    return {}\n", "assets/a.css": "a {}"})
    with pytest.raises(StartupError, match="lies inside it"):
        App(str(app_dir), public_dir=str(app_dir / "assets"))


def test_openapi_describes_one_template_by_the_route_that_answers_it(tmp_path: Path) -> None:
    app_dir = make_app_dir(tmp_path, {
        "files/[name]/route.py": "def GET(request, context):\n    return {}\n",
        "files/[...name]/route.py": "def PUT(request, context):\n    return {}\n",
    })
    import json

    test_client = client(App(str(app_dir), openapi_url="/openapi.json"))
    document = json.loads(test_client.get("/openapi.json").text)
    # PUT /files/x is a 405 ([name] answers one segment), so PUT is not listed there.
    assert set(document["paths"]["/files/{name}"]) >= {"get"} and "put" not in document["paths"]["/files/{name}"]
    assert test_client.put("/files/x").status == 405


def test_an_openapi_url_that_a_route_serves_is_a_startup_error(tmp_path: Path) -> None:
    app_dir = make_app_dir(tmp_path, {"items/[id]/route.py": "def GET(request, context):\n    return {}\n"})
    with pytest.raises(StartupError, match="items"):
        App(str(app_dir), openapi_url="/items/openapi.json")  # [id] would serve it
    assert App(str(app_dir), openapi_url="/openapi.json").openapi_url == "/openapi.json"


def test_under_waitress_every_body_within_the_limit_is_read(tmp_path: Path) -> None:
    """waitress refuses a body of its limit or more, and counts a chunked body's
    framing too: waitress_options leaves room for both, and the app refuses
    what is over its own limit with its JSON 413."""
    import http.client

    from conftest import LiveServer
    from minirouter import waitress_options

    size = route_source("def POST(request):", "    return {'size': len(request.body())}")
    app = App(str(make_app_dir(tmp_path, {"size/route.py": size})), max_body_size=1000)
    server = LiveServer(app, **waitress_options(app))  # as run.py serves it

    def post(body, **options):
        connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=10)
        try:
            connection.request("POST", "/size", body=body, **options)
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type"), response.read()
        finally:
            connection.close()

    try:
        exact = post(b"x" * 1000)
        chunked = post((b"x" * 10 for _ in range(100)), encode_chunked=True)  # 100 chunks of 10 bytes
        over = post(b"x" * 1001)
        far_over = post(b"x" * 100_000)
    finally:
        server.stop()
    assert exact == (200, "application/json", b'{"size":1000}')
    assert chunked == (200, "application/json", b'{"size":1000}')
    assert over[:2] == (413, "application/json") and b"limit of 1000 bytes" in over[2]
    assert far_over[0] == 413 and far_over[1] != "application/json"  # waitress's own, before the app


@pytest.mark.parametrize("target, url", [
    ("http://other.example:8080/comments?q=1", "http://other.example:8080/comments?q=1"),
    ("http://other.example/comments", "http://other.example/comments"),
    ("/comments", "http://testserver/comments"),
])
def test_request_url_takes_the_host_of_an_absolute_form_target(app: App, target: str, url: str) -> None:
    # RFC 9112 3.2.2: the authority in the target wins over the Host header.
    env = make_environ("GET", "/comments", query=target.partition("?")[2], request_uri=target)
    assert call(app, env).json()["url"] == url


@pytest.mark.parametrize("scheme, host, url", [
    ("http", "example.com:80", "http://example.com/comments"),
    ("https", "example.com:443", "https://example.com/comments"),
    ("https", "example.com:80", "https://example.com:80/comments"),
    ("http", "example.com:443", "http://example.com:443/comments"),
    ("http", "[::1]:80", "http://[::1]/comments"),
    ("http", "example.com:8080", "http://example.com:8080/comments"),
    ("http", "example.com:", "http://example.com/comments"),
])
def test_request_url_leaves_out_the_default_port_as_nextjs_does(app: App, scheme: str, host: str, url: str) -> None:
    # A WHATWG URL (Next.js's request.url) drops the scheme's own port (RFC 3986 6.2.3).
    assert get(app, "/comments", HTTP_HOST=host, **{"wsgi.url_scheme": scheme}).json()["url"] == url


@pytest.mark.parametrize("host, target", [("example.com:65536", "/comments"), ("example.com", "http://h:99999/comments")])
def test_a_port_tcp_cannot_have_is_an_invalid_host(app: App, host: str, target: str) -> None:
    # RFC 3986's port is any digits, but urlsplit(request.url).port would raise in the handler.
    result = call(app, make_environ("GET", "/comments", host=host, request_uri=target))
    assert result.status == 400 and result.json()["error"].startswith("invalid ")
    assert call(app, make_environ("GET", "/comments", host="example.com:65535")).json()["url"] == (
        "http://example.com:65535/comments")


@pytest.mark.parametrize("target", ["comments", "info/a", "127.0.0.1:443", "*x", "%2A", "ftp://h/comments",
                                    "file:///etc/passwd", "h/comments?x=1", "http:///comments"])
def test_a_request_target_that_is_no_path_no_http_url_and_no_asterisk_is_a_400(app: App, target: str) -> None:
    # waitress passes these on with PATH_INFO made from them (RFC 9112 3.2 allows none):
    # routing it would answer a request the client did not make.
    env = make_environ("GET", "/comments", request_uri=target)
    result = call(app, env)
    assert result.status == 400
    assert result.json() == {
        "error": "the request target must be a path starting with /, an http(s) URL with a host, or * for OPTIONS"}
    assert call(app, make_environ("GET", "/comments", request_uri="HTTPS://h/comments")).status == 200


# design.md: "Content-Length is ASCII digits only; anything else is 400" -- for
# every answer, not only a handler's (waitress and gunicorn refuse most of these
# themselves; a more lenient server passes them on).
@pytest.mark.parametrize("path, method", [
    ("/page", "GET"), ("/page", "HEAD"), ("/api", "OPTIONS"), ("/api", "DELETE"), ("/nowhere", "GET"),
    ("/api/", "GET"), ("/ghost", "GET"),  # the trailing-slash 308, the middleware's own answer
])
def test_a_malformed_content_length_is_400_whatever_answers(tmp_path, path, method):
    app = make_app(tmp_path, {
        "page/page.html": "<p>hi</p>\n",
        "api/route.py": "def GET():\n    return {}\n",
        "middleware.py": (
            "from minirouter import Response\n"
            "def middleware(request):\n"
            "    if request.path == '/ghost':\n"
            "        return Response('ghost')\n"
        ),
    })
    env = make_environ(method, path, request_uri=path)
    env["CONTENT_LENGTH"] = "abc"
    result = call(app, env, validate=False)
    assert result.status == 400
    if method != "HEAD":
        assert result.json() == {"error": "Content-Length must be a whole number of bytes"}


@pytest.mark.parametrize("trusted", [True, False])
def test_under_waitress_trust_forwarded_sees_the_proxys_headers(tmp_path: Path, trusted: bool) -> None:
    # waitress 3 deletes X-Forwarded-* unless they come from its own trusted_proxy:
    # App(trust_forwarded=True) behind nginx changed nothing (links said http://).
    import http.client

    from conftest import LiveServer
    from minirouter import waitress_options

    url = route_source("def GET(request):", "    return {'url': request.url}")
    app = App(str(make_app_dir(tmp_path, {"where/route.py": url})), trust_forwarded=trusted,
              allowed_hosts=["example.com"])
    server = LiveServer(app, **waitress_options(app))  # as run.py and minirouter serve serve it

    def get(forwarded_host: str):
        connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=10)
        try:
            connection.request("GET", "/where", headers={
                "Host": "example.com", "X-Forwarded-Proto": "https", "X-Forwarded-Host": forwarded_host})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    try:
        served, refused = get("example.com"), get("evil.example")
    finally:
        server.stop()
    if trusted:
        assert served == (200, b'{"url":"https://example.com/where"}')
        assert refused[0] == 400  # allowed_hosts checks the forwarded name
    else:
        assert served == refused == (200, b'{"url":"http://example.com/where"}')


def test_the_readme_waitress_serve_line_gives_what_waitress_options_gives() -> None:
    import re

    from minirouter import waitress_options

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    numbers = re.findall(r"waitress-serve .*--max-request-body-size=(\d+)", readme)
    assert numbers, "the Deploying section shows a waitress-serve command with the body limit"
    expected = waitress_options(App(str(Path(__file__).resolve().parent.parent / "app")))["max_request_body_size"]
    assert {int(number) for number in numbers} == {expected}
