"""Routing: only a route (or a public file) is ever reachable, paths decode
once and strictly, odd methods and huge paths get a 4xx/501, and lookup cost is
bounded by the route tree.

design.md: "A request never touches the filesystem (except a page.html or
public/ file being served) and never imports anything: the URL cannot reach a
file that is not in the trie"; "a malformed escape or invalid UTF-8 gives
400"; "any other method (FOO, get, TRACE), whatever the path: 501".
"""
from __future__ import annotations

import pytest

import minirouter
from helpers import make_app, make_environ, latin1

from .conftest import assert_error, raw_exchange, server_port, split_response


# Private folders, helper modules, route files themselves and __pycache__ are
# never URLs (the class of "source disclosure through the router" bugs, e.g.
# static handlers serving .py files next to routes).
@pytest.mark.parametrize(
    "target",
    [
        "/_private",
        "/%5Fprivate",
        "/%5fprivate",
        "/_private/route.py",
        "/echo/helper",
        "/echo/helper.py",
        "/echo/route",
        "/echo/route.py",
        "/echo/__pycache__",
        "/echo%2Fhelper",
        "/(group)/grouped",
        "/%28group%29/grouped",
        "/echo/../_private",
        "/%2E%2E/_private",
        "/seg",
        "/rest",
        "/route.py",
        "/__init__.py",
        "/.",
        "/..",
    ],
)
def test_only_routes_are_reachable(probe, target):
    result = probe.raw(target)
    assert result.status in (400, 404), (target, result)
    assert b"leak" not in result.body and b"module beside" not in result.body


def test_group_and_escaped_underscore_folders_route_as_designed(probe):
    assert probe.raw("/grouped").json() == {"route": "grouped"}
    assert probe.raw("/_under").json() == {"route": "_under"}


@pytest.mark.parametrize(
    "target",
    ["/_lib/validate", "/_lib/validate.py", "/%5Flib/validate", "/comments/data", "/comments/data.py", "/files/storage"],
)
def test_example_app_helpers_are_not_reachable(client, target):
    # /comments/data is /comments/[id] with id "data": a 400 from the route.
    result = client.get(target)
    assert result.status in (400, 404)
    assert b"sqlite" not in result.content.lower() and b"def " not in result.content


# Next.js: split on the raw '/', then decode each segment once. "%2F" is data
# inside a parameter and "%252F" decodes to "%2F", not "/" (double decoding is
# how traversal filters get bypassed).
@pytest.mark.parametrize(
    "target, expected",
    [
        ("/seg/a%2Fb", "a/b"),
        ("/seg/%2F..%2F", "/../"),
        ("/seg/%252F", "%2F"),
        ("/seg/...", "..."),
        ("/seg/.env", ".env"),
        ("/seg/caf%C3%A9", "caf\u00e9"),
        ("/seg/%00", "\x00"),
        ("/seg/a%20b", "a b"),
        ("/seg/%3F%23", "?#"),
    ],
)
def test_segments_decode_exactly_once(probe, target, expected):
    result = probe.raw(target)
    assert result.status == 200 and result.json()["params"] == {"id": expected}


@pytest.mark.parametrize(
    "target",
    [
        "/seg/%zz", "/seg/%", "/seg/%4", "/seg/%%41", "/seg/%ff", "/seg/%c0%ae",
        "/seg/%ed%a0%80", "/seg/%f8%88%80%80%80", "/seg/%e2%82", "/%ff/x", "/rest/a/%c0",
    ],
)
def test_malformed_escapes_and_invalid_utf8_are_400(probe, target):
    error = assert_error(probe.raw(target), 400)
    assert "path" in error["error"]


def test_invalid_utf8_in_path_info_alone_is_400(probe):
    # A server that passes only PATH_INFO (decoded bytes as latin-1).
    assert_error(probe.decoded("/seg/\xff\xfe"), 400)
    result = probe.decoded(latin1("/seg/caf\u00e9"))
    assert result.status == 200 and result.json()["params"] == {"id": "caf\u00e9"}


@pytest.mark.parametrize("target", [
    "/seg/..", "/seg/.", "/seg/%2e%2e", "/seg/.%2E", "/seg/%2e", "/rest/..", "/rest/a/../b", "/rest/a/%2e%2e/b",
    "/rest/a/.", "/rest/./a", "/rest/a/%2E",
])
def test_a_dot_segment_is_never_a_parameter_value(probe, target):
    # Next.js answers 404 (a real next start, compared side by side): a handler that
    # opens params["id"] as a file name must never be handed "..".
    result = probe.raw(target)
    assert_error(result, 404)
    assert result.json()["error"].startswith("no route matches /")


def test_empty_segments_are_never_parameter_values(probe):
    for target in ["/seg//", "/rest/a//b", "//seg/x", "/seg/%2F/"]:
        result = probe.raw(target)
        assert result.status in (308, 400, 404), (target, result)
        assert result.status != 200


# --- odd methods ---------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    ["FOO", "get", "Get", "TRACE", "TRACK", "CONNECT", "PROPFIND", "M-SEARCH", "", "GET ", "G\x00T", "X" * 10_000, "DEBUG"],
)
def test_odd_methods_are_501_whatever_the_path(probe, method):
    for path in ("/echo", "/nowhere", "/hello.txt", "/_private"):
        result = probe.call(make_environ(method, path), validate=False)
        error = assert_error(result, 501)
        assert len(error["error"]) < 20_100


def test_trace_is_never_echoed_on_the_wire(probe_server):
    # Cross-site tracing (XST): TRACE echoing the request would leak cookies
    # and Authorization headers to scripts.
    raw = raw_exchange(
        server_port(probe_server),
        b"TRACE /echo HTTP/1.1\r\nHost: a\r\nCookie: sid=secret\r\nConnection: close\r\n\r\n",
    )
    status, _, body = split_response(raw)
    assert status in (400, 405, 501)
    assert b"secret" not in raw


def test_unexported_methods_are_405_with_allow(probe):
    result = probe.call(make_environ("POST", "/only-get", body=b"x"))
    assert_error(result, 405)
    assert result.header("allow") == "GET, HEAD, OPTIONS"
    result = probe.call(make_environ("DELETE", "/seg/1"))
    assert_error(result, 405)


# --- huge paths ----------------------------------------------------------


def test_overlong_path_is_a_plain_404(probe):
    target = "/" + "a" * 200_000
    result = probe.raw(target)
    error = assert_error(result, 404)
    assert len(result.body) < 250_000
    assert error


def test_many_segments_through_a_catch_all(probe):
    target = "/rest" + "/a" * 20_000
    result = probe.raw(target)
    assert result.status == 200 and len(result.json()["params"]["slug"]) == 20_000


def test_many_empty_segments_do_not_match(probe):
    # No route takes an empty segment; the path without them is served, so it is redirected there.
    result = probe.raw("/rest" + "/" * 20_000 + "x")
    assert (result.status, result.header("location")) == (308, "/rest/x")


def test_overlong_request_line_through_waitress_is_refused_not_fatal(probe_server):
    port = server_port(probe_server)
    raw = raw_exchange(port, b"GET /" + b"a" * 300_000 + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    if raw:
        assert 400 <= split_response(raw)[0] < 500
    # The server still serves the next client.
    raw = raw_exchange(port, b"GET /only-get HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert split_response(raw)[0] == 200


# The lookup backtracks (static, then [param], then catch-alls), which could
# be exponential on a crafted tree and path. Count the calls instead of timing
# them: each trie node may be visited at most once per request.
def test_lookup_visits_each_trie_node_at_most_once(tmp_path, monkeypatch):
    depth = 14
    files = {}
    for level in range(depth):
        prefix = "".join(f"[p{i}]/" for i in range(level))
        files[f"{prefix}s/route.py"] = "def GET(): return {}\n"
        files[f"{prefix}[p{level}]/leaf{level}/route.py"] = "def GET(): return {}\n"
    app = make_app(tmp_path, files)
    calls = {"n": 0}
    real = minirouter._lookup

    def counting(*args):
        calls["n"] += 1
        if calls["n"] > 10_000:
            raise AssertionError("lookup did not stop")
        return real(*args)

    monkeypatch.setattr(minirouter, "_lookup", counting)
    nodes = 3 * depth + 2
    # "s/s/s/.../nomatch": at each level both the static "s" and [param] apply.
    path = "/" + "/".join(["s"] * depth) + "/nomatch"
    result = minirouter.TestClient(app).get(path)
    assert result.status == 404
    assert calls["n"] <= nodes, calls


# Raw bytes in the request target: a server that passes them in REQUEST_URI
# (uWSGI does; waitress and gunicorn refuse non-ASCII request lines) hands
# them over as latin-1 characters (PEP 3333). A segment must be decoded from
# those bytes the same way whether or not it also holds %XX escapes: today a
# segment with an escape is re-encoded as UTF-8 first, so raw bytes are
# decoded twice (mojibake) and invalid UTF-8 slips through as 200.
@pytest.mark.parametrize(
    "raw, expected",
    [
        ("caf\u00c3\u00a9", "caf\u00e9"),
        ("caf\u00c3\u00a9%20x", "caf\u00e9 x"),
        ("%20caf\u00c3\u00a9", " caf\u00e9"),
        ("\u00c3%A9", "\u00e9"),  # one raw byte and one escaped byte of the same character
    ],
)
def test_raw_utf8_bytes_decode_the_same_with_or_without_escapes(probe, raw, expected):
    target = "/seg/" + raw
    environ = make_environ("GET", "/seg/" + raw.replace("%20", " ").replace("%A9", "\u00a9"), request_uri=target)
    result = probe.call(environ, validate=False)
    assert result.status == 200, result
    assert result.json()["params"] == {"id": expected}


@pytest.mark.parametrize("raw", ["\u00ff", "\u00ff%20", "%20\u00ff", "\u00c0%AE"])
def test_raw_bytes_that_are_not_utf8_are_400_with_or_without_escapes(probe, raw):
    environ = make_environ("GET", "/seg/x", request_uri="/seg/" + raw)
    assert_error(probe.call(environ, validate=False), 400)


# Method-override conventions (X-HTTP-Method-Override, X-Method-Override,
# ?_method=, a _method form field) let a cross-site form turn a POST into a
# DELETE in frameworks that honour them. Here the method is the request's
# own, whatever a header, the query or the body says.
@pytest.mark.parametrize(
    "headers, query, body",
    [
        ({"X-HTTP-Method-Override": "GET"}, "", b""),
        ({"X-HTTP-Method": "GET"}, "", b""),
        ({"X-Method-Override": "GET"}, "", b""),
        ({}, "_method=GET", b""),
        ({"Content-Type": "application/x-www-form-urlencoded"}, "", b"_method=GET"),
    ],
)
def test_method_override_is_never_honoured(probe, headers, query, body):
    environ = make_environ("POST", "/only-get", query=query, headers=headers, body=body or None)
    result = probe.call(environ, validate=False)
    assert_error(result, 405)
