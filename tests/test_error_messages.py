"""The errors the framework writes: the status RFC 9110 asks for, a HEAD's
Content-Length equal to GET's, a 405's Allow, messages that name what is wrong
where it was wrong, and client input quoted in them bounded in length."""
from __future__ import annotations

import pytest

from helpers import call, client, make_app, make_environ
from minirouter import HTTPError, Response

ROUTES = {
    "echo/route.py": "def POST(request):\n    return request.json()\n",
    "readonly/route.py": (
        "from minirouter import HTTPError, Response\n"
        "def GET(request):\n"
        "    if request.search_params.get('how') == 'return':\n"
        "        return Response('read-only today', 405)\n"
        "    if request.search_params.get('how') == 'own':\n"
        "        return Response('no', 405, {'Allow': 'GET'})\n"
        "    raise HTTPError(405, 'read-only today')\n"
        "def POST(request):\n"
        "    if request.search_params.get('how') == 'return':\n"
        "        return Response('not now', 405)\n"
        "    raise HTTPError(405, 'not now')\n"
    ),
    "files/[name]/route.py": "def GET(request, context):\n    return {'name': context.params['name']}\n",
    "signup/route.py": "def POST(request):\n    return request.form().to_dict()\n",
}


@pytest.fixture
def web(tmp_path):
    return client(make_app(tmp_path, ROUTES))


def test_a_heads_405_has_the_content_length_of_gets(web) -> None:
    # RFC 9110 8.6: a HEAD's Content-Length, if sent, is the one GET's answer would have.
    got, head = web.get("/echo"), web.head("/echo")
    assert got.status == head.status == 405 and head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]
    assert head.headers["allow"] == got.headers["allow"] == "OPTIONS, POST"


def test_a_heads_400_for_the_target_asterisk_has_the_content_length_of_gets(tmp_path) -> None:
    app = make_app(tmp_path, ROUTES)
    got = call(app, make_environ("GET", "*", request_uri="*"), validate=False)
    head = call(app, make_environ("HEAD", "*", request_uri="*"), validate=False)
    assert got.status == head.status == 400
    assert head.header("content-length") == got.header("content-length") and head.body == b""


@pytest.mark.parametrize("how", ["raise", "return"])
def test_a_405_the_handler_makes_lists_the_routes_methods(web, how: str) -> None:
    # RFC 9110 15.5.6: a 405 MUST carry Allow; the route knows its methods.
    # Less the method refused: GET's refusal is HEAD's too, and a POST's leaves GET and HEAD.
    answer = web.get(f"/readonly?how={how}")
    assert answer.status == 405 and answer.headers["allow"] == "OPTIONS, POST"
    assert web.post(f"/readonly?how={how}").headers["allow"] == "GET, HEAD, OPTIONS"
    assert web.get("/readonly?how=own").headers.get_all("allow") == ["GET"]  # its own is kept


def test_a_405_the_middleware_makes_lists_what_the_url_answers(tmp_path) -> None:
    # The middleware runs before the route is looked up: its 405 gets the Allow of
    # what the path leads to, less the method it refused.
    middleware = (
        "from minirouter import Response\n"
        "def middleware(request):\n"
        "    if request.method in ('DELETE', 'HEAD') or request.path == '/nowhere':\n"
        "        return Response('frozen', 405)\n"
    )
    files = {**ROUTES, "middleware.py": middleware, "notes/route.py": "def GET(): ...\ndef DELETE(): ...\n",
             "about/page.html": "<p>about</p>"}
    web = client(make_app(tmp_path, files))
    assert web.delete("/notes").headers.get_all("allow") == ["GET, HEAD, OPTIONS"]
    assert web.delete("/about").headers["allow"] == "GET, HEAD, OPTIONS"
    assert web.head("/notes").headers["allow"] == "DELETE, OPTIONS"  # HEAD's refusal is GET's too
    assert web.get("/nowhere").headers.get_all("allow") == [""]  # nothing there: no method (RFC 9110 10.2.1)


def test_a_body_of_the_wrong_type_is_named_in_the_415_and_a_charset_in_upper_case(web) -> None:
    form = web.post("/signup", data=b'{"a": 1}', headers={"Content-Type": "application/json"})
    assert form.status == 415 and form.json()["error"].endswith("(got application/json)")
    assert web.post("/signup", data=b"a=1", headers={"Content-Type": ""}).json()["error"].endswith("(got none)")
    as_json = web.post("/echo", data=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert as_json.json()["error"].endswith("(got application/x-www-form-urlencoded)")
    not_utf8 = web.post("/echo", data=b'"\xff"', headers={"Content-Type": "application/json"})
    assert not_utf8.status == 400 and not_utf8.json() == {"error": "request body is not valid UTF-8"}


def test_a_405_from_a_head_handler_of_its_own_keeps_get_in_allow(tmp_path) -> None:
    # Its GET is still served: only the refused HEAD leaves the list.
    app = make_app(tmp_path, {"r/route.py": "from minirouter import Response\n"
                                            "def GET():\n    return {}\n"
                                            "def HEAD():\n    return Response(None, 405)\n"})
    assert client(app).head("/r").headers["allow"] == "GET, OPTIONS"


def test_a_404_names_the_path_as_the_client_sent_it_not_another_url(web) -> None:
    # /files%2Fx is one segment: "/files/x" in the message would name a URL that is served.
    answer = web.get("/files%2Fx")
    assert answer.status == 404 and answer.json() == {"error": "no route matches /files%2Fx"}


def test_client_input_quoted_in_an_error_is_bounded(web) -> None:
    assert len(web.get("/" + "a" * 5000).json()["error"]) < 250
    wrong_type = web.post("/echo", data=b"{}", headers={"Content-Type": "x/" + "y" * 3000})
    assert wrong_type.status == 415 and len(wrong_type.json()["error"]) < 200
    with pytest.warns(Warning, match="Unknown REQUEST_METHOD"):  # the test client's validator says so too
        unknown = web.request("X" * 300, "/echo")
    assert unknown.status == 501 and len(unknown.json()["error"]) < 80


def test_an_invalid_host_names_the_header_or_target_it_came_from(tmp_path) -> None:
    app = make_app(tmp_path, {"u/route.py": "def GET(request):\n    return {'url': request.url}\n"},
                   trust_forwarded=True)
    forwarded = call(app, make_environ("GET", "/u", headers={"X-Forwarded-Host": "ev il"}))
    assert forwarded.status == 400 and forwarded.json() == {"error": "invalid X-Forwarded-Host header"}
    guarded = make_app(tmp_path / "g", {"u/route.py": "def GET():\n    return {}\n"}, allowed_hosts=["example.com"])
    target = call(guarded, make_environ("GET", "/u", request_uri="http://ev%il/u", host="example.com"))
    assert target.status == 400 and target.json() == {"error": "invalid host in the request target"}
    bad_host = call(guarded, make_environ("GET", "/u", host="ev il"))
    assert bad_host.json() == {"error": "invalid Host header"}


@pytest.mark.parametrize("target", ["http://:80/u", "http://@/u", "http://user@/u", "http://h:99999/u"])
def test_an_absolute_form_target_without_a_valid_host_is_refused_even_where_no_url_is_read(tmp_path, target) -> None:
    # RFC 9110 4.2.1: an http URI with an empty host is to be rejected, whatever the route reads.
    app = make_app(tmp_path, {"u/route.py": "def GET():\n    return {}\n"})
    answer = call(app, make_environ("GET", "/u", request_uri=target))
    assert answer.status == 400 and answer.json() == {"error": "invalid host in the request target"}


@pytest.mark.parametrize("host, hint", [
    ("*", "to serve any host, leave allowed_hosts out (None)"),
    ("*.example.com", "for a name and its subdomains write '.example.com'"),
    ("https://example.com", "give names without scheme, port or '*'"),
])
def test_allowed_hosts_says_what_a_host_name_is(tmp_path, host: str, hint: str) -> None:
    with pytest.raises(ValueError, match="which is no host name") as info:
        make_app(tmp_path, {"u/route.py": "def GET():\n    return {}\n"}, allowed_hosts=[host])
    assert hint in str(info.value)


@pytest.mark.parametrize("headers, message", [
    ("X-A: 1", "headers take a dict, a Headers or a list of (name, value) pairs, not str"),
    (("X-A", "1"), "headers take (name, value) pairs, not 'X-A'"),
    ([("X-A", "1", "2")], "headers take (name, value) pairs, not ('X-A', '1', '2')"),
    (7, "not int"),
])
def test_headers_of_the_wrong_shape_say_what_they_take(headers, message: str) -> None:
    with pytest.raises(TypeError) as info:
        Response("x", headers=headers)
    assert message in str(info.value)
    with pytest.raises(TypeError):
        HTTPError(400, "x", headers)


def test_the_await_hint_knows_both_of_pythons_messages() -> None:
    from minirouter import _await_hint

    for message in ("object dict can't be used in 'await' expression", "'dict' object can't be awaited"):
        try:
            raise TypeError(message)
        except TypeError:
            assert "drop the await" in _await_hint()
    try:
        raise TypeError("something else")
    except TypeError:
        assert _await_hint() == ""
