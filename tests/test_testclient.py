"""TestClient: works with any WSGI callable, builds PEP 3333 environs (checked
by wsgiref's validator), sends json/data/headers/cookies/files, and exposes
status, headers, text, content, json() and cookies (design.md and BRIEF)."""
from __future__ import annotations

import io
import json
import tempfile
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl

import pytest

from helpers import client, make_app
from minirouter import TestClient


def echo_app(environ, start_response):
    """A plain WSGI app that reports what it received."""
    length = environ.get("CONTENT_LENGTH") or "0"
    body = environ["wsgi.input"].read(int(length)) if int(length) else b""
    data = {
        "method": environ["REQUEST_METHOD"],
        "path_info": environ["PATH_INFO"],
        "query": environ.get("QUERY_STRING", ""),
        "content_type": environ.get("CONTENT_TYPE", ""),
        "content_length": environ.get("CONTENT_LENGTH", ""),
        "cookie": environ.get("HTTP_COOKIE"),
        "x_a": environ.get("HTTP_X_A"),
        "host": environ.get("HTTP_HOST"),
        "body": body.decode("latin-1"),
    }
    out = json.dumps(data).encode()
    start_response("200 OK", [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(out))),
        ("X-Multi", "1"),
        ("x-multi", "2"),
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=two; Path=/; HttpOnly"),
    ])
    return [out]


@pytest.fixture
def c():
    return client(echo_app)


def test_get_with_query_and_non_ascii_path(c):
    r = c.get("/a/café?q=é&x=1")
    assert r.status == 200
    data = r.json()
    assert data["method"] == "GET"
    assert data["path_info"] == "/a/café".encode("utf-8").decode("latin-1")
    assert parse_qsl(data["query"], keep_blank_values=True, encoding="utf-8") == [("q", "é"), ("x", "1")]
    assert data["host"]


def test_result_fields(c):
    r = c.get("/")
    assert isinstance(r.status, int) and r.status == 200
    assert isinstance(r.content, bytes)
    assert isinstance(r.text, str) and r.text == r.content.decode("utf-8")
    assert r.headers.get("content-type") == "application/json"
    assert r.headers.get("CONTENT-TYPE") == "application/json"
    assert r.headers.get("x-multi") == "1, 2"
    assert r.headers.get_all("X-MULTI") == ["1", "2"]
    assert r.headers.get("x-missing") is None
    assert r.cookies == {"a": "1", "b": "two"}


def test_json_keyword(c):
    r = c.post("/j", json={"a": [1, "é"]})
    data = r.json()
    assert data["method"] == "POST"
    assert data["content_type"].split(";")[0].strip() == "application/json"
    assert json.loads(data["body"].encode("latin-1").decode("utf-8")) == {"a": [1, "é"]}
    assert data["content_length"] == str(len(data["body"].encode("latin-1")))


def test_data_dict_is_urlencoded_form(c):
    data = c.post("/f", data={"name": "Zoë", "q": "a&b"}).json()
    assert data["content_type"].split(";")[0].strip() == "application/x-www-form-urlencoded"
    assert parse_qsl(data["body"].encode("latin-1").decode("ascii"), encoding="utf-8") == [("name", "Zoë"), ("q", "a&b")]


def test_data_and_params_send_a_list_as_a_repeated_field(c):
    data = c.post("/f?x=1", data={"tag": ["a", "b"], "n": 2}, params={"tag": ["c", "d"], "q": "é"}).json()
    assert data["body"] == "tag=a&tag=b&n=2"
    assert data["query"] == "x=1&tag=c&tag=d&q=%C3%A9"


def test_none_is_no_field_and_no_header_as_in_requests(c):
    # params={"page": page} with no page, headers={"Authorization": token} with none.
    data = c.post("/f", data={"a": "1", "b": None}, params={"q": "x", "page": None},
                  headers={"X-A": None}).json()
    assert (data["body"], data["query"], data["x_a"]) == ("a=1", "q=x", None)
    assert c.get("/h", headers={"X-A": b"bytes"}).json()["x_a"] == "bytes"
    with pytest.raises(TypeError, match="a header takes a str or bytes"):
        c.get("/h", headers={"X-A": 7})


def test_json_none_sends_no_json_and_json_beside_data_is_refused(c):
    data = c.post("/f", json=None, data={"a": "1"}).json()  # a helper passing json=None along
    assert data["body"] == "a=1" and data["content_type"].startswith("application/x-www-form-urlencoded")
    with pytest.raises(TypeError, match="not both"):
        c.post("/f", json={"a": 1}, data={"b": "2"})


def test_a_client_is_a_context_manager_and_its_requests_come_from_loopback(c):
    with c as client:
        assert client is c
        assert client.get("/h").status == 200
    assert c.app is not None  # nothing was closed


def test_a_base_url_needs_a_scheme():
    with pytest.raises(ValueError, match="base_url must name a scheme"):
        TestClient(lambda environ, start_response: [], base_url="localhost")


def test_an_absolute_url_is_the_target_and_its_path_is_path_info():
    seen = {}

    def app(environ, start_response):
        seen.update(path=environ["PATH_INFO"], target=environ["REQUEST_URI"], remote=environ["REMOTE_ADDR"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    TestClient(app).get("http://other.example/a%2Fb/c?x=1")
    assert seen == {"path": "/a/b/c", "target": "http://other.example/a%2Fb/c?x=1", "remote": "127.0.0.1"}
    TestClient(app).get("/proxy/https://example.com/page")  # a path that holds a URL is a path
    assert (seen["path"], seen["target"]) == ("/proxy/https://example.com/page", "/proxy/https://example.com/page")


@pytest.mark.parametrize("value", [(io.BytesIO(b"abc"), "a.txt"), io.BytesIO(b"abc"), {"a": "b"}])
def test_a_data_value_that_is_no_field_is_refused_not_sent_as_its_repr(c, value):
    # Flask's client takes a (file, name) tuple in data=; here files go in files=.
    with pytest.raises(TypeError, match="send files with files="):
        c.post("/f", data={"file": value})
    with pytest.raises(TypeError, match="params="):
        c.get("/f", params={"file": value})


def test_data_beside_files_is_checked_the_same_way(c):
    with pytest.raises(TypeError, match="send files with files="):
        c.post("/f", data={"note": io.BytesIO(b"x")}, files={"file": b"abc"})
    with pytest.raises(TypeError, match="data= takes a dict of fields here, not bytes"):
        c.post("/f", data=b"raw", files={"file": b"abc"})


def test_a_file_as_data_is_refused_and_pointed_to_files(c, tmp_path):
    upload = tmp_path / "up.txt"
    upload.write_bytes(b"abc")
    with upload.open("rb") as handle, pytest.raises(TypeError, match="send files with files="):
        c.post("/f", data=handle)
    with pytest.raises(TypeError, match="not BytesIO"):
        c.post("/f", data=io.BytesIO(b"abc"))


def test_headers_arrive_as_waitress_and_gunicorn_pass_them(c):
    # Repeated lines joined with ", " (Cookie lines too), the spaces around a value
    # gone (RFC 9110 5.5), and a name with "_" dropped, so it cannot pass for one with "-".
    data = c.get("/c", headers=[("Cookie", "a=1"), ("Cookie", "b=2"), ("X-A", "  padded\t"),
                                ("X_A", "spoofed")], cookies={"c": "3"}).json()
    assert data["cookie"] == "a=1, b=2; c=3"
    assert data["x_a"] == "padded"


def test_data_bytes_and_str(c):
    assert c.put("/b", data=b"\x00\xff").json()["body"] == "\x00\xff"
    data = c.patch("/s", data="héllo").json()
    assert data["method"] == "PATCH"
    assert data["body"].encode("latin-1") == "héllo".encode("utf-8")


def test_headers_and_cookies_keywords(c):
    data = c.delete("/d", headers={"X-A": "hello"}, cookies={"sid": "abc", "t": "1"}).json()
    assert data["method"] == "DELETE"
    assert data["x_a"] == "hello"
    pairs = dict(p.strip().split("=", 1) for p in data["cookie"].split(";"))
    assert pairs == {"sid": "abc", "t": "1"}


def test_content_type_header_goes_to_cgi_key(c):
    data = c.post("/x", data=b"{}", headers={"Content-Type": "application/json"}).json()
    assert data["content_type"] == "application/json"


def test_head_options_and_request(c):
    h = c.head("/h")
    assert h.status == 200
    assert c.options("/o").json()["method"] == "OPTIONS"
    with pytest.warns(Warning, match="PROPFIND"):  # wsgiref's validator knows only RFC 9110's methods
        assert c.request("PROPFIND", "/p").json()["method"] == "PROPFIND"


def test_files_keyword_sends_multipart(c):
    data = c.post("/up", files={"doc": ("name.txt", b"file bytes", "text/plain")}, data={"title": "T"}).json()
    ctype = data["content_type"]
    assert ctype.startswith("multipart/form-data; boundary=")
    raw = data["body"].encode("latin-1")
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
    parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
    assert parts["doc"].get_filename() == "name.txt"
    assert parts["doc"].get_content_type() == "text/plain"
    assert parts["doc"].get_payload(decode=True) == b"file bytes"
    assert parts["title"].get_payload(decode=True) == b"T"


def test_a_fragment_is_not_sent(c):
    data = c.get("/a/b?q=1#top").json()
    assert (data["path_info"], data["query"]) == ("/a/b", "q=1")


def test_files_keyword_escapes_quotes_and_line_breaks_as_browsers_do(tmp_path):
    app = make_app(tmp_path, {"up/route.py": (
        "def POST(request):\n"
        "    name, upload = request.form().items()[0]\n"
        "    return {'name': name, 'filename': upload.filename, 'content': upload.read().decode()}\n"
    )})
    r = client(app).post("/up", files={'the "doc"': ('say "hi"\r\n.txt', b"hello")})
    assert r.status == 200, r.text
    # The HTML standard's encoding: sent as %22, %0D, %0A, as a browser sends them, and
    # read back as the characters they stand for, as Next.js's formData() does.
    assert r.json() == {"name": 'the "doc"', "filename": 'say "hi"\r\n.txt', "content": "hello"}
    # And a backslash is only a backslash, also just before the closing quote.
    for name in ("dir\\", "a\\\\b.txt", "C:\\x\\f.txt"):
        r = client(app).post("/up", files={name: (name, b"x")})
        assert r.json() == {"name": name, "filename": name, "content": "x"}


def test_files_keyword_sends_other_fields_as_a_urlencoded_form_would(tmp_path):
    app = make_app(tmp_path, {"up/route.py": (
        "def POST(request):\n"
        "    form = request.form()\n"
        "    return {'n': form.get('n'), 't': form.get_all('t'), 'raw': form.get('raw')}\n"
    )})
    r = client(app).post("/up", data={"n": 5, "t": ["a", "b"], "raw": b"bytes"}, files={"f": ("a.txt", b"x")})
    assert r.json() == {"n": "5", "t": ["a", "b"], "raw": "bytes"}


FORM_ECHO = (
    "def POST(request):\n"
    "    out = {}\n"
    "    for name, value in request.form().items():\n"
    "        if isinstance(value, str):\n"
    "            out[name] = ['field', value]\n"
    "        else:\n"
    "            out[name] = [value.filename, value.read().decode(), value.content_type]\n"
    "    return out\n"
)


def test_files_keyword_takes_what_requests_takes(tmp_path):
    app = make_app(tmp_path, {"up/route.py": FORM_ECHO})
    named = tmp_path / "notes.txt"
    named.write_bytes(b"from disk")
    unnamed = tempfile.TemporaryFile()  # its .name is a file descriptor, not a name
    unnamed.write(b"no name")
    unnamed.seek(0)
    with open(named, "rb") as on_disk, unnamed:
        r = client(app).post("/up", files=[
            ("disk", on_disk), ("temp", unnamed), ("raw", b"bare bytes"), ("text", "bare str"),
            ("plain", (None, "a plain field")), ("typed", ("t.csv", "a,b", "text/csv")),
            ("left-out", ("x.txt", None)), ("more", ("m.bin", b"m", "application/x-m", {"X-Part": "1"})),
        ])
    assert r.status == 200, r.text
    untyped = "text/plain"  # sent without a type, as requests sends it; RFC 7578 4.4's default
    assert r.json() == {
        "disk": ["notes.txt", "from disk", untyped],  # an open file: its own name
        "temp": ["temp", "no name", untyped],  # no usable name: the field's, as requests does
        "raw": ["raw", "bare bytes", untyped],
        "text": ["text", "bare str", untyped],
        "plain": ["field", "a plain field"],  # requests' (None, value): a field, not a file
        "typed": ["t.csv", "a,b", "text/csv"],
        "more": ["m.bin", "m", "application/x-m"],  # None content ("left-out") sends no part
    }


def test_files_keyword_part_headers_as_requests_writes_them(tmp_path):
    app = make_app(tmp_path, {"echo/route.py": (
        "def POST(request):\n"
        "    return {'type': request.headers.get('content-type'), 'body': request.body().decode()}\n"
    )})
    r = client(app).post("/echo", files=[
        ("more", ("m.bin", b"m", "application/x-m", {"X-Part": "1", "Content-Type": "text/html"})),
        ("none", ("n.txt", b"n", "text/csv", None)),
        ("number", ("five.txt", 5)),
    ]).json()
    boundary = r["type"].split("boundary=")[1]
    parts = r["body"].split(f"--{boundary}")[1:-1]
    assert parts[0] == (
        '\r\nContent-Disposition: form-data; name="more"; filename="m.bin"\r\n'
        "Content-Type: application/x-m\r\nX-Part: 1\r\n\r\nm\r\n"  # the third item's type wins
    )
    assert "Content-Type: text/csv\r\n\r\nn\r\n" in parts[1]
    assert parts[2].endswith("\r\n\r\n5\r\n")  # a number as its digits


def test_redirects_not_followed_and_cookies_not_kept(tmp_path):
    app = make_app(tmp_path, {
        "go/route.py": """
            from minirouter import Response

            def GET():
                resp = Response.redirect('/target')
                resp.cookies.set('sid', 'abc')
                return resp
            """,
        "target/route.py": """
            def GET(request):
                return {'sid': request.cookies.get('sid')}
            """,
    })
    c = client(app)
    r = c.get("/go")
    assert r.status == 307
    assert r.headers.get("location") == "/target"
    assert r.cookies == {"sid": "abc"}
    assert c.get("/target").json() == {"sid": None}


def test_keep_cookies_carries_a_session_as_a_browser_would(tmp_path):
    app = make_app(tmp_path, {
        "login/route.py": """
            from minirouter import cookies

            def POST():
                cookies().set('sid', 'abc def', http_only=True)
                cookies().set('theme', 'dark')
                return {}
            """,
        "me/route.py": """
            def GET(request):
                return dict(request.cookies)
            """,
        "logout/route.py": """
            from minirouter import cookies

            def POST():
                cookies().delete('sid')
                return {}
            """,
    })
    c = TestClient(app, keep_cookies=True)
    c.post("/login")
    assert c.cookies == {"sid": "abc def", "theme": "dark"}
    assert c.get("/me").json() == {"sid": "abc def", "theme": "dark"}  # a response setting nothing keeps them
    assert c.get("/me", cookies={"theme": "light"}).json() == {"sid": "abc def", "theme": "light"}  # given wins
    assert c.get("/me").json()["theme"] == "dark"  # for that request only
    c.post("/logout")
    assert c.get("/me").json() == {"theme": "dark"}  # deleted, as a browser drops it
    assert TestClient(app).post("/login").cookies and TestClient(app).get("/me").json() == {}  # off by default


def test_app_using_write_callable():
    def app(environ, start_response):
        write = start_response("201 Created", [("Content-Type", "text/plain")])
        write(b"hello ")
        return [b"world"]

    r = client(app).get("/")
    assert r.status == 201
    assert r.text == "hello world"


def test_iterable_is_closed():
    closed = []

    class Body:
        def __iter__(self):
            yield b"a"
            yield b"b"

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body()

    r = TestClient(app).get("/")
    assert r.content == b"ab"
    assert closed == [True]


def test_error_status_is_not_an_exception():
    def app(environ, start_response):
        start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return [b"down"]

    r = client(app).get("/")
    assert r.status == 503
    assert r.text == "down"


@pytest.mark.parametrize("content_type, text", [
    ("text/plain; charset=iso-8859-1", "café"),
    ('text/plain; charset="ISO-8859-1"', "café"),
    ("text/plain", "caf\ufffd"),  # UTF-8 when it names no charset
    ("text/plain; charset=nonesuch", "caf\ufffd"),  # or one Python does not know
])
def test_text_decodes_with_the_charset_the_response_names(content_type, text):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", content_type)])
        return ["café".encode("latin-1")]

    assert TestClient(app).get("/").text == text


def test_a_path_in_base_url_mounts_the_app_there(tmp_path):
    # As a dispatcher mounts it (SCRIPT_NAME); the host alone stays the Host header.
    app = make_app(tmp_path, {"info/route.py": (
        "def GET(request):\n"
        "    return {'url': request.url, 'path': request.path}\n"
    )})
    mounted = TestClient(app, base_url="https://example.com:8443/my%20api/")
    assert mounted.get("/info?q=1").json() == {"url": "https://example.com:8443/my%20api/info?q=1", "path": "/info"}
    assert mounted.get("/info/").headers["location"] == "/my%20api/info"
    assert TestClient(app).get("/info").json() == {"url": "http://testserver/info", "path": "/info"}


def test_an_ipv6_base_url_is_split_after_its_brackets():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{environ['SERVER_NAME']}|{environ['SERVER_PORT']}|{environ['HTTP_HOST']}".encode()]

    assert TestClient(app, base_url="http://[::1]:8000").get("/").text == "[::1]|8000|[::1]:8000"
    assert TestClient(app, base_url="http://[::1]").get("/").text == "[::1]|80|[::1]"
    assert TestClient(app, base_url="http://ex.com:81/api").get("/").text == "ex.com|81|ex.com:81"
