"""Behaviours no other test reached (found with branch coverage of minirouter.py):
the multi-value views, a body read twice, odd charsets and dates, the errors a
handler gets for a wrong argument, start-up errors of the route tree, cleanup of
uploads and streams on the less common answers, and the reloader's helpers."""
from __future__ import annotations

import datetime
import os
import sys
import time
from pathlib import Path

import pytest

from helpers import HookApp, client, make_app, make_app_dir, make_environ
from minirouter import (
    App,
    Headers,
    Response,
    SearchParams,
    StartupError,
    cookies,
    format_set_cookie,
    serve_file,
)
import minirouter

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def hook(tmp_path):
    return HookApp(tmp_path)


# --- SearchParams / FormData read as a mapping ------------------------------------

def test_search_params_index_len_and_keys_follow_first_appearance() -> None:
    params = SearchParams([("a", "1"), ("b", "2"), ("a", "3")])
    assert params["a"] == "1"  # the first value, as URLSearchParams.get()
    assert len(params) == 2 and params.keys() == ["a", "b"]
    with pytest.raises(KeyError):
        params["z"]
    assert "SearchParams" in repr(params)


def test_search_params_index_in_a_handler(hook) -> None:
    hook.set(lambda request, context: {"q": request.search_params["q"], "n": len(request.search_params)})
    assert hook.client.get("/hook?q=x&q=y&r=1").json() == {"q": "x", "n": 2}


# --- the body read twice -------------------------------------------------------

def test_stream_after_body_yields_the_body_kept(hook) -> None:
    def handler(request, context):
        whole = request.body()
        return {"whole": whole.decode(), "streamed": [c.decode() for c in request.stream()]}

    hook.set(handler)
    assert hook.client.post("/hook", data=b"hello").json() == {"whole": "hello", "streamed": ["hello"]}
    # An empty body kept: stream() yields nothing, not one empty chunk.
    assert hook.client.post("/hook", data=b"").json() == {"whole": "", "streamed": []}


# --- charsets a codec lookup refuses ------------------------------------------------

@pytest.mark.parametrize("charset", ["aliases", "x" * 65])
def test_a_charset_no_codec_answers_to_reads_as_utf8(hook, charset) -> None:
    # "aliases" is a module of the encodings package but no codec: codecs.lookup raises.
    hook.set(lambda request, context: {"text": request.text()})
    r = hook.client.post("/hook", data="é".encode(), headers={"Content-Type": f"text/plain; charset={charset}"})
    assert r.status == 200 and r.json() == {"text": "é"}


# --- public files: dates and ranges -----------------------------------------------

@pytest.fixture
def file(tmp_path) -> Path:
    path = tmp_path / "f.txt"
    path.write_bytes(b"0123456789")
    os.utime(path, (1_000_000_000, 1_000_000_000))  # 2001: every date below is after it
    return path


@pytest.mark.parametrize("since", [
    "Sat, 31 Feb 2024 00:00:00 GMT",  # no such day
    "Sun, 06 Foo 2024 08:49:37 GMT",  # no such month
])
@pytest.mark.parametrize("header", ["If-Modified-Since", "If-Unmodified-Since"])
def test_an_impossible_conditional_date_is_ignored(file, since, header) -> None:
    # RFC 9110 13.1.3, 13.1.4: a date that is not a valid HTTP-date is ignored:
    # a 200, not a 304 or 412 (nor a 500).
    response = serve_file(make_environ(headers={header: since}), str(file))
    assert response.status == 200


def test_a_valid_if_modified_since_still_gives_304(file) -> None:
    response = serve_file(make_environ(headers={"If-Modified-Since": "Sun, 06 Jan 2024 08:49:37 GMT"}), str(file))
    assert response.status == 304


def test_a_range_whose_last_byte_has_too_many_digits_runs_to_the_end(file) -> None:
    # RFC 9110 14.1.2: a last-pos at or past the length means the last byte.
    app = make_app(file.parent, {"r/route.py": f"""
        from minirouter import serve_file

        def GET(request):
            return serve_file(request.environ, {str(file)!r})
        """})
    r = client(app).get("/r", headers={"Range": "bytes=2-99999999999999999999999"})
    assert r.status == 206 and r.content == b"23456789"
    assert r.headers.get("content-range") == "bytes 2-9/10"


def test_serve_file_of_a_missing_file_is_a_404(tmp_path) -> None:
    response = serve_file(make_environ(), str(tmp_path / "gone.txt"))
    assert response.status == 404


# --- Set-Cookie Expires read back by TestResponse.cookies ---------------------------

def test_set_cookie_with_an_unreadable_expires_is_kept(hook) -> None:
    def handler(request, context):
        response = Response("x")
        response.headers.append("Set-Cookie", "a=1; Expires=not a date")
        response.headers.append("Set-Cookie", "b=2; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
        response.headers.append("Set-Cookie", "c=3; Max-Age=soon")  # not a number: ignored
        return response

    hook.set(handler)
    assert hook.client.get("/hook").cookies == {"a": "1", "c": "3"}


# --- a wrong argument is the handler's error, said at once --------------------------

def test_response_argument_errors() -> None:
    with pytest.raises(TypeError, match="must be str, bytes or an iterable"):
        Response(5)
    with pytest.raises(TypeError, match="must be a str"):
        Response("x", headers={"X-A": 1})
    with pytest.raises(ValueError, match="redirect status"):
        Response.redirect("/x", status=200)
    with pytest.raises(TypeError, match="redirect URL must be a str"):
        Response.redirect(b"/x")
    with pytest.raises(TypeError, match="value must be a str"):
        format_set_cookie("a", 5)
    with pytest.raises(TypeError, match="max_age takes whole seconds"):
        format_set_cookie("a", "b", max_age="10")


def test_response_headers_can_be_replaced(hook) -> None:
    def handler(request, context):
        response = Response("x", headers={"X-Old": "1"})
        response.headers = {"X-New": "2"}
        return response

    hook.set(handler)
    r = hook.client.get("/hook")
    assert r.headers.get("x-new") == "2" and r.headers.get("x-old") is None


def test_response_json_escapes_a_lone_surrogate() -> None:
    response = Response.json({"a": "\ud800é"})
    assert response.body == b'{"a":"\\ud800\\u00e9"}'


def test_headers_mapping_delete_and_iteration() -> None:
    h = Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X-A", "1")])
    assert list(h) == ["set-cookie", "x-a"]  # each name once
    del h["x-a"]
    with pytest.raises(KeyError):
        del h["x-a"]
    assert "Headers(" in repr(h)


# --- cookies ----------------------------------------------------------------------

def test_response_cookies_get_and_has() -> None:
    response = Response("x")
    response.cookies.set("a", "b c")
    assert response.cookies.get("a") == "b c"  # decoded
    assert response.cookies.get("z") is None
    assert response.cookies.has("a") and not response.cookies.has("z")


def test_cookie_jar_iteration_sees_its_own_changes(hook) -> None:
    def handler(request, context):
        jar = cookies()
        jar.set("new", "1")
        jar.delete("old")
        return {"names": sorted(jar), "n": len(jar), "has_old": request.cookies.has("old")}

    hook.set(handler)
    r = hook.client.get("/hook", cookies={"old": "x", "keep": "y"})
    assert r.json() == {"names": ["keep", "new"], "n": 2, "has_old": True}


def test_cookie_without_path_and_naive_expires_in_utc(monkeypatch) -> None:
    if not hasattr(time, "tzset"):
        pytest.skip("needs time.tzset")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        line = format_set_cookie("a", "b", path=None, expires=datetime.datetime(2030, 1, 1))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert "Path=" not in line
    assert "Expires=Tue, 01 Jan 2030 00:00:00 GMT" in line  # a naive datetime is UTC, not local time


# --- the route tree's start-up errors ---------------------------------------------------

@pytest.mark.parametrize("files, message", [
    ({"[id/route.py": "def GET(): return {}"}, "malformed dynamic segment"),
    ({"[a.b]/route.py": "def GET(): return {}"}, "invalid parameter name"),
    ({"a/route.py": "def GET(a, b, c): return {}"}, "must take (request, context)"),
    ({"(g)/a/[[...slug]]/route.py": "def GET(): return {}", "a/route.py": "def GET(): return {}"},
     "optional catch-all already serves"),
    ({"(g1)/a/[...slug]/route.py": "def GET(): return {}", "(g2)/a/[...slug]/route.py": "def GET(): return {}"},
     "resolve to the same URL"),
])
def test_route_tree_startup_errors(tmp_path, files, message) -> None:
    with pytest.raises(StartupError) as error:
        make_app(tmp_path, files)
    assert message in str(error.value)


def test_missing_app_or_public_folder_is_a_startup_error(tmp_path) -> None:
    with pytest.raises(StartupError, match="the app folder does not exist"):
        App(str(tmp_path / "nowhere"))
    app_dir = make_app_dir(tmp_path, {"route.py": "def GET(): return {}"})
    with pytest.raises(StartupError, match="the public folder does not exist"):
        App(str(app_dir), public_dir=str(tmp_path / "no-public"))


def test_an_app_folder_named_like_an_unimported_stdlib_module_is_refused(tmp_path) -> None:
    name = "tabnanny"
    if name in sys.modules:
        pytest.skip(f"{name} is imported already")
    app_dir = make_app_dir(tmp_path, {"route.py": "def GET(): return {}"}, name=name)
    with pytest.raises(StartupError, match="is the name of a module"):
        App(str(app_dir))
    assert name not in sys.modules or not getattr(sys.modules[name], "__path__", None)


# --- middleware answering with a dict ----------------------------------------------------

def test_middleware_returning_a_dict_answers_json(tmp_path) -> None:
    app = make_app(tmp_path, {
        "middleware.py": """
            def middleware(request):
                if request.path == "/blocked":
                    return {"blocked": True}
            """,
        "blocked/route.py": "def GET(): return {'route': True}",
    })
    r = client(app).get("/blocked")
    assert r.status == 200 and r.json() == {"blocked": True}
    assert r.headers.get("content-type").startswith("application/json")


# --- uploads and streams closed on the less common answers ---------------------------------

@pytest.mark.parametrize("answer", ["status-299", "file"])
def test_uploads_are_closed_after_an_uncommon_answer(hook, tmp_path, answer) -> None:
    served = tmp_path / "served.txt"
    served.write_bytes(b"file")

    def handler(request, context):
        upload = request.form().get("f")
        hook.hook.state["upload"] = upload
        if answer == "file":
            return serve_file(request.environ, str(served))
        return Response("done", status=299)

    hook.set(handler)
    r = hook.client.post("/hook", files={"f": ("a.bin", b"data", "application/octet-stream")})
    assert r.status in (200, 299)
    assert hook.hook.state["upload"]._file.closed


@pytest.mark.parametrize("kind", ["async generator", "sync body with an async close()"])
def test_a_head_closes_its_body_and_awaits_an_async_close(hook, kind: str) -> None:
    state = hook.hook.state

    async def generator():
        try:
            yield b"x"
        finally:
            state["closed"] = True

    class SyncBody:
        def __iter__(self):
            return iter([b"x"])

        async def close(self):
            state["closed"] = True

    body = generator() if kind == "async generator" else SyncBody()
    hook.set(lambda request, context: Response(body))
    assert hook.client.request("HEAD", "/hook").status == 200
    assert state.get("closed") is True


def test_an_async_body_of_a_204_is_closed_unstarted(hook) -> None:
    # A 204 sends no content: the body is never iterated, but its aclose() is awaited.
    class Body:
        def __aiter__(self):
            hook.hook.state["iterated"] = True
            return self

        async def __anext__(self):
            raise StopAsyncIteration

        async def aclose(self):
            hook.hook.state["closed"] = True

    hook.set(lambda request, context: Response(Body(), status=204))
    r = hook.client.get("/hook")
    assert r.status == 204 and r.content == b""
    assert hook.hook.state == {"closed": True}


def test_a_stream_yielding_a_non_bytes_piece_fails_loudly(hook, caplog) -> None:
    hook.set(lambda request, context: Response(iter([b"a", 5])))
    with pytest.raises(TypeError, match="yielded int, not bytes or str"):
        hook.client.get("/hook")
    assert any("failed after it started" in record.getMessage() for record in caplog.records)


# --- TestClient -----------------------------------------------------------------

def test_test_client_sends_a_non_latin1_header_as_utf8_bytes(hook) -> None:
    hook.set(lambda request, context: {"name": request.headers.get("x-name")})
    # As a server hands them on (PEP 3333): the UTF-8 bytes, each as a latin-1 character.
    assert hook.client.get("/hook", headers={"X-Name": "Zoë→"}).json() == {"name": "Zoë→".encode().decode("latin-1")}


def test_test_response_text_with_a_malformed_content_type_is_utf8(hook) -> None:
    # A charset given twice with two values: a request's would be a 400.
    content_type = "text/plain; charset=utf-8; charset=latin-1"
    hook.set(lambda request, context: Response("café".encode(), headers={"Content-Type": content_type}))
    r = hook.client.get("/hook")
    assert r.text == "café" and r.status_code == 200


# --- the reloader and the serve command ------------------------------------------------

def test_the_reloader_watches_only_py_and_html_outside_public(tmp_path) -> None:
    app_dir = tmp_path / "app"
    public = tmp_path / "public"
    for folder in (app_dir, public):
        folder.mkdir()
    for name in ("route.py", "page.html", "comments.db", "notes.txt"):
        (app_dir / name).write_text("x")
    (public / "logo.png").write_text("x")
    watched = {os.path.relpath(path, tmp_path) for path in minirouter.watched_files([str(app_dir), str(public)])}
    assert watched == {os.path.join("app", "route.py"), os.path.join("app", "page.html"),
                       os.path.join("public", "logo.png")}


def test_the_reloader_watches_linked_folders_as_the_app_routes_them_and_ends_a_link_loop(tmp_path) -> None:
    app_dir, elsewhere = tmp_path / "app", tmp_path / "elsewhere" / "inner"
    for folder in (app_dir, elsewhere):
        folder.mkdir(parents=True)
    (elsewhere / "route.py").write_text("x")
    (app_dir / "linked").symlink_to(tmp_path / "elsewhere")
    (elsewhere / "loop").symlink_to(tmp_path / "elsewhere")  # back up: walked once
    watched = {os.path.relpath(path, tmp_path) for path in minirouter.watched_files([str(app_dir)])}
    assert watched == {os.path.join("app", "linked", "inner", "route.py")}


def test_the_reloader_skips_a_link_up_the_tree_and_walks_a_linked_public_folder_whole(tmp_path) -> None:
    # The app refuses a link to a folder above it; walking it would read the whole tree on
    # every poll. A public/ linked into the app is still watched for every file.
    app_dir, public = tmp_path / "app", tmp_path / "public"
    for folder in (app_dir, public):
        folder.mkdir()
    (tmp_path / "notes.py").write_text("x")
    (app_dir / "up").symlink_to(tmp_path)
    (public / "style.css").write_text("x")
    (app_dir / "static").symlink_to(public)
    watched = {os.path.relpath(path, tmp_path) for path in minirouter.watched_files([str(app_dir), str(public)])}
    assert watched == {os.path.join("public", "style.css")}


def test_serve_sets_its_sigterm_handler_only_while_it_serves(monkeypatch) -> None:
    # SIGTERM stops the server as Ctrl-C does; a script that goes on after serve() keeps its own.
    import signal

    seen = []
    monkeypatch.setattr(minirouter, "_serve_until_interrupted",
                        lambda app, host, port: seen.append(signal.getsignal(signal.SIGTERM)))
    before = signal.getsignal(signal.SIGTERM)
    minirouter.serve(lambda environ, start_response: [], "127.0.0.1", 0)
    assert seen and seen[0] is not before and callable(seen[0])
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_host_name_the_resolver_cannot_encode_is_a_bad_argument() -> None:
    status, reason = minirouter._listen_problem("a" * 300, 8000)  # type: ignore[attr-defined, misc]
    assert status == 2 and "label" in reason
