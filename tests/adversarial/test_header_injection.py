"""Header injection: no value a handler sets, and no redirect target, can add
a header, split the response or send the browser to another site.

design.md: "Setting a header or cookie with CR, LF or NUL in it raises
ValueError at once; uncaught, that is a 500" and "header value with CR or LF
set by a handler: refused with an error, never sent".
"""
from __future__ import annotations

import re

import pytest

from .conftest import assert_error, raw_exchange, server_port, split_response

# Response splitting (CWE-113): Bottle (CVE-2016-9964: redirect() let CR/LF
# through into Location) and CPython's urllib (CVE-2019-9740, CVE-2019-9947:
# CR/LF in a URL reached the request line) are the nearest advisories; a CR
# or LF in any header value must never reach the wire.
SPLITTERS = [
    "a\r\nSet-Cookie: admin=1",
    "a\nX-Evil: 1",
    "a\rX-Evil: 1",
    "a\r\n\r\n<script>alert(1)</script>",
    "a\x00b",
    "a\x0bb",
    "a\x0cb",
    "a\x1bb",
    "a\x7fb",
    "\u0100 outside latin-1",
    "a\u2028b",
]


def inject(probe, where, value, catch=True):
    params = {"where": where, "value": value}
    if catch:
        params["catch"] = "1"
    return probe.client.get("/inject", params=params)


@pytest.mark.parametrize("where", ["header", "append", "content-disposition", "response-redirect"])
@pytest.mark.parametrize("value", SPLITTERS[:5])
def test_cr_lf_nul_in_any_header_is_refused_when_set(probe, where, value):
    result = inject(probe, where, value)
    assert result.status == 400 and "refused" in result.json(), result.text


@pytest.mark.parametrize("value", SPLITTERS[:5])
def test_redirect_with_cr_lf_nul_raises_value_error_in_the_handler(probe, value):
    # redirect(url) sets Location, so the same rule applies: ValueError at the
    # call, where the handler can catch it (and the log names the route),
    # not later when the framework turns the redirect into a response.
    result = inject(probe, "redirect", value)
    assert result.status == 400 and "refused" in result.json(), result.text


@pytest.mark.parametrize("where", ["header", "append", "content-disposition"])
@pytest.mark.parametrize("value", SPLITTERS)
def test_uncaught_refusal_is_a_500_with_nothing_of_the_value_sent(probe, where, value):
    result = inject(probe, where, value, catch=False)
    assert_error(result, 500)
    assert not result.headers.has("x-probe") and not result.headers.has("x-evil")
    assert not result.headers.get_all("set-cookie")
    assert not result.headers.has("content-disposition")


@pytest.mark.parametrize(
    "name", ["X-A: b", "X A", "X-A\r\nX-Evil", "", "X-A\x00", "X(A)", "X/A", "caf\u00e9", "X-A:"]
)
def test_header_names_that_are_not_tokens_are_refused(probe, name):
    result = inject(probe, "header-name", name)
    assert result.status == 400 and "refused" in result.json()


def test_visible_latin1_is_allowed_in_values_but_not_a_tab_inside_one(probe):
    # RFC 9110 5.5 allows obs-text; HTAB too, but PEP 3333 forbids every
    # control character in a value, and wsgiref's validator checks it.
    assert inject(probe, "header", "a b \u00e9").headers["x-probe"] == "a b \u00e9"
    assert inject(probe, "header", "\tpadded\t").headers["x-probe"] == "padded"  # trimmed, as fetch does
    result = inject(probe, "header", "a\tb")
    assert result.status == 400 and "refused" in result.json(), result.text


def test_a_header_named_status_is_refused(probe):
    # A CGI gateway (wsgiref's CGIHandler) would send it as a second status.
    result = inject(probe, "header-name", "Status")
    assert result.status == 400 and "refused" in result.json()


@pytest.mark.parametrize(
    "target",
    [
        "/a\r\nSet-Cookie: admin=1",
        "/a\nLocation: https://evil.example",
        "https://ok.example/\r\n\r\nbody",
        "/a\x00b",
    ],
)
def test_redirect_targets_with_cr_lf_nul_never_reach_the_wire(probe_server, target):
    from urllib.parse import quote

    for where in ("redirect", "response-redirect"):
        raw = raw_exchange(
            server_port(probe_server),
            b"GET /inject?where=%s&value=%s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            % (where.encode(), quote(target, safe="").encode()),
        )
        status, headers, body = split_response(raw)
        assert status == 500
        assert "location" not in headers and "set-cookie" not in headers
        assert b"admin=1" not in raw and b"evil.example" not in raw and b"body" not in raw.split(b"\r\n\r\n", 1)[0]


def test_non_ascii_redirect_targets_are_percent_encoded(probe):
    result = inject(probe, "redirect", "/caf\u00e9 menu?q=\u20ac")
    assert result.status == 307
    location = result.headers.get("location")
    assert location.isascii() and " " not in location
    assert location == "/caf%C3%A9%20menu?q=%E2%82%AC"


# --- the trailing-slash redirect must never leave the site ------------------
#
# CVE-2021-28861 (CPython http.server: "//evil.com/" became a protocol-relative
# Location), Django's CommonMiddleware (CVE-2018-14574: the APPEND_SLASH
# redirect of "//evil.com" left the site), the same through "/\\", and
# CVE-2022-0391 / bpo-43882 (urllib.parse): browsers and WHATWG parsers drop
# ASCII tab and newline inside URLs, so "/\t/evil.com" is read as "//evil.com".
# The 308 that drops a trailing slash writes the client's own path into
# Location, so it must come out as a same-site path.


def browser_reading(location: str) -> str:
    """What a WHATWG URL parser makes of a Location value before resolving it:
    C0 controls and spaces trimmed at both ends, tab/LF/CR removed anywhere,
    and '\\' read as '/' for http(s) URLs."""
    location = location.strip("".join(chr(c) for c in range(0x21)))
    location = re.sub(r"[\t\n\r]", "", location)
    return location.replace("\\", "/")


def assert_same_site(location: str) -> None:
    seen = browser_reading(location)
    assert seen.startswith("/") and not seen.startswith("//"), (location, seen)


OPEN_REDIRECT_TARGETS = [
    "//evil.example/",
    "///evil.example/",
    "////evil.example//",
    "/\\evil.example/",
    "/\\/evil.example/",
    "/%2F/evil.example/",
    "/%2F%2Fevil.example/",
    "/%5C%5Cevil.example/",
    "/\t/evil.example/",
    "/\t\t//evil.example/",
    "/%09/evil.example/",
    "/./evil.example/",
    "/ /evil.example/",
]


@pytest.mark.parametrize("target", OPEN_REDIRECT_TARGETS)
def test_trailing_slash_redirect_stays_on_the_site(probe, target):
    result = probe.raw(target)
    if result.status in (301, 302, 303, 307, 308):
        assert_same_site(result.header("location"))
    else:
        assert 400 <= result.status < 500


@pytest.mark.parametrize("target", ["//evil.example/", "/\\evil.example/", "/\t/evil.example/", "/%09/evil.example/"])
def test_trailing_slash_redirect_stays_on_the_site_through_waitress(probe_server, target):
    raw = raw_exchange(
        server_port(probe_server),
        b"GET " + target.encode("latin-1") + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    status, headers, _ = split_response(raw)
    if status in (301, 302, 303, 307, 308):
        (location,) = headers["location"]
        assert_same_site(location)
    else:
        assert 400 <= status < 500


def test_trailing_slash_redirect_keeps_the_query_as_data(probe):
    result = probe.raw("/only-get/?next=//evil.example&x=%0D%0A")
    assert result.status == 308
    assert result.header("location") == "/only-get?next=//evil.example&x=%0D%0A"
