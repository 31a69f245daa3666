"""Middleware that guards a path cannot be stepped around.

The matcher and the route lookup read the same decoded path segments
(design.md: middleware "runs on matching paths before the route lookup"), so
no spelling of a guarded URL reaches its route, or a public/ file under it,
without the middleware running.

Guards against: Next.js CVE-2025-29927 (an "x-middleware-subrequest" request
header made Next.js skip middleware entirely), and the matcher/router
disagreement class of bypasses (the matcher reading the raw path while the
router decodes it: "/%61dmin", "//admin", "/admin/" and friends).
"""
from __future__ import annotations

import pytest

from helpers import call, client as validated_client, make_app, make_environ

from .conftest import raw_exchange, split_response

SECRET = "admin-only-secret"

GUARDED_FILES = {
    "middleware.py": """
        from minirouter import Response

        config = {"matcher": ["/admin", "/admin/:path*"]}

        def middleware(request):
            if request.headers.get("authorization") != "Bearer ok":
                return Response.json({"error": "sign in"}, status=401)
            return None
        """,
    "(secure)/admin/route.py": f"""
        def GET():
            return {{"secret": "{SECRET}"}}

        def POST():
            return {{"secret": "{SECRET}"}}
        """,
    "(secure)/admin/[id]/route.py": f"""
        def GET(request, context):
            return {{"secret": "{SECRET}", "id": context.params["id"]}}
        """,
    "public-page/route.py": """
        def GET():
            return {"public": True}
        """,
}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    root = tmp_path_factory.mktemp("guarded")
    public = root / "public" / "admin"
    public.mkdir(parents=True)
    (public / "notes.txt").write_text(SECRET)
    return make_app(root, GUARDED_FILES, public_dir=str(root / "public"))


def test_the_guard_works_and_lets_the_owner_in(guarded):
    c = validated_client(guarded)
    assert c.get("/admin").status == 401
    assert c.get("/admin", headers={"Authorization": "Bearer ok"}).json() == {"secret": SECRET}
    assert c.get("/public-page").status == 200


BYPASS_TARGETS = [
    "/admin",
    "/admin/1",
    "/admin/notes.txt",
    "/%61dmin",
    "/%61dmin/1",
    "/%61%64%6d%69%6e",
    "/adm%69n/notes.txt",
    "//admin",
    "///admin/1",
    "/admin/",
    "/admin//",
    "/admin/1/",
    "/./admin",
    "/public-page/../admin",
    "/admin/%2e%2e",
    "/admin/..",
    "/admin%2F1",
    "/admin%2f",
    "/admin;x",
    "/admin/1;x",
    "/ADMIN",
    "/Admin/1",
    "/admin%00",
    "/admin%20",
    "/admin\\",
    "/admin%5C1",
    "/(secure)/admin",
    "/%28secure%29/admin",
    "/admin?x=/public-page",
    "/admin#frag",
]


def assert_not_served(result, target):
    assert result.status != 200 and SECRET.encode() not in result.body, (target, result)


@pytest.mark.parametrize("target", BYPASS_TARGETS)
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "OPTIONS"])
def test_no_spelling_of_a_guarded_path_skips_the_middleware(guarded, target, method):
    from urllib.parse import unquote_to_bytes

    path = target.split("?", 1)[0].split("#", 1)[0]
    environ = make_environ(method, unquote_to_bytes(path).decode("latin-1"), request_uri=target,
                           query=target.partition("?")[2])
    result = call(guarded, environ, validate=False)
    assert_not_served(result, target)
    if result.status == 204:  # OPTIONS may be answered, but only by the middleware's 401 or a 204 without the secret
        assert method == "OPTIONS"
    # And through a server that passes only the decoded PATH_INFO.
    result = call(guarded, make_environ(method, unquote_to_bytes(path).decode("latin-1")), validate=False)
    assert_not_served(result, target)


# CVE-2025-29927 and its relatives: headers that frameworks use internally
# for sub-requests, rewrites and prefetches carry no authority from a client.
@pytest.mark.parametrize(
    "header, value",
    [
        ("x-middleware-subrequest", "middleware"),
        ("x-middleware-subrequest", "middleware:middleware:middleware:middleware:middleware"),
        ("x-middleware-subrequest", "src/middleware:src/middleware:src/middleware:src/middleware:src/middleware"),
        ("x-middleware-next", "1"),
        ("x-middleware-rewrite", "/public-page"),
        ("x-middleware-prefetch", "1"),
        ("x-invoke-path", "/public-page"),
        ("x-matched-path", "/public-page"),
        ("x-now-route-matches", "1"),
        ("x-original-url", "/public-page"),
        ("x-rewrite-url", "/public-page"),
    ],
)
def test_internal_looking_headers_never_skip_the_middleware(guarded, header, value):
    result = validated_client(guarded).get("/admin/1", headers={header: value})
    assert result.status == 401 and SECRET not in result.text


def test_no_internal_header_leaks_into_responses(guarded):
    c = validated_client(guarded)
    for response in (c.get("/admin"), c.get("/admin", headers={"Authorization": "Bearer ok"}), c.get("/public-page")):
        leaked = [n for n, _ in response.headers.raw() if "middleware" in n.lower() or n.lower().startswith("x-minirouter")]
        assert leaked == [], leaked


def test_the_guard_holds_through_waitress(guarded):
    from conftest import LiveServer

    server = LiveServer(guarded, threads=2)
    try:
        port = int(server.server.effective_port)
        for target in ["/admin", "/%61dmin/1", "//admin", "/admin/notes.txt", "/adm%69n/notes.txt"]:
            raw = raw_exchange(port, f"GET {target} HTTP/1.1\r\nHost: a\r\n"
                                     "x-middleware-subrequest: middleware:middleware:middleware:middleware:middleware\r\n"
                                     "Connection: close\r\n\r\n".encode())
            status, _, body = split_response(raw)
            assert status != 200 and SECRET.encode() not in raw, (target, raw[:300])
    finally:
        server.settle()
        server.stop()


@pytest.fixture
def case_blind(guarded, monkeypatch):
    """public/ as a filesystem that ignores case (macOS, Windows) shows it:
    every name is found in any case, and realpath() keeps the case asked."""
    import os

    import minirouter

    public = guarded.public_dir
    real_isfile = os.path.isfile

    def isfile(path):
        path = os.fspath(path)
        if path.startswith(public + os.sep):
            return real_isfile(public + path[len(public):].lower())
        return real_isfile(path)

    monkeypatch.setattr(minirouter.os.path, "isfile", isfile)
    monkeypatch.setattr(minirouter.os.path, "realpath", os.fspath)
    return public


@pytest.mark.parametrize("segments", [["ADMIN", "notes.txt"], ["Admin", "Notes.txt"]])
def test_a_filesystem_that_ignores_case_does_not_open_guarded_files(case_blind, segments):
    # The matcher guards /admin; /ADMIN is another path to it, but not to such a filesystem.
    import minirouter

    assert minirouter._public_path(case_blind, segments, exact_names=False) is not None  # the hole, without the check
    assert minirouter._public_path(case_blind, segments, exact_names=True) is None
    assert minirouter._public_path(case_blind, ["admin", "notes.txt"], exact_names=True) is not None


def test_the_app_checks_names_as_written_where_the_filesystem_ignores_case(guarded, monkeypatch):
    import minirouter

    seen = []
    real = minirouter._public_path
    monkeypatch.setattr(minirouter, "_public_path", lambda *args: seen.append(args[2:]) or real(*args))
    monkeypatch.setattr(guarded, "_public_ignores_case", True)  # as App() finds on macOS
    assert call(guarded, make_environ("GET", "/ADMIN/notes.txt")).status == 404
    assert seen == [(True,)]


def test_case_is_only_checked_where_the_filesystem_ignores_it(guarded, tmp_path):
    import minirouter

    (tmp_path / "Public").mkdir()
    ignores = (tmp_path / "PUBLIC").exists()
    assert minirouter._ignores_case(str(tmp_path / "Public")) is ignores
    assert guarded._public_ignores_case is ignores


def test_a_name_written_decomposed_on_disk_is_found_by_its_composed_spelling(tmp_path):
    # HFS+ keeps names decomposed (NFD); browsers send them composed (NFC).
    import unicodedata

    import minirouter

    (tmp_path / unicodedata.normalize("NFD", "café.txt")).write_text("x")
    assert minirouter._names_on_disk(str(tmp_path), [unicodedata.normalize("NFC", "café.txt")])
    assert not minirouter._names_on_disk(str(tmp_path), ["CAFÉ.txt"])
