"""Response: defaults, headers, cookies and their wire format (design.md,
"The public API"; RFC 6265 for Set-Cookie; RFC 9110 for header values)."""
from __future__ import annotations

import io
import time
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

import pytest

from helpers import HookApp, call, cookie_pairs, make_environ, media_type
from minirouter import Response


@pytest.fixture
def hook(tmp_path):
    return HookApp(tmp_path)


def serve(hook, response_factory, method="GET"):
    hook.set(lambda request, context: response_factory())
    return hook.client.request(method, "/hook")


# --- defaults -------------------------------------------------------------------

def test_str_body_is_utf8_text(hook):
    r = serve(hook, lambda: Response("héllo"))
    assert r.status == 200
    assert r.headers.get("content-type") == "text/plain; charset=utf-8"
    assert r.content == "héllo".encode("utf-8")


def test_bytes_body_is_octet_stream(hook):
    r = serve(hook, lambda: Response(b"\x00\x01\xff"))
    assert r.headers.get("content-type") == "application/octet-stream"
    assert r.content == b"\x00\x01\xff"


def test_iterable_body(hook):
    def gen():
        yield b"ab"
        yield b""
        yield b"cd"

    assert serve(hook, lambda: Response(gen())).content == b"abcd"
    assert serve(hook, lambda: Response([b"x", b"y"])).content == b"xy"


def test_none_body_is_empty(hook):
    r = serve(hook, lambda: Response(None, status=200))
    assert r.status == 200
    assert r.content == b""


def test_status_and_headers_arguments(hook):
    r = serve(hook, lambda: Response("<b>x</b>", status=201, headers={"Content-Type": "text/html; charset=utf-8", "X-A": "1"}))
    assert r.status == 201
    assert r.headers.get("content-type") == "text/html; charset=utf-8"
    assert r.headers.get_all("content-type") == ["text/html; charset=utf-8"]
    assert r.headers.get("x-a") == "1"


def test_json_response(hook):
    r = serve(hook, lambda: Response.json({"a": ["é", 1, None]}, status=202, headers={"X-B": "2"}))
    assert r.status == 202
    assert media_type(r.headers.get("content-type")) == "application/json"
    assert r.json() == {"a": ["é", 1, None]}
    assert r.headers.get("x-b") == "2"
    assert serve(hook, lambda: Response.json([1, 2])).json() == [1, 2]


@pytest.mark.parametrize("url", ["/x", "https://example.com/a?b=1#frag", "../rel", "other?x=y"])
def test_redirect_defaults(hook, url):
    r = serve(hook, lambda: Response.redirect(url))
    assert r.status == 307
    assert r.headers.get("location") == url
    assert r.content == b""


@pytest.mark.parametrize("url, location", [
    ("/100%", "/100%25"),  # a % that starts no escape is a literal one
    ("/%ZZ?q=5%", "/%25ZZ?q=5%25"),
    ("/caf%C3%A9?q=a%20b", "/caf%C3%A9?q=a%20b"),  # escapes already there stay
    ("/\\evil.example", "/%5Cevil.example"),  # a browser would read "/\\" as "//"
    ('/a"b<c>{d}|e^`', "/a%22b%3Cc%3E%7Bd%7D%7Ce%5E%60"),
])
def test_redirect_location_is_a_valid_url(hook, url, location):
    assert serve(hook, lambda: Response.redirect(url)).headers.get("location") == location


def test_redirect_with_status(hook):
    r = serve(hook, lambda: Response.redirect("/y", 303))
    assert (r.status, r.headers.get("location"), r.content) == (303, "/y", b"")
    r = serve(hook, lambda: Response.redirect("/y", status=308))
    assert r.status == 308


def test_head_response_has_no_body(hook):
    r = serve(hook, lambda: Response("a body"), method="HEAD")
    assert r.status == 200
    assert r.content == b""


# --- headers object ---------------------------------------------------------------

def test_headers_case_insensitive_operations():
    resp = Response("x")
    h = resp.headers
    h.set("X-Thing", "1")
    assert h.get("x-thing") == "1"
    assert h.has("X-THING")
    assert "x-Thing" in h
    h.append("x-thing", "2")
    assert h.get("X-Thing") == "1, 2"
    assert h.get_all("X-THING") == ["1", "2"]
    h.set("x-thing", "3")
    assert h.get_all("x-thing") == ["3"]
    h["X-Other"] = "o"
    assert h["x-other"] == "o"
    del h["X-OTHER"]
    assert not h.has("x-other")
    h.delete("X-Thing")
    assert h.get("x-thing") is None
    assert "x-thing" not in h


def test_constructor_headers_case_insensitive():
    resp = Response("x", headers={"X-A": "1"})
    assert resp.headers.get("x-a") == "1"


def test_several_set_cookie_headers_on_the_wire(hook):
    def build():
        resp = Response("x")
        resp.headers.append("Set-Cookie", "a=1; Path=/")
        resp.headers.append("Set-Cookie", "b=2; Path=/")
        return resp

    r = serve(hook, build)
    assert r.headers.get_all("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert r.cookies == {"a": "1", "b": "2"}


@pytest.mark.parametrize("value", ["a\r\nb", "a\nb", "a\rb", "a\x00b", "\r\n"])
def test_header_value_with_cr_lf_nul_refused(value):
    resp = Response("x")
    with pytest.raises(ValueError):
        resp.headers.set("X-A", value)
    with pytest.raises(ValueError):
        resp.headers.append("X-A", value)
    with pytest.raises(ValueError):
        resp.headers["X-A"] = value
    with pytest.raises(ValueError):
        Response("x", headers={"X-A": value})
    assert resp.headers.get("x-a") is None


def test_spaces_around_a_header_value_are_not_part_of_it(hook):
    # As fetch's Headers normalize a value (and RFC 9110 5.5 reads one).
    def build():
        resp = Response("x", headers={"X-A": "  padded\t"})
        resp.headers.append("X-B", " b ")
        resp.headers["X-C"] = "\tc"
        return resp

    r = serve(hook, build)
    assert (r.headers.get("x-a"), r.headers.get("x-b"), r.headers.get("x-c")) == ("padded", "b", "c")
    assert Response("x", headers={"X-A": " a b "}).headers.get("x-a") == "a b"


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "+5", "0x10", "\u00b2", "1 2", ""])
def test_a_content_length_that_is_no_number_of_bytes_is_refused_when_set(value):
    # Sent beside a stream it would reach the server, which answers its own 500
    # or cuts the body to a wrong length.
    with pytest.raises(ValueError, match="Content-Length must be a number of bytes"):
        Response(iter([b"x"]), headers={"Content-Length": value})
    with pytest.raises(ValueError, match="Content-Length must be a number of bytes"):
        Response("x").headers.set("content-length", value)


def test_a_stream_keeps_a_content_length_in_digits(hook):
    r = serve(hook, lambda: Response(iter([b"abc", b"de"]), headers={"Content-Length": " 5 "}))
    assert (r.status, r.headers.get("content-length"), r.content) == (200, "5", b"abcde")


@pytest.mark.parametrize("name", ["X-A\r\nB", "X\nA", "X\x00A"])
def test_header_name_with_cr_lf_nul_refused(name):
    with pytest.raises(ValueError):
        Response("x").headers.set(name, "v")


@pytest.mark.parametrize("url", ["/x\r\nSet-Cookie: a=1", "/x\n", "/x\x00", "/a\x01b", "/a\x7fb"])
def test_redirect_location_with_control_characters_refused(url):
    with pytest.raises(ValueError):
        Response.redirect(url)


def test_a_dict_body_is_refused_not_streamed_as_its_keys():
    with pytest.raises(TypeError, match="Response.json"):
        Response({"a": 1})
    assert Response([b"a", b"b"])._stream is not None  # a list of pieces is still a stream


# --- cookies on a response ------------------------------------------------------------

def set_cookie_lines(hook, configure):
    def build():
        resp = Response("x")
        configure(resp)
        return resp

    return serve(hook, build).headers.get_all("set-cookie")


def test_cookie_default_path(hook):
    assert set_cookie_lines(hook, lambda r: r.cookies.set("sid", "abc")) == ["sid=abc; Path=/"]


def test_cookie_every_attribute_in_order(hook):
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    lines = set_cookie_lines(hook, lambda r: r.cookies.set(
        "sid", "abc", expires=expires, path="/app", domain="example.com",
        secure=True, http_only=True, same_site="lax", partitioned=True,
    ))
    assert lines == [
        "sid=abc; Path=/app; Expires=Wed, 02 Jan 2030 03:04:05 GMT; Domain=example.com; "
        "Secure; HttpOnly; SameSite=Lax; Partitioned"
    ]


def test_cookie_max_age_also_sets_expires(hook):
    before = time.time()
    lines = set_cookie_lines(hook, lambda r: r.cookies.set("sid", "abc", max_age=3600, secure=True))
    after = time.time()
    assert len(lines) == 1
    parts = lines[0].split("; ")
    assert parts[0] == "sid=abc"
    assert parts[1] == "Path=/"
    assert parts[2].startswith("Expires=")
    assert parts[3] == "Max-Age=3600"
    assert parts[4:] == ["Secure"]
    when = parsedate_to_datetime(parts[2][len("Expires="):]).timestamp()
    assert before + 3600 - 2 <= when <= after + 3600 + 2
    assert parts[2].endswith(" GMT")


def test_cookie_max_age_sets_expires_over_an_expires_given(hook):
    # As Next.js (normalizeCookie): a non-zero maxAge makes Expires match it; with
    # maxAge 0 an expires given is kept.
    before = time.time()
    lines = set_cookie_lines(hook, lambda r: r.cookies.set("sid", "abc", max_age=60, expires=0))
    expires = parsedate_to_datetime(lines[0].split("; ")[2][len("Expires="):]).timestamp()
    assert before + 60 - 2 <= expires <= time.time() + 60 + 2
    lines = set_cookie_lines(hook, lambda r: r.cookies.set("sid", "abc", max_age=0, expires=0))
    assert lines[0] == "sid=abc; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0"
    with pytest.raises(TypeError, match="expires"):  # overridden, but still a mistake
        Response("x").cookies.set("sid", "abc", max_age=60, expires="tomorrow")


def test_cookie_max_age_takes_a_timedelta_as_flask_does(hook):
    lines = set_cookie_lines(hook, lambda r: r.cookies.set("sid", "abc", max_age=timedelta(days=1, seconds=0.9)))
    assert lines[0].split("; ")[3] == "Max-Age=86400"
    # Under a second: still a live cookie for a second, never Max-Age=0, which deletes it.
    lines = set_cookie_lines(hook, lambda r: r.cookies.set("sid", "abc", max_age=timedelta(milliseconds=500)))
    assert lines[0].split("; ")[3] == "Max-Age=1"
    lines = set_cookie_lines(hook, lambda r: r.cookies.set("sid", "abc", max_age=timedelta(0)))
    assert lines[0].split("; ")[3] == "Max-Age=0"
    with pytest.raises(TypeError, match="whole seconds .* or a timedelta, not float"):
        Response("x").cookies.set("sid", "abc", max_age=1.5)


def test_cookie_max_age_zero_is_written(hook):
    lines = set_cookie_lines(hook, lambda r: r.cookies.set("sid", "abc", max_age=0))
    assert "Max-Age=0" in lines[0].split("; ")


@pytest.mark.parametrize("expires,text", [
    (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
    (1893456000, "Tue, 01 Jan 2030 00:00:00 GMT"),
    (1893456000.0, "Tue, 01 Jan 2030 00:00:00 GMT"),
    (datetime(2030, 1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=1))), "Tue, 01 Jan 2030 00:00:00 GMT"),
])
def test_cookie_expires_forms(hook, expires, text):
    lines = set_cookie_lines(hook, lambda r: r.cookies.set("e", "1", expires=expires))
    assert lines == [f"e=1; Path=/; Expires={text}"]


def test_cookie_expiry_beyond_what_http_dates_can_write_is_clamped():
    from minirouter import format_set_cookie

    far = format_set_cookie("a", "v", max_age=10**12)
    assert "Expires=Fri, 31 Dec 9999 23:59:59 GMT; Max-Age=1000000000000" in far
    assert "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in format_set_cookie("a", "v", expires=-10**12)
    assert "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in format_set_cookie("a", "v", max_age=-10**400)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="expires must be a finite time"):
            format_set_cookie("a", "v", expires=bad)


@pytest.mark.parametrize("given,written", [
    ("lax", "Lax"), ("LAX", "Lax"), ("Strict", "Strict"), ("strict", "Strict"),
    ("none", "None"), ("NONE", "None"), ("None", "None"),
])
def test_cookie_same_site_spelling(hook, given, written):
    lines = set_cookie_lines(hook, lambda r: r.cookies.set("s", "1", same_site=given, secure=True))
    assert lines == [f"s=1; Path=/; Secure; SameSite={written}"]


def test_cookie_false_flags_not_written(hook):
    lines = set_cookie_lines(hook, lambda r: r.cookies.set("s", "1", secure=False, http_only=False, partitioned=False))
    assert lines == ["s=1; Path=/"]


def test_cookie_delete_format(hook):
    lines = set_cookie_lines(hook, lambda r: r.cookies.delete("sid"))
    assert len(lines) == 1
    parts = lines[0].split("; ")
    assert parts[0] == "sid="
    assert "Path=/" in parts
    assert "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in parts


def test_cookie_delete_with_path_and_domain(hook):
    lines = set_cookie_lines(hook, lambda r: r.cookies.delete("sid", path="/a", domain="example.com"))
    parts = lines[0].split("; ")
    assert parts[0] == "sid="
    assert "Path=/a" in parts and "Domain=example.com" in parts
    assert "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in parts


def test_cookie_delete_with_the_attributes_it_was_set_with(hook):
    # A partitioned cookie is only removed by a Set-Cookie that says Partitioned.
    lines = set_cookie_lines(hook, lambda r: r.cookies.delete("sid", secure=True, partitioned=True))
    assert lines == ["sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; Partitioned"]


@pytest.mark.parametrize("name", ["__Host-sid", "__Secure-sid"])
def test_cookie_delete_of_a_prefixed_name_says_secure(hook, name):
    # RFC 6265bis 4.1.3: a browser ignores a Set-Cookie for these names without Secure,
    # so a deletion without it would leave the cookie in place.
    lines = set_cookie_lines(hook, lambda r: r.cookies.delete(name))
    assert lines == [f"{name}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure"]


def test_several_cookies_are_several_headers(hook):
    lines = set_cookie_lines(hook, lambda r: (r.cookies.set("a", "1"), r.cookies.set("b", "2")))
    assert sorted(lines) == ["a=1; Path=/", "b=2; Path=/"]


# RFC 6265 cookie-octet: %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
COOKIE_OCTETS = {chr(c) for c in [0x21, *range(0x23, 0x2C), *range(0x2D, 0x3B), *range(0x3C, 0x5C), *range(0x5D, 0x7F)]}


def test_cookie_plain_value_unchanged(hook):
    lines = set_cookie_lines(hook, lambda r: r.cookies.set("tok", "abc-123_XYZ.~"))
    assert lines == ["tok=abc-123_XYZ.~; Path=/"]


@pytest.mark.parametrize("value", ['a b', 'a;b', 'a,b', 'q"uote', 'back\\slash', 'café', 'tab\there', '日本'])
def test_cookie_value_percent_encoded_where_needed(hook, value):
    lines = set_cookie_lines(hook, lambda r: r.cookies.set("v", value))
    raw = cookie_pairs(lines)["v"]
    assert set(raw) <= COOKIE_OCTETS, raw
    assert unquote(raw) == value


def test_cookie_value_round_trips_through_request(hook):
    value = "a b;c,é\"x"

    def build():
        resp = Response("x")
        resp.cookies.set("v", value)
        return resp

    hook.set(lambda rq, cx: build() if rq.method == "POST" else {"v": rq.cookies.get("v")})
    r = hook.client.post("/hook")
    raw = cookie_pairs(r.headers.get_all("set-cookie"))["v"]
    back = call(hook.app, make_environ("GET", "/hook", headers={"Cookie": f"v={raw}"}))
    assert back.json() == {"v": value}


def test_cookie_value_with_percent_round_trips(hook):
    # A value holding "%" must come back unchanged when the browser returns it,
    # since request cookies are percent-decoded (design.md, Next.js rules).
    value = "50%25 off%"

    def build():
        resp = Response("x")
        resp.cookies.set("v", value)
        return resp

    hook.set(lambda rq, cx: build() if rq.method == "POST" else {"v": rq.cookies.get("v")})
    raw = cookie_pairs(hook.client.post("/hook").headers.get_all("set-cookie"))["v"]
    back = call(hook.app, make_environ("GET", "/hook", headers={"Cookie": f"v={raw}"}))
    assert back.json() == {"v": value}


@pytest.mark.parametrize("value", ["a\r\nb", "a\nb", "a\rb", "a\x00b"])
def test_cookie_value_with_cr_lf_nul_refused(value):
    with pytest.raises(ValueError):
        Response("x").cookies.set("n", value)


@pytest.mark.parametrize("name", ["", "a b", "a;b", "a=b", "a,b", "a\tb", "é", "a(b", "a\"b", "a/b", "a\r\nb", "a\x00b", "a:b", "a@b"])
def test_bad_cookie_names_refused(name):
    with pytest.raises(ValueError):
        Response("x").cookies.set(name, "v")


@pytest.mark.parametrize("path", ["/a;b", "/a\nb", "/a\x00b", "/a\rb", "/a\x7fb", "/caf\xe9", "/\u65e5"])
def test_bad_cookie_path_refused(path):
    with pytest.raises(ValueError):
        Response("x").cookies.set("n", "v", path=path)


@pytest.mark.parametrize("domain", ["example.com;x", "exa mple.com", "a\nb.com", "a,b.com", "a\x00.com", "ex/ample.com"])
def test_bad_cookie_domain_refused(domain):
    with pytest.raises(ValueError):
        Response("x").cookies.set("n", "v", domain=domain)


def test_good_cookie_names_accepted():
    resp = Response("x")
    for name in ("sid", "a.b", "a_b", "A1!#$%&'*+-.^_`|~"):
        resp.cookies.set(name, "v")
    resp.cookies.set("__Host-id", "v", secure=True)
    assert resp.headers.get_all("set-cookie") == [
        "sid=v; Path=/", "a.b=v; Path=/", "a_b=v; Path=/", "A1!#$%&'*+-.^_`|~=v; Path=/",
        "__Host-id=v; Path=/; Secure",
    ]


def test_cookie_error_inside_handler_is_500(hook):
    def build():
        resp = Response("x")
        resp.cookies.set("n", "a\r\nSet-Cookie: evil=1")
        return resp

    r = serve(hook, build)
    assert r.status == 500
    assert "evil" not in r.cookies


@pytest.mark.parametrize("url", ["/x\r\nSet-Cookie: admin=1", "/x\n", "/x\x00", "/a\x01b", "/a\tb", "/a\x7fb"])
def test_redirect_helpers_with_control_characters_raise_value_error(url):
    from minirouter import permanent_redirect, redirect

    for helper in (redirect, permanent_redirect):
        with pytest.raises(ValueError):
            helper(url)


def test_redirect_with_cr_lf_in_handler_is_500_and_never_sent(tmp_path):
    from minirouter import redirect

    h = HookApp(tmp_path)
    h.set(lambda request, context: redirect("/x\r\nSet-Cookie: admin=1"))
    r = h.client.get("/hook")
    assert r.status == 500
    assert r.headers.get("location") is None
    assert "admin" not in r.cookies


def test_http_error_headers_may_be_any_iterable_of_pairs():
    from minirouter import HTTPError

    answer = HTTPError(503, "busy", iter([("Retry-After", "5")])).to_response()
    assert answer.headers.get("retry-after") == "5"
    with pytest.raises(ValueError):
        HTTPError(400, "bad", {"X-A": "a\r\nb"})  # refused where it is raised


def test_cookie_expires_past_the_year_9999_is_refused_as_a_likely_millisecond_count():
    from minirouter import format_set_cookie

    # JavaScript's Date.now() + 86400000 ported as is: no silent 31 Dec 9999.
    for beyond in (time.time() * 1000 + 86_400_000, 10**400):
        with pytest.raises(ValueError, match="epoch seconds, not milliseconds"):
            format_set_cookie("a", "v", expires=beyond)
    assert "Expires=Fri, 31 Dec 9999 23:59:59 GMT" in format_set_cookie("a", "v", expires=253402300799)


# -- cookies browsers would drop are refused at set() ------------------------


@pytest.mark.parametrize("name,attributes", [
    ("__Secure-id", {}),
    ("__secure-id", {}),  # browsers match the prefixes in any case (RFC 6265bis 4.1.3)
    ("__Host-id", {}),
    ("__HOST-id", {"secure": True, "domain": "example.com"}),
    ("__Host-id", {"secure": True, "path": "/app"}),
])
def test_cookie_prefix_rules_are_checked_at_set(name, attributes):
    with pytest.raises(ValueError, match="__(Secure|Host)- cookie takes"):
        Response("x").cookies.set(name, "v", **attributes)


def test_cookie_prefixes_with_what_they_need_are_written():
    r = Response("x")
    r.cookies.set("__Secure-id", "v", secure=True, domain="example.com", path="/app")
    r.cookies.set("__Host-id", "v", secure=True)
    assert r.headers.get_all("set-cookie") == [
        "__Secure-id=v; Path=/app; Domain=example.com; Secure",
        "__Host-id=v; Path=/; Secure",
    ]


def test_cookie_longer_than_browsers_keep_is_refused_counting_its_encoding():
    Response("x").cookies.set("a", "v" * 4095)  # 1 + 4095 bytes: kept by browsers
    with pytest.raises(ValueError, match="browsers keep at most 4096"):
        Response("x").cookies.set("a", "v" * 4096)
    with pytest.raises(ValueError, match="bytes percent-encoded"):
        Response("x").cookies.set("a", "я" * 700)  # 1,400 characters, 4,200 bytes once encoded


@pytest.mark.parametrize("path", ["app", "", "/" + "a" * 1024])
def test_cookie_path_must_start_with_a_slash_and_be_short(path):
    with pytest.raises(ValueError, match="must start with '/'"):
        Response("x").cookies.set("a", "v", path=path)


@pytest.mark.parametrize("domain", ["example.com.", "a..example.com"])
def test_cookie_domain_with_empty_labels_is_refused(domain):
    with pytest.raises(ValueError, match="not a host name"):
        Response("x").cookies.set("a", "v", domain=domain)


def test_cookie_priority_is_written_last_in_any_case():
    r = Response("x")
    r.cookies.set("a", "v", secure=True, same_site="none", partitioned=True, priority="HIGH")
    assert r.headers.get_all("set-cookie") == ["a=v; Path=/; Secure; SameSite=None; Partitioned; Priority=High"]
    with pytest.raises(ValueError, match="priority must be"):
        Response("x").cookies.set("a", "v", priority="urgent")


def test_cookie_delete_carries_secure_where_browsers_need_it():
    r = Response("x")
    r.cookies.delete("__secure-lc")
    r.cookies.delete("pp", partitioned=True)
    lines = r.headers.get_all("set-cookie")
    assert "; Secure" in lines[0]
    assert lines[1].endswith("; Secure; Partitioned")


def test_cookie_decoding_to_a_line_break_is_skipped_so_writing_it_back_is_no_500(tmp_path):
    from helpers import client, make_app

    app = make_app(tmp_path, {"refresh/route.py": (
        "from minirouter import cookies\n"
        "def GET():\n"
        "    sid = cookies().get('sid')\n"
        "    if sid is not None:\n"
        "        cookies().set('sid', sid, max_age=3600)\n"
        "    return {'sid': sid, 'other': cookies().get('other')}\n"
    )})
    for bad in ("a%0Ab", "a%0Db", "a%00b"):
        response = client(app).get("/refresh", headers={"Cookie": f"sid={bad}; other=%01ok"})
        assert response.status == 200
        assert response.json() == {"sid": None, "other": "\x01ok"}
    from minirouter import parse_cookie_header

    assert parse_cookie_header("sid=a\x00b; other=1") == {"other": "1"}  # raw, as wsgiref passes it
    response = client(app).get("/refresh", headers={"Cookie": "sid=a%01b"})
    assert response.json()["sid"] == "a\x01b"
    assert "sid=a%01b;" in response.headers.get_all("set-cookie")[0]


def test_cookies_set_already_expired_reads_as_gone(tmp_path):
    from helpers import client, make_app

    app = make_app(tmp_path, {"r/route.py": (
        "from minirouter import cookies\n"
        "def GET():\n"
        "    cookies().set('a', 'v', max_age=0)\n"
        "    cookies().set('b', 'v', expires=0)\n"
        "    cookies().set('c', 'v', max_age=60)\n"
        "    return {n: cookies().get(n) for n in 'abc'}\n"
    )})
    assert client(app).get("/r", headers={"Cookie": "a=old; b=old"}).json() == {"a": None, "b": None, "c": "v"}


def test_headers_update_from_headers_keeps_each_set_cookie_line():
    source = Response("x")
    source.cookies.set("a", "1")
    source.cookies.set("b", "2")
    source.headers["X-Tag"] = "s"
    target = Response("y", headers={"x-tag": "t", "X-Other": "o"})
    target.headers.update(source.headers)
    assert target.headers.get_all("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert target.headers.get_all("x-tag") == ["s"]
    assert target.headers["x-other"] == "o"
    target.headers.update({"X-Tag": "m"}, more="k")
    assert target.headers.get_all("x-tag") == ["m"] and target.headers["more"] == "k"
    pairs = Response("z")
    pairs.headers.update([("Set-Cookie", "c=3"), ("Set-Cookie", "d=4")])  # pairs, as Headers() takes them
    assert pairs.headers.get_all("set-cookie") == ["c=3", "d=4"]
    with pytest.raises(ValueError):
        pairs.headers.update([("Set-Cookie", "e=5"), ("X-Bad", "a\nb")])
    assert pairs.headers.get_all("set-cookie") == ["c=3", "d=4"]  # checked first: nothing changed
    import http.client

    upstream = http.client.parse_headers(
        io.BytesIO(b'ETag: "a"\r\nX-Up: 1\r\nSet-Cookie: u=1\r\nSet-Cookie: v=2\r\n\r\n'))  # urllib's headers
    pairs.headers.update(upstream)
    assert pairs.headers["etag"] == '"a"' and pairs.headers["x-up"] == "1"
    assert pairs.headers.get_all("set-cookie") == ["u=1", "v=2"]  # every value, as a proxy route passes them on
    assert Response("p", headers=upstream).headers.get_all("set-cookie") == ["u=1", "v=2"]
    before = pairs.headers.raw()
    with pytest.raises(ValueError):
        pairs.headers.update({"x-ok": "1", "bad name": "2"})
    with pytest.raises(ValueError):
        pairs.headers.update({"x-ok": "1"}, **{"x-up": "a\nb"})
    assert pairs.headers.raw() == before  # nothing half-applied
    target.headers.update(target.headers)  # another view of the same list: nothing changes
    assert target.headers.get_all("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert target.headers["more"] == "k"


def test_http_error_message_is_its_text_or_any_json_value(hook):
    from enum import Enum

    from minirouter import HTTPError

    class Problem(str, Enum):
        NO_TEXT = "send some text"

    assert HTTPError(400, Problem.NO_TEXT).to_response().body == b'{"error":"send some text"}'
    assert type(HTTPError(400, Problem.NO_TEXT).message) is str
    assert HTTPError(422, {"field": "email"}).to_response().body == b'{"error":{"field":"email"}}'
    assert HTTPError(404).message == "not found"
    # Anything JSON cannot hold is sent as its text (a 500 when written, before).
    error = ValueError("invalid literal for int() with base 10: 'x'")
    assert HTTPError(400, error).to_response().body == b'{"error":"invalid literal for int() with base 10: \'x\'"}'
    assert HTTPError(400, b"raw").message == "b'raw'" and HTTPError(400, {1, 2}).message == "{1, 2}"
    assert HTTPError(400, 0).message == 0 and HTTPError(400, {}).message == {}  # as given
    assert HTTPError(400, ValueError()).message == "bad request"  # no text: the reason phrase


def test_setting_a_cookie_twice_sends_one_line():
    response = Response("x")
    response.cookies.set("a", "1")
    response.cookies.set("a", "2")
    assert response.headers.get_all("set-cookie") == ["a=2; Path=/"]


def test_max_age_zero_also_writes_an_expires_of_now():
    before = time.time()
    response = Response("x")
    response.cookies.set("a", "1", max_age=0)
    parts = response.headers.get("set-cookie").split("; ")
    assert parts[2].startswith("Expires=") and parts[3] == "Max-Age=0"
    assert before - 2 <= parsedate_to_datetime(parts[2][len("Expires="):]).timestamp() <= time.time() + 2


@pytest.mark.parametrize("status", [300, 304, 200, 399, 307.0, True])
def test_redirect_takes_only_the_redirect_statuses(status):
    # As NextResponse.redirect: 301, 302, 303, 307 or 308 (an int: 307.0 would fail when sent).
    with pytest.raises(ValueError, match=r"redirect status must be one of 301, 302, 303, 307, 308, not "):
        Response.redirect("/x", status)


def test_redirect_takes_an_http_status_as_every_status_does():
    import http

    assert Response.redirect("/x", http.HTTPStatus.PERMANENT_REDIRECT).status == 308
