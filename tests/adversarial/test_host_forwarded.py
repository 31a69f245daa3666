"""Host and X-Forwarded-*: the Host header is validated, and proxy headers are
never trusted unless the app is told to.

design.md: "request.url and redirects use the Host header; X-Forwarded-*
headers are ignored unless the app is told to trust them" (App(trust_forwarded=True)).
"""
from __future__ import annotations

import json

import pytest

from helpers import make_environ

from .conftest import Probe, assert_error, raw_exchange, server_port, split_response


def url_seen(probe, *, host="testserver", headers=None, scheme="http"):
    result = probe.call(make_environ("GET", "/echo", host=host, headers=headers, scheme=scheme), validate=False)
    return result


# Host header poisoning (Django CVE-2011-4139 / CVE-2012-4520, and the
# password-reset-link class of bugs): a Host that is not a host name must
# never reach request.url, where it ends up in links and emails.
@pytest.mark.parametrize(
    "host",
    [
        "evil.example/path",
        "evil.example?x",
        "evil.example#x",
        "user@evil.example",
        "good.example:80@evil.example",
        "a b",
        "a\\b",
        "good.example, evil.example",  # two Host headers joined by the server
        "[::1",
        "::1",
        "good.example:port",
        "good.example:123456",
        "caf\u00e9.example",
        "a" * 300,
        "<script>",
        "\"quoted\"",
    ],
)
def test_malformed_host_is_400(probe, host):
    assert_error(url_seen(probe, host=host), 400)


@pytest.mark.parametrize(
    "host, url",
    [
        ("example.com", "http://example.com/echo"),
        ("example.com:8080", "http://example.com:8080/echo"),
        ("127.0.0.1:9", "http://127.0.0.1:9/echo"),
        ("[::1]:8080", "http://[::1]:8080/echo"),
        ("Example.COM", "http://Example.COM/echo"),
        # An empty port is valid (RFC 3986 3.2.3: port = *DIGIT) and left out (6.2.3).
        ("example.com:", "http://example.com/echo"),
        ("[::1]:", "http://[::1]/echo"),
    ],
)
def test_valid_host_is_used_as_given(probe, host, url):
    result = url_seen(probe, host=host)
    assert result.status == 200 and result.json()["url"] == url


def test_without_host_the_server_name_is_used(probe):
    result = url_seen(probe, host=None)
    assert result.status == 200 and result.json()["url"] == "http://testserver/echo"


PROXY_HEADERS = {
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Port": "8443",
    "X-Forwarded-Server": "evil.example",
    "X-Forwarded-Prefix": "/evil",
    "X-Forwarded-For": "6.6.6.6",
    "Forwarded": "for=6.6.6.6;host=evil.example;proto=https",
    "X-Host": "evil.example",
    "X-Original-URL": "/_private",
    "X-Rewrite-URL": "/_private",
}


# Werkzeug ProxyFix and Starlette's ProxyHeadersMiddleware are opt-in for this
# reason: any client can send these headers. By default they change nothing.
def test_proxy_headers_are_ignored_by_default(probe):
    result = url_seen(probe, headers=PROXY_HEADERS)
    assert result.status == 200
    assert result.json()["url"] == "http://testserver/echo"
    assert result.json()["path"] == "/echo"


# CVE-2018-14773 (Symfony/Zend): X-Original-URL / X-Rewrite-URL overrode the
# path used for routing, bypassing front-end access rules. Routing only ever
# uses the request target.
@pytest.mark.parametrize("header", ["X-Original-URL", "X-Rewrite-URL"])
def test_url_override_headers_never_change_the_route(probe, header):
    result = probe.call(make_environ("GET", "/only-get", headers={header: "/echo"}))
    assert result.status == 200 and result.json() == {"route": "only-get"}


@pytest.fixture(scope="module")
def trusting(tmp_path_factory) -> Probe:
    return Probe(tmp_path_factory.mktemp("trusting"), trust_forwarded=True)


def test_trusted_forwarded_headers_are_used(trusting):
    result = url_seen(trusting, headers={"X-Forwarded-Host": "public.example", "X-Forwarded-Proto": "https"})
    assert result.json()["url"] == "https://public.example/echo"


def test_trusted_forwarded_headers_take_the_last_value(trusting):
    # A proxy that appends to the header keeps whatever the client sent first:
    # only the last value is the proxy's own (as werkzeug's ProxyFix reads it).
    result = url_seen(
        trusting,
        headers={"X-Forwarded-Host": "evil.example, public.example", "X-Forwarded-Proto": "http, https"},
    )
    assert result.json()["url"] == "https://public.example/echo"


@pytest.mark.parametrize("value", ["public.example,", "public.example, ,", " public.example ,\t"])
def test_empty_forwarded_elements_do_not_count(trusting, value):
    assert url_seen(trusting, headers={"X-Forwarded-Host": value}).json()["url"] == "http://public.example/echo"


def test_a_trusted_forwarded_proto_is_case_insensitive(trusting):
    # RFC 3986 3.1: schemes are case-insensitive; the URL gets the canonical lower case.
    result = url_seen(trusting, headers={"X-Forwarded-Proto": "HTTPS"})
    assert result.json()["url"] == "https://testserver/echo"


@pytest.mark.parametrize("proto", ["javascript", "file", "gopher", "HTTPS://evil", ""])
def test_trusted_forwarded_proto_takes_only_http_or_https(trusting, proto):
    result = url_seen(trusting, headers={"X-Forwarded-Proto": proto})
    assert result.json()["url"].startswith("http://testserver/")


@pytest.mark.parametrize("host", ["evil.example/x", "a@b", "a b", "[::1"])
def test_trusted_forwarded_host_is_validated_like_host(trusting, host):
    assert_error(url_seen(trusting, headers={"X-Forwarded-Host": host}), 400)


def test_redirects_never_use_the_host_header(probe):
    # The trailing-slash 308 and redirect() write relative Locations, so a
    # poisoned Host (or a forwarded one) cannot retarget them.
    headers = {"X-Forwarded-Host": "evil.example"}
    result = probe.call(make_environ("GET", "/only-get/", host="evil.example", headers=headers, request_uri="/only-get/"))
    assert result.status == 308 and result.header("location") == "/only-get"
    result = probe.call(
        make_environ("GET", "/inject", host="evil.example", headers=headers, query="where=redirect&value=/next")
    )
    assert result.status == 307 and result.header("location") == "/next"


def test_forwarded_headers_through_waitress_are_ignored(probe_server):
    raw = raw_exchange(
        server_port(probe_server),
        b"GET /echo HTTP/1.1\r\nHost: good.example\r\nX-Forwarded-Proto: https\r\n"
        b"X-Forwarded-Host: evil.example\r\nForwarded: host=evil.example\r\nConnection: close\r\n\r\n",
    )
    status, _, body = split_response(raw)
    assert status == 200
    assert json.loads(body)["url"] == "http://good.example/echo"


def test_absolute_form_target_routes_on_its_path(probe_server):
    raw = raw_exchange(
        server_port(probe_server),
        b"GET http://good.example/seg/abc HTTP/1.1\r\nHost: good.example\r\nConnection: close\r\n\r\n",
    )
    status, _, body = split_response(raw)
    assert status == 200
    assert json.loads(body)["params"] == {"id": "abc"}
