"""Cookies: parsed pair by pair (a bad pair never hides the others), linear
time, and nothing a handler sets can add an attribute or a header.

design.md: "Cookies are parsed pair by pair: a malformed pair is skipped, a
nameless one dropped, and the rest kept." and "Cookie names, path and domain
with characters RFC 6265 does not allow raise ValueError at set(); values are
percent-encoded where needed."
"""
from __future__ import annotations

import pytest

from minirouter import format_set_cookie, parse_cookie_header

from .conftest import assert_error


def cookies_seen(probe, header: str) -> dict:
    result = probe.client.get("/echo", headers={"Cookie": header})
    assert result.status == 200, result.text
    return result.json()["cookies"]


# CPython's http.cookies.SimpleCookie stops at the first pair it cannot
# parse and drops every cookie after it (why Django parses cookies itself):
# one malformed pair must not drop the session cookie that follows it.
@pytest.mark.parametrize(
    "header, expected",
    [
        ("a=1; junk; b=2", {"a": "1", "b": "2"}),
        ("a=1; b c; d=4", {"a": "1", "d": "4"}),
        ("a=1;;;; b=2", {"a": "1", "b": "2"}),
        ("a=1; =nameless; b=2", {"a": "1", "b": "2"}),
        ("=; a=1", {"a": "1"}),
        ("a=1; b=\"unterminated; c=3", {"a": "1", "b": "\"unterminated", "c": "3"}),
        ("a=1; b=x\"y; c=3", {"a": "1", "b": "x\"y", "c": "3"}),
        ("a=1; {bad}=2; c=3", {"a": "1", "{bad}": "2", "c": "3"}),
        (" a = 1 ; b=2 ", {"a": "1", "b": "2"}),
        ("a=b=c", {"a": "b=c"}),
        (";;;", {}),
        ("", {}),
    ],
)
def test_a_malformed_pair_is_skipped_and_the_rest_kept(probe, header, expected):
    assert cookies_seen(probe, header) == expected


# CVE-2023-23934 (Werkzeug < 2.2.3): a nameless cookie "=__Host-x=evil" was
# parsed as "__Host-x=evil", so a subdomain could shadow a __Host- cookie the
# browser had bound to the exact origin. A nameless pair is dropped whole.
def test_nameless_cookie_cannot_shadow_a_host_prefixed_one(probe):
    seen = cookies_seen(probe, "=__Host-session=evil; __Host-session=good")
    assert seen == {"__Host-session": "good"}
    assert cookies_seen(probe, "=__Secure-id=evil") == {}
    assert cookies_seen(probe, " =a=b; c=d") == {"c": "d"}


def test_the_first_of_two_same_named_cookies_wins(probe):
    # Browsers send the most specific path first (RFC 6265 5.4 step 2).
    assert cookies_seen(probe, "sid=path-specific; sid=root") == {"sid": "path-specific"}


def test_control_characters_in_a_name_drop_that_pair(probe):
    assert cookies_seen(probe, "a\x01b=1; c=2") == {"c": "2"}
    assert cookies_seen(probe, "a\x7fb=1; c=2") == {"c": "2"}


# Values are percent-decoded as Next.js does (decodeURIComponent): a value
# that cannot be decoded makes its pair malformed, and the pair is skipped;
# quotes are part of the value (RFC 6265 5.4; Next.js keeps them). Never a 500.
@pytest.mark.parametrize(
    "header, expected",
    [
        ("a=%E2%82%AC", "\u20ac"),
        ("a=%ff", None),
        ("a=%zz", None),
        ("a=%", None),
        ("a=%3B%20Domain%3Devil", "; Domain=evil"),
        ('a="quoted value"', '"quoted value"'),
        ('a=""', '""'),
        ('a="', '"'),
        ("a=caf\u00c3\u00a9", "caf\u00e9"),  # raw UTF-8 bytes, passed as latin-1 (PEP 3333)
    ],
)
def test_values_are_percent_decoded_and_never_raise(probe, header, expected):
    seen = cookies_seen(probe, header + "; b=2")
    assert seen == ({"b": "2"} if expected is None else {"a": expected, "b": "2"})


def test_rfc2109_dollar_attributes_are_not_special(probe):
    # SimpleCookie treats $Version/$Path as attributes of the previous
    # cookie; here every pair is a cookie, and "a" is intact.
    seen = cookies_seen(probe, "$Version=1; a=1; $Path=/")
    assert seen["a"] == "1"


# CVE-2024-7592 (CPython http.cookies): unquoting a quoted value full of
# backslashes was quadratic; a 100 KB header pinned a CPU. This parser uses no
# regular expression on the value: the run is bounded by size, not timed.
def test_backslash_heavy_quoted_values_parse_in_linear_time(probe):
    value = '"' + "\\" * 200_000 + '"'
    parsed = parse_cookie_header("a=" + value + "; b=2")
    assert parsed["b"] == "2"
    assert parsed["a"] == value  # quotes and backslashes are data, kept as sent
    value = '"' + '\\"' * 100_000 + '"'
    assert parse_cookie_header("a=" + value)["a"].count('"') >= 100_000
    assert cookies_seen(probe, "a=" + '"' + "\\" * 20_000 + '"; b=2')["b"] == "2"


def test_very_many_cookies_parse(probe):
    header = "; ".join(f"c{i}={i}" for i in range(5000))
    seen = cookies_seen(probe, header)
    assert len(seen) == 5000 and seen["c4999"] == "4999"


# --- setting cookies: nothing can add an attribute or a header ------------


def inject(probe, where, value, catch=True):
    params = {"where": where, "value": value}
    if catch:
        params["catch"] = "1"
    return probe.client.get("/inject", params=params)


# A value is data: "; Domain=evil" in a value must be percent-encoded, never
# become an attribute (cookie-attribute injection: a value copied from the
# request into Set-Cookie must not be able to add Domain, Path or HttpOnly).
@pytest.mark.parametrize(
    "value",
    ["x; Domain=evil.example", "x; Path=/admin; HttpOnly", "a=b", "x,y", 'q"u"o\\te', " spaced ", "\u20ac"],
)
def test_cookie_values_are_encoded_never_attributes(probe, value):
    result = inject(probe, "cookie-value", value)
    assert result.status == 200
    (line,) = result.headers.get_all("set-cookie")
    first, _, attributes = line.partition(";")
    assert first.split("=", 1)[0] == "probe"
    assert attributes.strip() == "Path=/"  # nothing else was added
    assert not any(c in first.split("=", 1)[1] for c in ' ;,"\\')
    assert result.cookies["probe"] == value  # and it reads back as sent


@pytest.mark.parametrize("where", ["cookie-value", "jar"])
@pytest.mark.parametrize("value", ["a\r\nSet-Cookie: admin=1", "a\nX-Evil: 1", "a\rb", "a\x00b"])
def test_cr_lf_nul_in_a_cookie_value_is_refused(probe, where, value):
    error = inject(probe, where, value).json()
    assert "refused" in error
    result = inject(probe, where, value, catch=False)
    assert_error(result, 500)
    assert not result.headers.get_all("set-cookie")


@pytest.mark.parametrize(
    "name",
    ["a;b", "a=b", "a b", "a,b", "a\r\nX-Evil: 1", "a\tb", "(a)", "a/b", "", "caf\u00e9", 'a"b'],
)
def test_cookie_names_outside_rfc6265_are_refused(probe, name):
    result = inject(probe, "cookie-name", name)
    assert result.status == 400 and "refused" in result.json()
    assert not result.headers.get_all("set-cookie")


@pytest.mark.parametrize("where", ["cookie-path", "jar-path"])
@pytest.mark.parametrize("path", ["/; Domain=evil.example", "/\r\nX-Evil: 1", "/a\nb", "/\x00", "/a;b", "/\x7f"])
def test_cookie_paths_with_separators_or_controls_are_refused(probe, where, path):
    result = inject(probe, where, path)
    assert result.status == 400 and "refused" in result.json()
    assert not result.headers.get_all("set-cookie")


@pytest.mark.parametrize(
    "domain",
    ["evil.example; Secure", "a\r\nX-Evil: 1", "a b", "a/b", "", ".", "a;b", "exa\u00e9mple.com", "[::1]"],
)
def test_cookie_domains_that_are_not_host_names_are_refused(probe, domain):
    result = inject(probe, "cookie-domain", domain)
    assert result.status == 400 and "refused" in result.json()


@pytest.mark.parametrize("same_site", ["Lax; Domain=evil", "lax\r\n", "", "sometimes"])
def test_same_site_takes_only_the_three_values(probe, same_site):
    result = inject(probe, "cookie-same-site", same_site)
    assert result.status == 400 and "refused" in result.json()


def test_refused_cookie_setting_never_reaches_the_wire(probe_server):
    # The same, on a real server: a 500 with a JSON body and no Set-Cookie.
    from .conftest import raw_exchange, server_port, split_response

    raw = raw_exchange(
        server_port(probe_server),
        b"GET /inject?where=cookie-path&value=/%0D%0AX-Evil:%201 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    status, headers, _ = split_response(raw)
    assert status == 500
    assert "set-cookie" not in headers and "x-evil" not in headers
    assert b"X-Evil" not in raw


def test_format_set_cookie_never_emits_a_control_character():
    line = format_set_cookie("n", "v\u0001\u007f\u0085x", path="/p", domain="example.com", same_site="STRICT")
    assert all(ord(c) >= 0x20 and c != "\x7f" for c in line)
    assert line.endswith("SameSite=Strict")
