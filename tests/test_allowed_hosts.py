"""App(allowed_hosts=[...]): a request for any other host is a 400.

A web page whose own domain name is made to resolve to 127.0.0.1 (DNS
rebinding) reaches a server on this machine as that domain, same-origin to
the browser; a forged Host would also reach request.url. The check takes the
host the request names, as request.url does: an absolute-form target's,
else Host, else (behind a trusted proxy) X-Forwarded-Host.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

import minirouter

from helpers import call, make_app, make_environ
from minirouter import App, TestClient

FILES = {
    "hello/route.py": "def GET(request):\n    return {'url': request.url}\n",
    "middleware.py": (
        "from minirouter import Response\n"
        "seen = []\n"
        "def middleware(request):\n"
        "    seen.append(request.path)\n"
    ),
}

ALLOWED = ["example.com", ".example.org", "[::1]", "127.0.0.1"]


@pytest.fixture
def app(tmp_path: Path) -> App:
    return make_app(tmp_path, FILES, allowed_hosts=ALLOWED)


def get(app: App, host: str | None, **extra: str):
    environ = make_environ("GET", "/hello", host=host)
    environ.update(extra)
    return call(app, environ)


@pytest.mark.parametrize("host", [
    "example.com", "EXAMPLE.com:8000", "example.com.", "example.org", "api.example.org", "a.b.example.org:443",
    "[::1]:8000", "[::1]", "127.0.0.1:8000",
])
def test_a_listed_host_is_served_whatever_its_port_case_or_final_dot(app: App, host: str) -> None:
    result = get(app, host)
    assert result.status == 200


@pytest.mark.parametrize("host, name", [
    ("rebind.attacker.example:8000", "rebind.attacker.example"), ("evil.example", "evil.example"),
    ("example.com.evil.example", "example.com.evil.example"), ("notexample.org", "notexample.org"),
    ("www.example.com", "www.example.com"), ("localhost:8000", "localhost"), ("[::2]", "[::2]"),
    ("127.0.0.2", "127.0.0.2"),
])
def test_any_other_host_is_a_400_that_names_it_before_the_middleware_runs(app: App, host: str, name: str) -> None:
    result = get(app, host)
    assert result.status == 400
    assert result.json() == {"error": f"the host {name} is not one this app serves (allowed_hosts)"}


def test_a_refused_host_is_logged_with_how_to_serve_it(app: App, caplog: pytest.LogCaptureFixture) -> None:
    # Whoever named it (an /etc/hosts entry, a tunnel) may never have set allowed_hosts: `serve` did.
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        assert get(app, "myhost.test:8000").status == 400
        assert get(app, "example.com").status == 200
    assert [r.getMessage() for r in caplog.records if r.name == "minirouter"] == [
        "refused a request for the host myhost.test: to serve it, add it to allowed_hosts "
        "(--allowed-host myhost.test on the command line; said once per name)"
    ]


def test_a_refused_host_is_logged_once_and_a_scan_of_names_stops_being_logged(
    app: App, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(minirouter, "REFUSED_HOSTS_LOGGED", 3)
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        for _ in range(3):
            assert get(app, "myhost.test").status == 400
        for number in range(10):
            assert get(app, f"scan{number}.test").status == 400  # each still refused
    messages = [r.getMessage() for r in caplog.records if r.name == "minirouter"]
    assert [m.split(":")[0] for m in messages] == [
        "refused a request for the host myhost.test", "refused a request for the host scan0.test",
        "refused a request for the host scan1.test",
        "refused requests for 3 host names; further ones are not logged",
    ]


def test_the_middleware_never_sees_a_refused_host(tmp_path: Path) -> None:
    from helpers import import_from_app, make_app_dir

    app_dir = make_app_dir(tmp_path, FILES)
    app = App(str(app_dir), allowed_hosts=ALLOWED)
    assert call(app, make_environ("GET", "/hello", host="evil.example")).status == 400
    assert call(app, make_environ("GET", "/hello", host="example.com")).status == 200
    assert import_from_app(app_dir, "middleware").seen == ["/hello"]


def test_the_host_of_an_absolute_form_target_and_the_host_header_are_both_checked(app: App) -> None:
    # RFC 9112 3.2.2: request.url takes the target's host; the Host header is still
    # what headers() hands the handler (a password-reset link built from it, say).
    refused = get(app, "example.com", REQUEST_URI="http://evil.example/hello")
    assert refused.status == 400 and "evil.example" in refused.json()["error"]
    forged = get(app, "evil.example", REQUEST_URI="http://example.com/hello")
    assert forged.status == 400 and "evil.example" in forged.json()["error"]
    served = get(app, "api.example.org", REQUEST_URI="http://example.com/hello")
    assert served.status == 200 and served.json() == {"url": "http://example.com/hello"}


@pytest.mark.parametrize("host", [".example.org", "a..example.org", "..example.org:80", "example.com:70000"])
def test_a_host_name_with_an_empty_label_is_no_host(app: App, host: str) -> None:
    # ".example.org" matched the ".example.org" entry, and request.url became http://.example.org/...
    assert (get(app, host).status, get(app, host).json()) == (400, {"error": "invalid Host header"})


def test_x_forwarded_host_is_checked_only_behind_a_trusted_proxy(tmp_path: Path) -> None:
    plain = make_app(tmp_path, FILES, allowed_hosts=ALLOWED)
    # Not trusted: the header is the client's own, and request.url does not read it either.
    assert get(plain, "example.com", HTTP_X_FORWARDED_HOST="evil.example").status == 200
    proxied = make_app(tmp_path, FILES, allowed_hosts=ALLOWED, trust_forwarded=True)
    assert get(proxied, "127.0.0.1:8000", HTTP_X_FORWARDED_HOST="evil.example").status == 400
    result = get(proxied, "127.0.0.1:8000", HTTP_X_FORWARDED_HOST="example.com")
    assert result.status == 200 and result.json() == {"url": "http://example.com/hello"}


def test_a_request_without_host_is_served_under_the_servers_own_name(app: App) -> None:
    # An HTTP/1.0 client: request.url names SERVER_NAME, which the server, not the client, chose.
    environ = make_environ("GET", "/hello", host=None)
    environ["SERVER_PROTOCOL"] = "HTTP/1.0"
    assert call(app, environ).status == 200


def test_without_allowed_hosts_every_host_is_served(tmp_path: Path) -> None:
    assert get(make_app(tmp_path, FILES), "anything.example").status == 200


def test_the_test_client_host_must_be_listed_too(tmp_path: Path) -> None:
    app = make_app(tmp_path, FILES, allowed_hosts=["example.com"])
    assert TestClient(app).get("/hello").status == 400  # http://testserver
    assert TestClient(app, base_url="https://example.com").get("/hello").json() == {"url": "https://example.com/hello"}


@pytest.mark.parametrize("hosts", ["example.com", ["example.com:8000"], [""], ["."], ["a b"], [None], [".com:1"],
                                   ["[::1]:80"], ["*"]])
def test_allowed_hosts_that_are_no_host_names_are_refused_at_start_up(tmp_path: Path, hosts) -> None:
    with pytest.raises(ValueError, match="allowed_hosts"):
        make_app(tmp_path, FILES, allowed_hosts=hosts)


@pytest.mark.parametrize("host", ["localhost:@evil.example", "[::1]@evil.example", "127.0.0.1:8000/x",
                                  "example.com:80:80", "example.com@evil.example"])
def test_a_host_header_that_is_no_host_is_a_400_though_it_starts_with_a_listed_name(app: App, host: str) -> None:
    # Cut at its first ':' it read as a listed name; a handler building links from
    # headers().get("host") would have pointed them at evil.example.
    result = get(app, host)
    assert (result.status, result.json()) == (400, {"error": "invalid Host header"})
