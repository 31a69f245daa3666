"""Route caching must never hand one client's answer to another, nor let a
client plant an answer for everyone (web cache poisoning through an input the
cache key leaves out).

Next.js, whose caching minirouter follows (design.md "Middleware, caching"),
keys a cached route handler on its URL and therefore refuses to cache one that
reads anything else of the request: with `revalidate = N`, "we will still bail
if dynamic data is accessed (cookies(), headers(), req.url ...) to prevent
accidental revalidate configuring" (vercel/next.js#65825); `force-static`
instead hands the handler a request stripped of them. The attacks these
cases guard against are the classic unkeyed-input ones (web cache poisoning
through Host / X-Forwarded-Host, and cache deception of per-user answers).
"""
from __future__ import annotations

import pytest

from helpers import make_app, client as validated_client, make_environ, call

CACHE_FILES = {
    "user/route.py": """
        revalidate = 60

        def GET(request):
            return {"user": request.cookies.get("session")}
        """,
    "user-jar/route.py": """
        from minirouter import cookies

        revalidate = 60

        def GET():
            session = cookies().get("session")
            return {"user": session}
        """,
    "auth/route.py": """
        revalidate = 60

        def GET(request):
            return {"auth": request.headers.get("authorization")}
        """,
    "auth-fn/route.py": """
        from minirouter import headers

        revalidate = 60

        def GET():
            return {"auth": headers().get("authorization")}
        """,
    "link/route.py": """
        revalidate = 60

        def GET(request):
            return {"self": request.url}
        """,
    "static-link/route.py": """
        dynamic = "force-static"

        def GET(request):
            return {"self": request.url}
        """,
    "static-user/route.py": """
        dynamic = "force-static"

        def GET(request):
            return {"user": request.cookies.get("session"), "auth": request.headers.get("authorization")}
        """,
    "plain/route.py": """
        import itertools

        revalidate = 60
        counter = itertools.count(1)

        def GET():
            return {"n": next(counter)}
        """,
}


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path, CACHE_FILES)


@pytest.fixture
def trusting(tmp_path):
    return make_app(tmp_path, CACHE_FILES, trust_forwarded=True)


def test_the_cache_is_on(app):
    # The control: a route that reads nothing of the request is cached.
    c = validated_client(app)
    assert c.get("/plain").json() == c.get("/plain").json() == {"n": 1}


@pytest.mark.parametrize("path", ["/user", "/user-jar"])
def test_a_cached_route_never_serves_one_clients_cookie_answer_to_another(app, path):
    c = validated_client(app)
    alice = c.get(path, cookies={"session": "alice-secret"})
    assert alice.json() == {"user": "alice-secret"}
    bob = c.get(path, cookies={"session": "bob"})
    assert "alice-secret" not in bob.text
    anonymous = c.get(path)
    assert "alice-secret" not in anonymous.text


@pytest.mark.parametrize("path", ["/auth", "/auth-fn"])
def test_a_cached_route_never_serves_one_clients_authorization_answer_to_another(app, path):
    c = validated_client(app)
    assert c.get(path, headers={"Authorization": "Bearer alice-token"}).json() == {"auth": "Bearer alice-token"}
    assert "alice-token" not in c.get(path).text
    assert "alice-token" not in c.get(path, headers={"Authorization": "Bearer bob"}).text


# Web cache poisoning through the Host header: the answer depends on Host
# (request.url) but the cache key does not include it, so one request with a
# forged Host plants links to the attacker's site for every later client.
def host_request(app, path, host, headers=None):
    environ = make_environ("GET", path, host=host, headers=headers)
    return call(app, environ)


@pytest.mark.parametrize("path", ["/link", "/static-link"])
def test_a_forged_host_is_never_cached_for_other_clients(app, path):
    poisoned = host_request(app, path, "evil.example")
    assert poisoned.status == 200
    victim = host_request(app, path, "good.example")
    assert b"evil.example" not in victim.body, victim.json()


@pytest.mark.parametrize("path", ["/link", "/static-link"])
def test_a_forged_forwarded_host_is_never_cached_for_other_clients(trusting, path):
    host_request(trusting, path, "good.example", headers={"X-Forwarded-Host": "evil.example"})
    victim = host_request(trusting, path, "good.example")
    assert b"evil.example" not in victim.body, victim.json()


def test_force_static_never_sees_cookies_or_authorization(app):
    c = validated_client(app)
    first = c.get("/static-user", cookies={"session": "alice-secret"}, headers={"Authorization": "Bearer t"})
    assert first.json() == {"user": None, "auth": None}
    assert c.get("/static-user").json() == {"user": None, "auth": None}
