"""Dispatch: handler names and arities, return values, errors, and what the
framework answers by itself (design.md, "A route module" and "What the
framework answers by itself")."""
from __future__ import annotations

import logging

import pytest

from helpers import (
    HookApp,
    allow_set,
    assert_json_error,
    call,
    client,
    import_from_app,
    make_app,
    make_app_dir,
    make_environ,
    media_type,
)
from minirouter import App, HTTPError

pytestmark = pytest.mark.filterwarnings("ignore::wsgiref.validate.WSGIWarning")


# --- handlers ---------------------------------------------------------------------

def test_handler_arities(tmp_path):
    app = make_app(tmp_path, {
        "zero/route.py": "def GET():\n    return {'n': 0}\n",
        "one/route.py": "def GET(request):\n    return {'n': 1, 'm': request.method}\n",
        "two/[id]/route.py": "def GET(request, context):\n    return {'n': 2, 'id': context.params['id']}\n",
        "names/[id]/route.py": "def GET(req, ctx):\n    return {'id': ctx.params['id'], 'm': req.method}\n",
    })
    c = client(app)
    assert c.get("/zero").json() == {"n": 0}
    assert c.get("/one").json() == {"n": 1, "m": "GET"}
    assert c.get("/two/9").json() == {"n": 2, "id": "9"}
    assert c.get("/names/3").json() == {"id": "3", "m": "GET"}


def test_async_handlers(tmp_path):
    app = make_app(tmp_path, {
        "a/[id]/route.py": """
            import asyncio

            async def GET(request, context):
                await asyncio.sleep(0)
                return {'id': context.params['id']}

            async def POST(request):
                await asyncio.sleep(0)
                return {'got': request.json()}
            """,
        "b/route.py": """
            async def GET():
                return [1, 2]
            """,
    })
    c = client(app)
    assert c.get("/a/5").json() == {"id": "5"}
    assert c.post("/a/5", json={"x": 1}).json() == {"got": {"x": 1}}
    assert c.get("/b").json() == [1, 2]


def test_every_method_name_is_dispatched(tmp_path):
    src = "".join(
        f"def {m}(request):\n    from minirouter import Response\n    return Response('{m}', headers={{'x-m': '{m}'}})\n"
        for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
    )
    app = make_app(tmp_path, {"all/route.py": src})
    c = client(app)
    for m in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        r = c.request(m, "/all")
        assert r.status == 200 and r.text == m and r.headers.get("x-m") == m
    assert c.head("/all").headers.get("x-m") == "HEAD"
    assert c.options("/all").headers.get("x-m") == "OPTIONS"


def test_dict_and_list_shorthand(tmp_path):
    app = make_app(tmp_path, {
        "d/route.py": "def GET():\n    return {'a': [1, 'é']}\n",
        "l/route.py": "def GET():\n    return [{'a': 1}, None]\n",
    })
    c = client(app)
    r = c.get("/d")
    assert r.status == 200
    assert media_type(r.headers.get("content-type")) == "application/json"
    assert r.json() == {"a": [1, "é"]}
    r = c.get("/l")
    assert r.status == 200
    assert media_type(r.headers.get("content-type")) == "application/json"
    assert r.json() == [{"a": 1}, None]


BAD_RETURNS = {
    "retnone": "def GET():\n    return None\n",
    "retint": "def GET():\n    return 42\n",
    "retstr": "def GET():\n    return 'text'\n",
    "rettuple": "def GET():\n    return ('a', 200)\n",
    "status600": "from minirouter import Response\ndef GET():\n    return Response('x', status=600)\n",
    "status99": "from minirouter import Response\ndef GET():\n    return Response('x', status=99)\n",
}


@pytest.mark.parametrize("folder", sorted(BAD_RETURNS))
def test_bad_return_is_500_logged_with_file(tmp_path, caplog, folder):
    app = make_app(tmp_path, {f"{folder}/route.py": BAD_RETURNS[folder]})
    with caplog.at_level(logging.ERROR, logger="minirouter"):
        r = client(app).get(f"/{folder}")
    assert_json_error(r.status, r.headers.get, r.content, 500)
    errors = [rec for rec in caplog.records if rec.name == "minirouter" and rec.levelno >= logging.ERROR]
    assert errors, "nothing logged at ERROR on the minirouter logger"
    assert f"{folder}/route.py" in caplog.text


def test_nextjs_init_object_as_status_says_what_to_write(tmp_path, caplog):
    # Response.json(post, { status: 201 }) transliterated: the dict reached a
    # set lookup and failed inside the framework with "unhashable type".
    app = make_app(tmp_path, {"p/route.py": (
        "from minirouter import Response\n"
        "def POST():\n"
        "    return Response.json({'a': 1}, {'status': 201})\n"
    )}, debug=True)
    with caplog.at_level(logging.ERROR, logger="minirouter"):
        r = client(app).post("/p")
    assert r.status == 500 and "write the keyword status=" in r.json()["detail"]
    assert "unhashable" not in caplog.text and "Traceback" not in caplog.text


def test_exception_is_generic_500_with_traceback_logged(tmp_path, caplog):
    app = make_app(tmp_path, {"boom/route.py": "def GET():\n    raise RuntimeError('secret-token-xyz')\n"})
    with caplog.at_level(logging.ERROR, logger="minirouter"):
        r = client(app).get("/boom")
    assert_json_error(r.status, r.headers.get, r.content, 500)
    assert "secret-token-xyz" not in r.text
    assert "Traceback" not in r.text
    assert "RuntimeError" not in r.text
    assert "route.py" not in r.text
    assert "secret-token-xyz" in caplog.text
    assert "Traceback" in caplog.text
    assert any(rec.name == "minirouter" and rec.levelno >= logging.ERROR for rec in caplog.records)


def test_debug_shows_traceback_to_client(tmp_path):
    app = make_app(tmp_path, {"boom/route.py": "def GET():\n    raise RuntimeError('secret-token-xyz')\n"}, debug=True)
    r = client(app).get("/boom")
    assert r.status == 500
    assert "secret-token-xyz" in r.text


@pytest.mark.parametrize("source", [
    "def GET():\n    raise RuntimeError('secret-token-xyz')\n",
    "def GET():\n    return None\n",
], ids=["exception", "none-returned"])
def test_debug_500_is_still_a_json_error(tmp_path, source):
    # "Every error the framework writes has a JSON body" holds with debug=True too.
    app = make_app(tmp_path, {"boom/route.py": source}, debug=True)
    r = client(app).get("/boom")
    assert_json_error(r.status, r.headers.get, r.content, 500)
    if "secret" in source:
        assert "secret-token-xyz" in r.text  # the traceback, in some field of the JSON body


def test_debug_500_for_a_bad_return_value_says_why_not_a_traceback(tmp_path):
    # No exception was raised, so there is no traceback to show: the reason is shown instead.
    app = make_app(tmp_path, {"boom/route.py": "def GET():\n    return None\n"}, debug=True)
    body = client(app).get("/boom").json()
    assert "traceback" not in body
    assert body["detail"] == "GET handler returned NoneType; return a Response, a dict or a list"


@pytest.mark.parametrize("status", [700, 99])
def test_a_streamed_body_dropped_for_a_bad_status_is_closed(tmp_path, status):
    app = make_app(tmp_path, {
        "bad/route.py": f"""
from minirouter import Response
from PKG._lib.state import closed

class Body:
    def __iter__(self):
        return iter([b"x"])

    def close(self):
        closed.append(True)

def GET():
    return Response(Body(), status={status})
""",
        "_lib/state.py": "closed = []\n",
    })
    r = client(app).get("/bad")
    assert r.status == 500
    assert import_from_app(app.app_dir, "_lib.state").closed == [True]


def test_async_exception_is_500(tmp_path):
    app = make_app(tmp_path, {"boom/route.py": "async def GET():\n    raise ValueError('hidden-abc')\n"})
    r = client(app).get("/boom")
    assert_json_error(r.status, r.headers.get, r.content, 500)
    assert "hidden-abc" not in r.text


# --- HTTPError, redirect, not_found ---------------------------------------------------

ERRORS_APP = {
    "teapot/route.py": "from minirouter import HTTPError\ndef GET():\n    raise HTTPError(418, 'short and stout')\n",
    "forbidden/route.py": "from minirouter import HTTPError\nasync def GET():\n    raise HTTPError(403, 'nope')\n",
    "missing/route.py": "from minirouter import not_found\ndef GET():\n    not_found()\n",
    "tmp/route.py": """
        from minirouter import redirect

        def helper():
            redirect('/elsewhere?x=1')

        def GET():
            helper()
        """,
    "perm/route.py": "from minirouter import permanent_redirect\ndef GET():\n    permanent_redirect('https://example.com/new')\n",
    "rel/route.py": "from minirouter import redirect\nasync def GET():\n    redirect('../up')\n",
    "resp/route.py": "from minirouter import Response\ndef GET():\n    return Response.redirect('/r')\n",
    "resp301/route.py": "from minirouter import Response\ndef GET():\n    return Response.redirect('/r', 301)\n",
}


@pytest.fixture
def errors_client(tmp_path):
    return client(make_app(tmp_path, ERRORS_APP))


def test_http_error(errors_client):
    r = errors_client.get("/teapot")
    data = assert_json_error(r.status, r.headers.get, r.content, 418)
    assert data == {"error": "short and stout"}
    r = errors_client.get("/forbidden")
    assert assert_json_error(r.status, r.headers.get, r.content, 403) == {"error": "nope"}


@pytest.mark.parametrize("status", [99, 100, 103, 600, True, 404.0])
def test_http_error_takes_a_final_status_only(status):
    # A 1xx would go out as the answer and leave the client waiting (RFC 9110 15.2).
    with pytest.raises(ValueError, match="from 200 to 599"):
        HTTPError(status)


def test_not_found(errors_client):
    r = errors_client.get("/missing")
    assert_json_error(r.status, r.headers.get, r.content, 404)


def test_redirect_raises_307(errors_client):
    r = errors_client.get("/tmp")
    assert r.status == 307
    assert r.headers.get("location") == "/elsewhere?x=1"
    assert r.content == b""


def test_permanent_redirect_raises_308(errors_client):
    r = errors_client.get("/perm")
    assert r.status == 308
    assert r.headers.get("location") == "https://example.com/new"
    assert r.content == b""


def test_redirect_location_as_given(errors_client):
    r = errors_client.get("/rel")
    assert r.status == 307
    assert r.headers.get("location") == "../up"


def test_response_redirect(errors_client):
    r = errors_client.get("/resp")
    assert (r.status, r.headers.get("location"), r.content) == (307, "/r", b"")
    r = errors_client.get("/resp301")
    assert (r.status, r.headers.get("location"), r.content) == (301, "/r", b"")


# --- what the framework answers by itself ------------------------------------------------

METHODS_APP = {
    "gp/route.py": "def GET():\n    return {'m': 'GET'}\ndef POST():\n    return {'m': 'POST'}\n",
    "dp/route.py": "def DELETE():\n    return {}\ndef PATCH():\n    return {}\n",
    "_lib/state.py": "calls = []\n",
    "counted/route.py": """
        from minirouter import Response
        from PKG._lib.state import calls

        def GET(request):
            calls.append('GET handler')
            return Response('full body', headers={'X-Custom': 'yes'})
        """,
    "counter/route.py": "from PKG._lib.state import calls\ndef GET():\n    return {'calls': calls}\n",
    "ownhead/route.py": """
        from minirouter import Response

        def GET():
            return Response('get body')

        def HEAD():
            return Response('head body must not be sent', headers={'X-Head': '1'})
        """,
    "ownoptions/route.py": """
        from minirouter import Response

        def GET():
            return {}

        def OPTIONS():
            return Response(None, status=200, headers={'X-Opt': '1'})
        """,
    "teapot/route.py": "from minirouter import HTTPError\ndef GET():\n    raise HTTPError(418, 'tea')\n",
    "lower/route.py": "def GET():\n    return {}\ndef get():\n    return {'lower': True}\ndef FOO():\n    return {'foo': True}\n",
}


@pytest.fixture
def methods_client(tmp_path):
    return client(make_app(tmp_path, METHODS_APP))


def test_404(methods_client):
    r = methods_client.get("/nope")
    assert_json_error(r.status, r.headers.get, r.content, 404)


def test_405_with_allow_same_as_options(methods_client):
    r = methods_client.put("/gp")
    assert_json_error(r.status, r.headers.get, r.content, 405)
    assert allow_set(r.headers.get("allow")) == ["GET", "HEAD", "OPTIONS", "POST"]
    o = methods_client.options("/gp")
    assert o.headers.get("allow") == r.headers.get("allow")


def test_405_for_get_without_get_handler(methods_client):
    r = methods_client.get("/dp")
    assert r.status == 405
    assert allow_set(r.headers.get("allow")) == ["DELETE", "OPTIONS", "PATCH"]
    h = methods_client.head("/dp")
    assert h.status == 405
    assert h.content == b""


def test_automatic_options(methods_client):
    r = methods_client.options("/gp")
    assert r.status == 204
    assert r.headers.get("allow") == "GET, HEAD, OPTIONS, POST"
    assert r.content == b""
    r = methods_client.options("/dp")
    assert r.status == 204
    assert r.headers.get("allow") == "DELETE, OPTIONS, PATCH"


def test_own_options_handler_is_used(methods_client):
    r = methods_client.options("/ownoptions")
    assert r.status == 200
    assert r.headers.get("x-opt") == "1"


@pytest.mark.parametrize("method", ["FOO", "get", "TRACE", "CONNECT", "PROPFIND", "Post"])
@pytest.mark.parametrize("path", ["/gp", "/nope", "/lower"])
def test_501_for_other_methods(methods_client, method, path):
    r = methods_client.request(method, path)
    assert_json_error(r.status, r.headers.get, r.content, 501)


def test_lowercase_and_unknown_handlers_never_called(methods_client):
    r = methods_client.request("get", "/lower")
    assert r.status == 501
    assert "lower" not in r.text
    r = methods_client.request("FOO", "/lower")
    assert r.status == 501
    assert "foo" not in r.text
    assert allow_set(methods_client.options("/lower").headers.get("allow")) == ["GET", "HEAD", "OPTIONS"]


def test_automatic_head_uses_get(methods_client):
    r = methods_client.head("/counted")
    assert r.status == 200
    assert r.content == b""
    assert r.headers.get("x-custom") == "yes"
    assert media_type(r.headers.get("content-type")) == "text/plain"
    assert methods_client.get("/counter").json() == {"calls": ["GET handler"]}


def test_own_head_handler_is_used_and_body_dropped(methods_client):
    r = methods_client.head("/ownhead")
    assert r.status == 200
    assert r.headers.get("x-head") == "1"
    assert r.content == b""


@pytest.mark.parametrize("path,status", [("/nope", 404), ("/teapot", 418)])
def test_head_errors_have_no_body(methods_client, path, status):
    r = methods_client.head(path)
    assert r.status == status
    assert r.content == b""
    assert media_type(r.headers.get("content-type")) == "application/json"


def test_head_never_has_body_hand_built(tmp_path):
    app = make_app(tmp_path, METHODS_APP)
    for path in ("/counted", "/ownhead", "/nope", "/teapot", "/dp"):
        r = call(app, make_environ("HEAD", path))
        assert r.body == b"", path


# --- every framework error: JSON body, Content-Type and Content-Length ------------------

def test_every_framework_error_is_json(tmp_path):
    app = make_app(tmp_path, {
        "gp/route.py": "def GET():\n    return {}\ndef POST(request):\n    return {'n': len(request.body())}\n",
        "j/route.py": "def POST(request):\n    return {'got': request.json()}\n",
        "boom/route.py": "def GET():\n    raise KeyError('x')\n",
        "c/[id]/route.py": "def GET():\n    return {}\n",
    }, max_body_size=10)
    c = client(app)
    cases = [
        (c.get("/nope"), 404),
        (c.put("/gp"), 405),
        (c.request("FOO", "/gp"), 501),
        (c.post("/gp", data=b"x" * 11), 413),
        (c.post("/j", data=b"{}", headers={"Content-Type": "text/plain"}), 415),
        (c.post("/j", data=b"{", headers={"Content-Type": "application/json"}), 400),
        (c.get("/boom"), 500),
    ]
    for r, status in cases:
        assert_json_error(r.status, r.headers.get, r.content, status)


# --- header values with CR/LF set by a handler -----------------------------------------

@pytest.mark.parametrize("value", ["a\r\nInjected: 1", "a\nInjected: 1", "a\rInjected: 1", "a\x00b"])
def test_header_injection_refused(tmp_path, value):
    hook = HookApp(tmp_path)
    from minirouter import Response

    hook.set(lambda request, context: Response("x", headers={"X-A": value}))
    r = hook.client.get("/hook")
    assert r.status == 500
    assert r.headers.get("injected") is None


def test_header_injection_through_headers_set_refused(tmp_path):
    hook = HookApp(tmp_path)
    from minirouter import Response

    def factory(request, context):
        resp = Response("x")
        resp.headers.set("X-A", "a\r\nInjected: 1")
        return resp

    hook.set(factory)
    r = hook.client.get("/hook")
    assert r.status == 500
    assert r.headers.get("injected") is None


def test_async_handlers_and_bodies_work_from_a_thread_whose_event_loop_runs(tmp_path):
    # An `async def` test calling TestClient, or a notebook: that thread's loop is
    # running, and a loop cannot be nested, so minirouter awaits on a helper thread.
    import asyncio

    app = make_app(tmp_path, {
        "a/route.py": """
            import asyncio
            from minirouter import headers, not_found

            async def GET(request):
                await asyncio.sleep(0.001)
                if request.search_params.has("missing"):
                    not_found()
                return {"ua": headers().get("user-agent")}
            """,
        "s/route.py": """
            import asyncio
            from minirouter import Response

            async def pieces():
                for i in range(3):
                    await asyncio.sleep(0)
                    yield str(i)

            def GET():
                return Response(pieces())
            """,
    })

    async def inside_a_running_loop():
        c = client(app)
        return (c.get("/a", headers={"User-Agent": "t/1"}).json(), c.get("/a?missing").status, c.get("/s").text)

    assert asyncio.run(inside_a_running_loop()) == ({"ua": "t/1"}, 404, "012")
    assert client(app).get("/s").text == "012"  # and, after, from this thread as before


def test_an_async_handler_may_call_the_app_in_process(tmp_path):
    # The running loop is then minirouter's own loop for this thread: the inner
    # async handler runs on a helper thread's loop, not on the busy one.
    folder = make_app_dir(tmp_path, {
        "inner/route.py": "async def GET():\n    return {'inner': 1}\n",
        "outer/route.py": """
            from minirouter import TestClient
            from PKG._lib import shared

            async def GET():
                inner = TestClient(shared.app).get("/inner")
                return {"status": inner.status, "body": inner.json()}
            """,
        "_lib/shared.py": "app = None\n",
    })
    app = App(str(folder))
    import_from_app(folder, "_lib.shared").app = app
    assert client(app).get("/outer").json() == {"status": 200, "body": {"inner": 1}}
