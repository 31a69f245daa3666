"""What a developer porting Next.js route handlers (or a Flask app) gets when
they write the Next.js (or Flask) form by habit: the same answer where Python
allows it (`f"/login?{request.search_params}"`), else an error that says what
to write instead, never a silent wrong answer or a bare AttributeError."""
from __future__ import annotations

import logging

import pytest

from helpers import client, make_app, make_app_dir
from minirouter import App, HTTPError, Response, SearchParams, TestResponse


def test_search_params_as_text_is_the_encoded_query_as_urlsearchparams_writes_it(tmp_path):
    app = make_app(tmp_path, {"login2/route.py": """
        from minirouter import Response

        def GET(request):
            return Response.redirect(f"/login?{request.search_params}")
        """})
    answer = client(app).get("/login2?from=%2Fx&y=a%20b&y=2&empty=")
    assert answer.status == 307
    assert answer.headers["location"] == "/login?from=%2Fx&y=a+b&y=2&empty="


@pytest.mark.parametrize("read, hint", [
    (lambda request: request.nextUrl, "request.search_params, request.path (decoded) or request.url"),
    (lambda request: request.formData(), "request.form() (not awaited)"),
    (lambda request: request.searchParams, "request.search_params"),
    (lambda request: request.ip, 'request.environ["REMOTE_ADDR"]'),
    (lambda request: request.cookies.getAll(), "items() (every pair) or get(name)"),
    (lambda request: request.headers.entries(), "items()"),
    (lambda request: request.search_params.getAll("tag"), "get_all(name)"),
    (lambda request: request.search_params.entries(), "items()"),
    (lambda request: request.search_params.toString(), "str(...)"),
])
def test_a_nextjs_name_missing_here_says_what_to_write_instead(read, hint):
    from minirouter import Request

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_COOKIE": "a=1", "QUERY_STRING": "tag=a"}
    request = Request(environ, "/", "/")
    with pytest.raises(AttributeError) as info:
        read(request)
    assert str(info.value).endswith(f": that is Next.js's name; write {hint}")
    with pytest.raises(AttributeError, match="no attribute 'nothing_like_it'$"):
        request.nothing_like_it  # noqa: B018
    assert not hasattr(request, "nextUrl") and hasattr(request, "search_params")


def test_no_class_a_request_goes_through_has_a_getattr_which_would_slow_every_attribute_read():
    # CPython does not specialize attribute reads on a class with __getattr__: the hints
    # as one cost a static request 8% of its instructions, a JSON echo 12%.
    import minirouter

    on_the_path = [minirouter.Request, minirouter.Response, minirouter.RequestHeaders, minirouter.RequestCookies,
                   minirouter.SearchParams, minirouter.FormData, minirouter.CookieJar, minirouter.HTTPError,
                   minirouter.Context, minirouter.App, minirouter.Headers]
    for cls in on_the_path:
        assert not any("__getattr__" in vars(base) or "__getattribute__" in vars(base)
                       for base in cls.__mro__ if base.__module__ == "minirouter"), cls
    with pytest.raises(AttributeError, match="that is Flask's name; write response.status"):
        minirouter.Response("x").status_code  # noqa: B018


def test_a_hint_never_hides_what_a_mixin_later_in_the_mro_defines():
    # The old __getattr__ ran only when lookup failed; a hint set on the subclass must not shadow this.
    import minirouter

    class FlaskCompat:
        @property
        def status_code(self):
            return self.status

    class MyResponse(minirouter.Response, FlaskCompat):
        pass

    assert MyResponse("x", 201).status_code == 201
    with pytest.raises(AttributeError, match="Flask's name"):
        minirouter.Response("x", 201).status_code  # noqa: B018


def test_a_forms_to_string_gets_no_hint_to_write_str_which_is_no_encoding_of_it():
    from minirouter import FormData

    with pytest.raises(AttributeError) as info:
        FormData([("a", "1")]).toString()
    assert str(info.value) == "'FormData' object has no attribute 'toString'"
    with pytest.raises(AttributeError, match="write get_all"):
        FormData([("a", "1")]).getAll("a")


@pytest.mark.parametrize("call, message", [
    ("cookies().set({'name': 'name', 'value': 'lee', 'httpOnly': True})", "not Next.js's object form"),
    ("cookies().set('name', 'lee', {'secure': True})", "cookie options are keywords"),
    ("cookies().set('name', 'lee', httpOnly=True)", "write http_only=, not Next.js's httpOnly="),
    ("cookies().set('name', 'lee', maxAge=60)", "write max_age=, not Next.js's maxAge="),
    ("cookies().set('name', 'lee', http_onyl=True)", "unexpected keyword argument 'http_onyl'"),
    ("cookies().delete({'name': 'name', 'path': '/x'})", "delete('name', path='/x'), not Next.js's object form"),
    ("request.cookies.delete('name')", 'Response.next(request_headers={"cookie": ...})'),
    ("Response.next({'request': {'headers': {'x-a': '1'}}})", "write Response.next(request_headers={...})"),
])
def test_a_nextjs_call_form_is_a_type_error_that_says_what_to_write(tmp_path, caplog, call, message):
    app = make_app(tmp_path, {"c/route.py": f"""
        from minirouter import Response, cookies

        def GET(request):
            {call}
            return Response("set")
        """}, debug=True)
    with caplog.at_level(logging.ERROR, logger="minirouter"):
        answer = client(app).get("/c")
    assert answer.status == 500 and message in answer.json()["traceback"]
    assert message in caplog.text


def test_the_keyword_form_still_sets_the_cookie(tmp_path):
    app = make_app(tmp_path, {"c/route.py": """
        from minirouter import Response, cookies

        def GET():
            cookies().set("name", "lee", http_only=True, max_age=60)
            return Response("set")
        """})
    assert client(app).get("/c").headers["set-cookie"].startswith("name=lee; Path=/; Expires=")


def test_await_on_a_plain_value_is_logged_with_what_to_drop(tmp_path, caplog):
    # Next.js 15 writes `const { slug } = await params`; here params is a plain dict.
    app = make_app(tmp_path, {"[slug]/route.py": """
        async def GET(request, context):
            slug = (await context.params)["slug"]
            return {"slug": slug}
        """})
    with caplog.at_level(logging.ERROR, logger="minirouter"):
        assert client(app).get("/a").status == 500
    assert "GET handler raised (context.params and request.json(), text(), form() and body() are plain " \
           "values here: drop the await)" in caplog.text


def test_nextjs_segment_config_block_with_revalidate_false_warns_that_it_caches(tmp_path, caplog):
    block = ('dynamic = "auto"\ndynamicParams = True\nrevalidate = False\nfetchCache = "auto"\n'
             'runtime = "nodejs"\npreferredRegion = "auto"\n')
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        app = App(str(make_app_dir(tmp_path, {
            "copied/route.py": block + "import itertools\nruns = itertools.count(1)\n"
                                       "def GET():\n    return {'n': next(runs)}\n",
            "meant/route.py": "revalidate = False\ndef GET():\n    return {}\n",
            "items/[id]/route.py": "def generateStaticParams():\n    return [{'id': '1'}]\n"
                                   "def GET(request, context):\n    return context.params\n",
        })))
    said = [r.getMessage() for r in caplog.records if r.name == "minirouter"]
    assert any("copied/route.py sets revalidate = False: its GET answers are kept until restart" in m
               for m in said), said
    assert not any("meant/route.py" in m for m in said), said
    assert any("items/[id]/route.py defines generateStaticParams, which minirouter does not call" in m
               for m in said), said
    assert client(app).get("/copied").json() == client(app).get("/copied").json() == {"n": 1}
    assert client(app).get("/items/2").json() == {"id": "2"}


def test_the_hints_leave_a_type_checker_its_attribute_errors(tmp_path, monkeypatch):
    # __getattr__ is defined for the interpreter only: mypy still flags a misspelt name.
    mypy = pytest.importorskip("mypy.api")
    (tmp_path / "typo.py").write_text(
        "from minirouter import Request, cookies\n"
        "def GET(request: Request) -> None:\n"
        "    request.serach_params.get('q')\n"
        "    request.headers.get_al('x')\n"
        "    cookies().sett('a', 'b')\n"
        "    request.search_params.getAll('q')\n"
    )
    from helpers import ROOT

    monkeypatch.setenv("MYPYPATH", str(ROOT))
    out, _, status = mypy.run([str(tmp_path / "typo.py"), "--strict", "--no-incremental"])
    assert status == 1
    assert out.count("[attr-defined]") == 4, out


def test_a_segment_named_context_gets_no_warning_for_def_get_request_context(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        make_app(tmp_path, {"ctx/[context]/route.py": "def GET(request, context):\n    return {}\n"})
    assert not [r for r in caplog.records if r.name == "minirouter"]


@pytest.mark.parametrize("name, hint", [
    ("args", "request.search_params"),
    ("files", 'request.form(): request.form().get("file") is the upload'),
    ("remote_addr", 'request.environ["REMOTE_ADDR"]'),
    ("get_json", "request.json()"),
    ("view_args", 'the handler\'s second argument: context.params["id"]'),
])
def test_a_flask_name_missing_on_the_request_says_what_to_write_instead(name, hint):
    from minirouter import Request

    request = Request({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, "/", "/")
    with pytest.raises(AttributeError) as info:
        getattr(request, name)
    assert str(info.value) == f"'Request' object has no attribute {name!r}: that is Flask's name; write {hint}"
    assert not hasattr(request, name)


@pytest.mark.parametrize("read, hint", [
    (lambda: Response("x").set_cookie("a", "b"), 'response.cookies.set(name, value, http_only=True, same_site="lax")'),
    (lambda: Response("x").status_code, "response.status"),
    (lambda: HTTPError(409).code, "error.status"),
    (lambda: HTTPError(409).description, "error.message"),
    (lambda: SearchParams([("a", "1")]).getlist("a"), "get_all(name)"),
    (lambda: TestResponse("200 OK", [], b"{}").get_json(), "response.json()"),
    (lambda: TestResponse("200 OK", [], b"{}").data, "response.content"),
])
def test_a_flask_name_on_a_response_an_error_or_the_query_says_what_to_write(read, hint):
    with pytest.raises(AttributeError) as info:
        read()
    assert str(info.value).endswith(f": that is Flask's name; write {hint}")


def test_flasks_cookie_option_spellings_say_the_ones_to_write():
    from minirouter import CookieJar

    with pytest.raises(TypeError, match="write http_only=, not Flask's httponly="):
        CookieJar({}).set("a", "b", httponly=True)
    with pytest.raises(TypeError, match="write same_site=, not Flask's samesite="):
        CookieJar({}).set("a", "b", samesite="Lax")
