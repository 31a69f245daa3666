"""The route tree: filesystem conventions, matching, start-up errors, imports,
percent-decoding of the path (design.md, "The route tree")."""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest

from helpers import (
    App,
    assert_json_error,
    call,
    client,
    import_from_app,
    latin1,
    make_app,
    make_app_dir,
    make_environ,
)
from minirouter import _NO_CHILDREN, StartupError


def echo(tag: str) -> str:
    return (
        "def GET(request, context):\n"
        f"    return {{'route': {tag!r}, 'params': dict(context.params)}}\n"
    )


def get(app, path):
    return client(app).get(path)


# --- the table in design.md ----------------------------------------------------

def test_root_route(tmp_path):
    app = make_app(tmp_path, {"route.py": echo("root")})
    r = get(app, "/")
    assert r.status == 200
    assert r.json() == {"route": "root", "params": {}}


def test_nested_folders_nest_urls(tmp_path):
    app = make_app(tmp_path, {"hello/route.py": echo("hello"), "a/b/c/route.py": echo("abc")})
    assert get(app, "/hello").json()["route"] == "hello"
    assert get(app, "/a/b/c").json()["route"] == "abc"
    assert get(app, "/hello/x").status == 404
    assert get(app, "/a/b").status == 404
    assert get(app, "/").status == 404


def test_static_route_has_empty_params(tmp_path):
    app = make_app(tmp_path, {"hello/route.py": echo("hello")})
    assert get(app, "/hello").json()["params"] == {}


def test_dynamic_segment(tmp_path):
    app = make_app(tmp_path, {"comments/[id]/route.py": echo("one")})
    r = get(app, "/comments/42")
    assert r.status == 200
    assert r.json() == {"route": "one", "params": {"id": "42"}}
    assert get(app, "/comments").status == 404
    assert get(app, "/comments/42/x").status == 404


def test_catch_all_needs_one_segment(tmp_path):
    app = make_app(tmp_path, {"shop/[...slug]/route.py": echo("shop")})
    assert get(app, "/shop/a").json()["params"] == {"slug": ["a"]}
    assert get(app, "/shop/a/b").json()["params"] == {"slug": ["a", "b"]}
    assert get(app, "/shop/a/b/c/d").json()["params"] == {"slug": ["a", "b", "c", "d"]}
    assert get(app, "/shop").status == 404


def test_optional_catch_all(tmp_path):
    app = make_app(tmp_path, {"docs/[[...slug]]/route.py": echo("docs")})
    assert get(app, "/docs").json()["params"] == {"slug": []}
    assert get(app, "/docs/a").json()["params"] == {"slug": ["a"]}
    assert get(app, "/docs/a/b").json()["params"] == {"slug": ["a", "b"]}


def test_route_group_adds_no_segment(tmp_path):
    app = make_app(tmp_path, {
        "(admin)/users/route.py": echo("users"),
        "(shop)/cart/route.py": echo("cart"),
        "(home)/route.py": echo("home"),
    })
    assert get(app, "/users").json()["route"] == "users"
    assert get(app, "/cart").json()["route"] == "cart"
    assert get(app, "/").json()["route"] == "home"
    assert get(app, "/admin/users").status == 404
    assert get(app, "/(admin)/users").status == 404


def test_nested_groups(tmp_path):
    app = make_app(tmp_path, {"(a)/(b)/x/(c)/y/route.py": echo("xy")})
    assert get(app, "/x/y").json()["route"] == "xy"


def test_private_folders_are_never_routed(tmp_path):
    app = make_app(tmp_path, {
        "_lib/helpers.py": "X = 1\n",
        "_lib/route.py": echo("private"),
        "api/_internal/route.py": echo("private2"),
        "api/route.py": echo("api"),
    })
    assert get(app, "/_lib").status == 404
    assert get(app, "/_lib/helpers").status == 404
    assert get(app, "/api/_internal").status == 404
    assert get(app, "/api").status == 200


def test_percent_5F_folder_gives_underscore_segment(tmp_path):
    app = make_app(tmp_path, {"%5Fname/route.py": echo("underscore"), "a/%5Fb/route.py": echo("b")})
    assert get(app, "/_name").json()["route"] == "underscore"
    assert get(app, "/a/_b").json()["route"] == "b"


def test_colocated_files_are_not_routed(tmp_path):
    app = make_app(tmp_path, {
        "comments/data.py": "store = {}\n",
        "comments/notes.txt": "hello\n",
        "comments/route.py": echo("comments"),
    })
    assert get(app, "/comments").status == 200
    for path in ("/comments/data", "/comments/data.py", "/comments/notes.txt", "/comments/route.py", "/comments/route"):
        assert get(app, path).status == 404, path


def test_dotted_folder_names(tmp_path):
    app = make_app(tmp_path, {
        "robots.txt/route.py": echo("robots"),
        "api/v1.0/items/route.py": echo("v1"),
    })
    assert get(app, "/robots.txt").json()["route"] == "robots"
    assert get(app, "/api/v1.0/items").json()["route"] == "v1"
    assert get(app, "/robots").status == 404


def test_page_html_serves_get_and_head(tmp_path):
    app = make_app(tmp_path, {"profile/page.html": "<h1>Profile</h1>\n"})
    c = client(app)
    r = c.get("/profile")
    assert r.status == 200
    assert r.headers.get("content-type").lower().startswith("text/html")
    assert "<h1>Profile</h1>" in r.text
    h = c.head("/profile")
    assert h.status == 200
    assert h.content == b""
    p = c.post("/profile")
    assert p.status == 405
    assert p.headers.get("allow") == "GET, HEAD, OPTIONS"
    o = c.options("/profile")
    assert o.status == 204
    assert o.headers.get("allow") == "GET, HEAD, OPTIONS"


def test_route_beside_page_wins_and_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        app = make_app(tmp_path, {"both/page.html": "<p>page</p>\n", "both/route.py": echo("route")})
    assert get(app, "/both").json()["route"] == "route"
    warnings = [r for r in caplog.records if r.name == "minirouter" and r.levelno == logging.WARNING]
    assert any("both" in r.getMessage() for r in warnings), caplog.text


# --- matching order and backtracking -------------------------------------------

def test_static_before_param(tmp_path):
    app = make_app(tmp_path, {"items/new/route.py": echo("new"), "items/[id]/route.py": echo("id")})
    assert get(app, "/items/new").json()["route"] == "new"
    assert get(app, "/items/5").json() == {"route": "id", "params": {"id": "5"}}


def test_param_before_catch_all(tmp_path):
    app = make_app(tmp_path, {"x/[id]/route.py": echo("id"), "x/[...rest]/route.py": echo("rest")})
    assert get(app, "/x/a").json() == {"route": "id", "params": {"id": "a"}}
    assert get(app, "/x/a/b").json() == {"route": "rest", "params": {"rest": ["a", "b"]}}


def test_static_before_optional_catch_all(tmp_path):
    app = make_app(tmp_path, {"d/z/route.py": echo("z"), "d/[[...s]]/route.py": echo("opt")})
    assert get(app, "/d/z").json()["route"] == "z"
    assert get(app, "/d/q").json() == {"route": "opt", "params": {"s": ["q"]}}
    assert get(app, "/d").json() == {"route": "opt", "params": {"s": []}}


def test_param_before_optional_catch_all(tmp_path):
    app = make_app(tmp_path, {"d/[id]/route.py": echo("id"), "d/[[...s]]/route.py": echo("opt")})
    assert get(app, "/d/1").json()["route"] == "id"
    assert get(app, "/d/1/2").json() == {"route": "opt", "params": {"s": ["1", "2"]}}
    assert get(app, "/d").json() == {"route": "opt", "params": {"s": []}}


def test_backtracking_from_static_to_catch_all(tmp_path):
    # design.md: with files/special/route.py and files/[...path]/route.py,
    # /files/special/x is served by the catch-all.
    app = make_app(tmp_path, {"files/special/route.py": echo("special"), "files/[...path]/route.py": echo("all")})
    assert get(app, "/files/special").json()["route"] == "special"
    assert get(app, "/files/special/x").json() == {"route": "all", "params": {"path": ["special", "x"]}}


def test_backtracking_from_static_to_param(tmp_path):
    app = make_app(tmp_path, {"b/new/x/route.py": echo("newx"), "b/[id]/y/route.py": echo("idy")})
    assert get(app, "/b/new/x").json()["route"] == "newx"
    assert get(app, "/b/new/y").json() == {"route": "idy", "params": {"id": "new"}}


def test_backtracking_when_static_folder_has_no_route(tmp_path):
    app = make_app(tmp_path, {"c/deep/inner/route.py": echo("inner"), "c/[id]/route.py": echo("id")})
    assert get(app, "/c/deep").json() == {"route": "id", "params": {"id": "deep"}}
    assert get(app, "/c/deep/inner").json()["route"] == "inner"


def test_backtracking_from_param_to_catch_all(tmp_path):
    app = make_app(tmp_path, {"a/[id]/edit/route.py": echo("edit"), "a/[...rest]/route.py": echo("rest")})
    assert get(app, "/a/1/edit").json() == {"route": "edit", "params": {"id": "1"}}
    assert get(app, "/a/1/view").json() == {"route": "rest", "params": {"rest": ["1", "view"]}}


def test_param_and_catch_all_names_may_differ(tmp_path):
    # `[id]` beside `[...rest]` is fine (design.md).
    app = make_app(tmp_path, {"p/[id]/route.py": echo("id"), "p/[...rest]/route.py": echo("rest")})
    assert get(app, "/p/1").status == 200


def test_final_param_beside_static_folders(tmp_path):
    # A path of static folders and a last segment is looked up without walking
    # the trie (RouteTree.levels); these are the cases where that must not win.
    app = make_app(tmp_path, {
        "d/[id]/route.py": echo("id"),
        "d/x/[[...rest]]/route.py": echo("opt"),  # d/x itself is this route's
        "e/[id]/route.py": echo("e-id"),
        "e/new/route.py": echo("e-new"),
        "e/deep/inner/route.py": echo("inner"),
        "[top]/route.py": echo("top"),
        "(group)/g/[slug]/route.py": echo("grouped"),
    })
    assert get(app, "/d/x").json() == {"route": "opt", "params": {"rest": []}}
    assert get(app, "/d/y").json() == {"route": "id", "params": {"id": "y"}}
    assert get(app, "/e/new").json()["route"] == "e-new"
    assert get(app, "/e/deep").json() == {"route": "e-id", "params": {"id": "deep"}}
    assert get(app, "/e/7").json() == {"route": "e-id", "params": {"id": "7"}}
    assert get(app, "/e/caf%C3%A9").json()["params"] == {"id": "café"}  # decoded as ever
    assert get(app, "/e/a%2Fb").json()["params"] == {"id": "a/b"}
    assert get(app, "/e/%ZZ").status == 400
    assert get(app, "/e/7/more").status == 404
    assert get(app, "/solo").json() == {"route": "top", "params": {"top": "solo"}}
    assert get(app, "/g/post-1").json() == {"route": "grouped", "params": {"slug": "post-1"}}
    # An empty segment is never a value: the path is redirected without it.
    assert (get(app, "//e/7").status, get(app, "//e/7").headers["location"]) == (308, "/e/7")
    assert get(app, "/").status == 404  # no root route: "/" is not [top]


def test_root_route_beside_a_root_param_and_pages(tmp_path):
    app = make_app(tmp_path, {
        "route.py": echo("root"),
        "[top]/route.py": echo("top"),
        "about/page.html": "<p>about</p>\n",
        "docs/[slug]/page.html": "<p>doc</p>\n",
    })
    assert get(app, "/").json() == {"route": "root", "params": {}}
    assert get(app, "/x").json() == {"route": "top", "params": {"top": "x"}}
    assert get(app, "/about").text == "<p>about</p>\n"
    assert get(app, "/docs/intro").text == "<p>doc</p>\n"
    # Nodes without static children share one empty dict, which no build may fill.
    assert _NO_CHILDREN == {}


def test_final_param_under_an_encoded_static_folder(tmp_path):
    app = make_app(tmp_path, {"caf\u00e9/[id]/route.py": echo("cafe"), "a%20b/[id]/route.py": echo("pct")})
    assert get(app, "/caf%C3%A9/1").json() == {"route": "cafe", "params": {"id": "1"}}
    assert get(app, "/a%2520b/2").json() == {"route": "pct", "params": {"id": "2"}}
    assert get(app, "/a%20b/2").status == 404


def test_several_params_in_one_path(tmp_path):
    app = make_app(tmp_path, {"u/[user]/posts/[post]/route.py": echo("post")})
    assert get(app, "/u/ann/posts/7").json()["params"] == {"user": "ann", "post": "7"}


# --- start-up errors -------------------------------------------------------------

def startup_error(tmp_path, files) -> str:
    d = make_app_dir(tmp_path, files)
    with pytest.raises(Exception) as info:
        App(str(d))
    return str(info.value)


def test_error_two_groups_same_url(tmp_path):
    msg = startup_error(tmp_path, {"(a)/x/route.py": echo("a"), "(b)/x/route.py": echo("b")})
    assert "(a)/x" in msg and "(b)/x" in msg, msg


def test_error_group_route_same_as_root_route(tmp_path):
    msg = startup_error(tmp_path, {"(a)/route.py": echo("a"), "route.py": echo("root")})
    assert "(a)" in msg, msg


def test_error_two_param_names_same_level(tmp_path):
    msg = startup_error(tmp_path, {"p/[id]/route.py": echo("id"), "p/[slug]/route.py": echo("slug")})
    assert "[id]" in msg and "[slug]" in msg, msg


def test_error_two_param_names_same_level_deeper_routes(tmp_path):
    msg = startup_error(tmp_path, {"p/[id]/a/route.py": echo("a"), "p/[slug]/b/route.py": echo("b")})
    assert "[id]" in msg and "[slug]" in msg, msg


def test_error_two_catch_all_names_same_level(tmp_path):
    msg = startup_error(tmp_path, {"p/[...a]/route.py": echo("a"), "p/[...b]/route.py": echo("b")})
    assert "[...a]" in msg and "[...b]" in msg, msg


def test_error_same_param_name_twice_in_path(tmp_path):
    msg = startup_error(tmp_path, {"[id]/x/[id]/route.py": echo("id")})
    assert "[id]/x/[id]" in msg, msg


def test_error_catch_all_beside_optional_catch_all(tmp_path):
    msg = startup_error(tmp_path, {"p/[...a]/route.py": echo("a"), "p/[[...b]]/route.py": echo("b")})
    assert "[...a]" in msg and "[[...b]]" in msg, msg


def test_error_route_beside_optional_catch_all(tmp_path):
    msg = startup_error(tmp_path, {"x/route.py": echo("x"), "x/[[...slug]]/route.py": echo("opt")})
    assert "[[...slug]]" in msg and "x/route.py" in msg, msg


def test_error_catch_all_not_last(tmp_path):
    msg = startup_error(tmp_path, {"s/[...rest]/more/route.py": echo("more")})
    assert "[...rest]/more" in msg, msg


def test_error_optional_catch_all_not_last(tmp_path):
    msg = startup_error(tmp_path, {"s/[[...rest]]/more/route.py": echo("more")})
    assert "[[...rest]]/more" in msg, msg


def test_error_route_fails_to_import(tmp_path):
    msg = startup_error(tmp_path, {"ok/route.py": echo("ok"), "broken/route.py": "def GET(:\n"})
    assert "broken/route.py" in msg, msg


def test_error_route_raises_on_import(tmp_path):
    msg = startup_error(tmp_path, {"boom/route.py": "raise RuntimeError('nope')\ndef GET():\n    return {}\n"})
    assert "boom/route.py" in msg, msg


def test_error_route_without_handler(tmp_path):
    msg = startup_error(tmp_path, {"empty/route.py": "def helper():\n    return 1\n"})
    assert "empty/route.py" in msg, msg


def test_error_route_with_only_lowercase_or_unknown_names(tmp_path):
    msg = startup_error(tmp_path, {"lower/route.py": "def get():\n    return {}\ndef FOO():\n    return {}\n"})
    assert "lower/route.py" in msg, msg
    assert "it defines get(): handlers are named in upper case" in msg, msg


def test_a_handler_that_names_a_param_as_its_second_argument_warns(tmp_path, caplog):
    # Flask's habit, def GET(request, id): the second argument is the Context.
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        make_app(tmp_path, {
            "items/[id]/route.py": "def GET(request, id):\n    return {}\ndef PUT(request, context):\n    return {}\n",
            "docs/[[...slug]]/route.py": "def GET(request, slug):\n    return {}\n",
            "users/[user]/route.py": "def GET(request, ctx):\n    return {}\n",
            "todos/[id]/route.py": "def GET(id):\n    return {}\n",  # the request, named id
            "notes/[request]/route.py": "def GET(request):\n    return {}\n",
        })
    warnings = [r.getMessage() for r in caplog.records if r.name == "minirouter" and r.levelno == logging.WARNING]
    assert any("items/[id]/route.py: GET(request, id) is handed the context" in m
               and "context.params['id']" in m for m in warnings), warnings
    assert any("GET(request, slug)" in m for m in warnings), warnings
    assert any("todos/[id]/route.py: GET(id) is handed the request, not the id" in m for m in warnings), warnings
    assert not any("PUT" in m or "users/" in m or "notes/" in m for m in warnings), warnings


def test_lowercase_method_name_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        app = make_app(tmp_path, {"typo/route.py": "def GET():\n    return {}\ndef post():\n    return {}\n"})
    records = [r for r in caplog.records if r.name == "minirouter" and r.levelno == logging.WARNING]
    assert any("post" in r.getMessage() for r in records), caplog.text
    c = client(app)
    assert c.get("/typo").status == 200
    assert c.post("/typo").status == 405


def test_nextjs_segment_options_minirouter_does_not_use_warn(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        app = make_app(tmp_path, {
            "edge/route.py": "runtime = 'edge'\nmaxDuration = 5\ndef GET():\n    return {}\n",
            "plain/route.py": "revalidate = 5\ndef GET():\n    return {}\n",
        })
    warnings = [r.getMessage() for r in caplog.records if r.name == "minirouter" and r.levelno == logging.WARNING]
    assert any("edge/route.py sets runtime" in m and "no effect" in m for m in warnings), warnings
    assert any("edge/route.py sets maxDuration" in m for m in warnings), warnings
    assert not any("plain/route.py" in m for m in warnings), warnings
    assert client(app).get("/edge").status == 200


def test_a_mistyped_route_or_page_file_warns(tmp_path, caplog):
    # Only route.py and page.html are routed; a near miss (or a file kept from a
    # Next.js project) would otherwise be a silent 404.
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        app = make_app(tmp_path, {
            "a/routes.py": echo("a"),
            "b/Route.py": echo("b"),
            "c/route.ts": "export function GET() {}\n",
            "d/page.htm": "<p>d</p>",
            "e/route.py": echo("e"),
            "e/route.ts": "export function GET() {}\n",  # beside the real one: nothing to say
            "f/data.py": "X = 1\n",
        })
    warned = sorted(r.getMessage() for r in caplog.records if r.name == "minirouter" and r.levelno == logging.WARNING)
    assert len(warned) == 4, warned
    for folder, meant in (("a", "route.py"), ("b", "route.py"), ("c", "route.py"), ("d", "page.html")):
        assert any(f"/{folder}/" in message and f"only files named {meant} are" in message for message in warned), warned
    assert [route.url for route in app.route_table()] == ["/e"]


def test_a_nextjs_slot_or_intercepting_folder_warns_that_it_is_a_url_segment_here(tmp_path, caplog):
    # Next.js leaves @modal and (.)photo out of its URLs; here they are folders like any other.
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        app = make_app(tmp_path, {
            "@modal/login/route.py": echo("login"),
            "feed/(.)photo/route.py": echo("photo"),
            "(..)x/route.py": echo("x"),
            "(shop)/cart/route.py": echo("cart"),  # a route group: nothing to say
        })
    warned = [r.getMessage() for r in caplog.records if r.name == "minirouter" and r.levelno == logging.WARNING]
    assert len(warned) == 3, warned
    assert any("parallel-route slot" in m and "'@modal'" in m for m in warned), warned
    assert sum("intercepting route" in m for m in warned) == 2, warned
    assert get(app, "/@modal/login").status == 200 and get(app, "/cart").status == 200


def test_no_error_for_valid_tree(tmp_path):
    app = make_app(tmp_path, {
        "route.py": echo("root"),
        "shop/[...slug]/route.py": echo("shop"),
        "docs/[[...slug]]/route.py": echo("docs"),
        "comments/[id]/route.py": echo("c"),
        "comments/route.py": echo("cs"),
        "(g)/about/route.py": echo("about"),
    })
    assert get(app, "/about").status == 200


# --- imports: the app folder is a package ----------------------------------------

SHARED = {
    "comments/__init__.py": "",
    "comments/data.py": "store = {'count': 0}\n",
    "comments/route.py": """
        from .data import store

        def POST():
            store['count'] += 1
            return {'count': store['count'], 'id': id(store)}
        """,
    "stats/route.py": """
        from PKG.comments.data import store
        from PKG.comments import data as data_module

        def GET():
            return {'count': store['count'], 'id': id(store), 'same': data_module.store is store}
        """,
    "lib/[id]/route.py": """
        from PKG.comments.data import store
        from PKG._lib.util import double

        def GET(request, context):
            return {'count': store['count'], 'double': double(store['count'])}
        """,
    "_lib/util.py": """
        def double(n):
            return 2 * n
        """,
}


def test_relative_and_absolute_imports_share_one_module(tmp_path):
    d = make_app_dir(tmp_path, SHARED)
    app = App(str(d))
    c = client(app)
    first = c.post("/comments").json()
    second = c.post("/comments").json()
    assert second["count"] == 2
    stats = c.get("/stats").json()
    assert stats["count"] == 2
    assert stats["id"] == first["id"]
    assert stats["same"] is True
    assert c.get("/lib/1").json() == {"count": 2, "double": 4}
    # The test sees the very same module object as the routes.
    data = import_from_app(d, "comments.data")
    assert data.store["count"] == 2


def test_package_needs_no_init_file(tmp_path):
    files = {k: v for k, v in SHARED.items() if not k.endswith("__init__.py")}
    app = App(str(make_app_dir(tmp_path, files)))
    c = client(app)
    c.post("/comments")
    assert c.get("/stats").json()["count"] == 1


def test_each_app_imports_routes_afresh(tmp_path):
    d = make_app_dir(tmp_path, SHARED)
    c1 = client(App(str(d)))
    c1.post("/comments")
    c1.post("/comments")
    c2 = client(App(str(d)))
    assert c2.post("/comments").json()["count"] == 1


def test_a_route_or_middleware_imported_by_another_route_runs_once(tmp_path):
    # a/route.py is scanned first and imports b/route.py and middleware.py:
    # the App must reuse those modules, not run them a second time.
    d = make_app_dir(tmp_path, {
        "a/route.py": """
            from PKG.b.route import STATE
            from PKG.middleware import SEEN

            def GET():
                return {"state": len(STATE), "seen": len(SEEN)}
            """,
        "b/route.py": """
            from PKG._lib.runs import RUNS
            RUNS.append("b")
            STATE = []

            def POST():
                STATE.append(1)
                return {"state": len(STATE)}
            """,
        "middleware.py": """
            from PKG._lib.runs import RUNS
            RUNS.append("middleware")
            SEEN = []

            def middleware(request):
                SEEN.append(request.path)
            """,
        "_lib/runs.py": "RUNS = []\n",
    })
    c = client(App(str(d)))
    c.post("/b")
    c.post("/b")
    assert c.get("/a").json() == {"state": 2, "seen": 3}
    assert sorted(import_from_app(d, "_lib.runs").RUNS) == ["b", "middleware"]


def test_an_app_folder_without_routes_gets_a_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="minirouter")
    make_app(tmp_path, {"_lib/helpers.py": "X = 1\n", "notes.txt": "not a route"})
    assert any("has no route.py or page.html" in r.getMessage() for r in caplog.records)
    caplog.clear()
    make_app(tmp_path, {"hello/route.py": echo("hello")})
    assert not any("has no route.py" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", ["csv", "sqlite3", "html", "json"])
def test_an_app_folder_named_like_a_standard_module_is_a_startup_error(tmp_path, name):
    # Imported or not yet: the app would be that module for the whole process.
    import sys

    with pytest.raises(StartupError, match="rename the app folder"):
        make_app(tmp_path, {"hello/route.py": f"import {name}\ndef GET():\n    return {{}}\n"}, name=name)
    module = sys.modules.get(name)
    assert module is None or not getattr(module, "__minirouter_app__", False)


def test_two_folders_with_one_package_name_are_a_startup_error(tmp_path):
    # A dot cannot be part of a module name, so a.b/ is the package a%2Eb.
    d = make_app_dir(tmp_path, {"a.b/route.py": echo("dot"), "a%2Eb/route.py": echo("escape")})
    with pytest.raises(StartupError, match="rename one of the folders"):
        App(str(d))


def test_route_table(tmp_path):
    app = make_app(tmp_path, {
        "comments/[id]/route.py": "def GET(request, context):\n    return {}\ndef PATCH():\n    return {}\n",
        "shop/[...slug]/route.py": echo("shop"),
        "docs/[[...slug]]/route.py": echo("docs"),
        "profile/page.html": "<p>x</p>\n",
    })
    table = {info.url: info for info in app.route_table()}
    assert set(table) == {"/comments/[id]", "/shop/[...slug]", "/docs/[[...slug]]", "/profile"}
    c = table["/comments/[id]"]
    assert c.kind == "route"
    assert c.methods == ("GET", "HEAD", "OPTIONS", "PATCH")
    assert set(c.handlers) == {"GET", "PATCH"}
    assert c.params == [("id", "single")]
    assert c.file.endswith("comments/[id]/route.py")
    assert table["/shop/[...slug]"].params == [("slug", "catchall")]
    assert table["/docs/[[...slug]]"].params == [("slug", "optional")]
    assert table["/profile"].kind == "page"
    assert table["/profile"].module is None


# --- percent-decoding of the path -------------------------------------------------

ID_ROUTE = {"comments/[id]/route.py": echo("id"), "hello/route.py": echo("hello")}


@pytest.fixture
def id_app(tmp_path):
    return make_app(tmp_path, ID_ROUTE)


def test_encoded_slash_from_request_uri(id_app):
    env = make_environ("GET", "/comments/a/b", request_uri="/comments/a%2Fb")
    r = call(id_app, env)
    assert r.status == 200
    assert r.json()["params"] == {"id": "a/b"}


def test_encoded_slash_from_raw_uri(id_app):
    env = make_environ("GET", "/comments/a/b", raw_uri="/comments/a%2Fb")
    r = call(id_app, env)
    assert r.status == 200
    assert r.json()["params"] == {"id": "a/b"}


def test_utf8_from_request_uri(id_app):
    env = make_environ("GET", latin1("/comments/café"), request_uri="/comments/caf%C3%A9?x=1", query="x=1")
    r = call(id_app, env)
    assert r.json()["params"] == {"id": "café"}


def test_utf8_from_path_info_only(id_app):
    env = make_environ("GET", latin1("/comments/café"))
    r = call(id_app, env)
    assert r.status == 200
    assert r.json()["params"] == {"id": "café"}


def test_each_segment_decoded_once(id_app):
    env = make_environ("GET", "/comments/%41", request_uri="/comments/%2541")
    assert call(id_app, env).json()["params"] == {"id": "%41"}


def test_path_info_is_not_decoded_again(id_app):
    # PATH_INFO is already decoded by the server (PEP 3333): a literal %41 stays.
    env = make_environ("GET", "/comments/%41")
    assert call(id_app, env).json()["params"] == {"id": "%41"}


def test_static_segment_matches_after_decoding(id_app):
    env = make_environ("GET", "/hello", request_uri="/h%65llo")
    r = call(id_app, env)
    assert r.status == 200
    assert r.json()["route"] == "hello"


def test_testclient_non_ascii_path(id_app):
    assert client(id_app).get("/comments/café").json()["params"] == {"id": "café"}
    assert client(id_app).get("/comments/caf%C3%A9").json()["params"] == {"id": "café"}


@pytest.mark.parametrize("raw", ["/comments/%zz", "/comments/%", "/comments/%4", "/comments/%C3", "/comments/%E9", "/comments/%FF%FE"])
def test_malformed_escape_or_bad_utf8_is_400(id_app, raw):
    env = make_environ("GET", "/comments/x", request_uri=raw)
    r = call(id_app, env)
    assert_json_error(r.status, r.header, r.body, 400)


def test_bad_utf8_in_path_info_is_400(id_app):
    env = make_environ("GET", "/comments/\xe9")  # a lone latin-1 byte: not UTF-8
    r = call(id_app, env)
    assert_json_error(r.status, r.header, r.body, 400)


# --- trailing slash -----------------------------------------------------------------

def location_parts(location: str):
    parts = urlsplit(location)
    assert parts.netloc in ("", "testserver"), location
    return parts.path, parts.query


def test_trailing_slash_redirects_308(tmp_path):
    app = make_app(tmp_path, {"comments/route.py": echo("c"), "comments/[id]/route.py": echo("id")})
    c = client(app)
    r = c.get("/comments/")
    assert r.status == 308
    assert location_parts(r.headers.get("location")) == ("/comments", "")
    r = c.get("/comments/?a=1&b=2")
    assert r.status == 308
    assert location_parts(r.headers.get("location")) == ("/comments", "a=1&b=2")
    r = c.post("/comments/7/")
    assert r.status == 308
    assert location_parts(r.headers.get("location")) == ("/comments/7", "")


def test_root_is_not_redirected(tmp_path):
    app = make_app(tmp_path, {"route.py": echo("root")})
    assert get(app, "/").status == 200


def test_trailing_slash_never_redirects_off_site(tmp_path):
    app = make_app(tmp_path, {"route.py": echo("root")})
    for target in ("//evil.example/", "//evil.example//", "/\\evil.example/"):
        env = make_environ("GET", "/x", request_uri=target)
        r = call(app, env)
        if r.status in (301, 302, 303, 307, 308):
            location = r.header("location")
            assert not location.startswith("//") and not location.startswith("/\\"), location
            assert urlsplit(location).netloc in ("", "testserver"), location


def test_repeated_slashes_redirect_to_the_path_without_them(tmp_path):
    # As Next.js and Flask (werkzeug's merge_slashes) answer /a//b: 308 to /a/b.
    root = tmp_path / "site"
    (root / "public").mkdir(parents=True)
    (root / "public" / "logo.txt").write_text("logo")
    app = make_app(root, {
        "comments/[id]/route.py": echo("id"), "docs/[...slug]/route.py": echo("docs"),
        "hello/route.py": echo("hello") + "def POST():\n    return {}\n",
    }, public_dir=str(root / "public"))
    c = client(app)
    for target, location in [
        ("/comments//4", "/comments/4"), ("//comments/4", "/comments/4"), ("/docs/a//b", "/docs/a/b"),
        ("///hello///?q=1&r=2", "/hello?q=1&r=2"), ("//logo.txt", "/logo.txt"), ("/hello//", "/hello"),
    ]:
        r = c.get(target)
        assert (r.status, location_parts(r.headers.get("location"))) == (308, tuple(location.partition("?")[::2])), target
    assert c.post("//hello").status == 308  # 308 keeps the method and body
    assert c.head("/comments//4").status == 308


def test_repeated_slashes_are_a_404_where_the_clean_path_is_one_too(tmp_path):
    # No redirect to a page that is not there: //etc/passwd is a plain 404.
    app = make_app(tmp_path, {"comments/[id]/route.py": echo("id")})
    c = client(app)
    for target in ["//etc/passwd", "/comments//4/more", "//evil.example", "//../comments/4", "/nowhere//x"]:
        r = c.get(target)
        assert_json_error(r.status, r.headers.get, r.content, 404)


def test_repeated_slashes_behind_middleware_and_rewrites(tmp_path):
    app = make_app(tmp_path, {
        "middleware.py": (
            "from minirouter import Response\n"
            "def middleware(request):\n"
            "    if request.path == '/old':\n"
            "        return Response.rewrite('/a//b')\n"
            "    return Response.next(headers={'X-Seen': request.path})\n"
        ),
        "a/b/route.py": echo("ab"),
    })
    c = client(app)
    r = c.get("/a//b")
    assert (r.status, r.headers.get("location"), r.headers.get("x-seen")) == (308, "/a/b", "/a//b")
    assert c.get("/old").status == 404  # a rewrite is the app's own path: never redirected


def test_trie_is_built_once(tmp_path):
    # A request never touches the filesystem to route: files added or removed
    # after App() do not change what is served.
    d = make_app_dir(tmp_path, {"hello/route.py": echo("hello")})
    app = App(str(d))
    (d / "late").mkdir()
    (d / "late" / "route.py").write_text(echo("late"), encoding="utf-8")
    (d / "hello" / "route.py").unlink()
    c = client(app)
    assert c.get("/late").status == 404
    assert c.get("/hello").json()["route"] == "hello"


# --- start-up: the garbage collector waits while route files import -----------

GC_PROBE = (
    "import gc\n"
    "COLLECTOR_ON_AT_IMPORT = gc.isenabled()\n"
    "def GET():\n"
    "    return {'collector_on_at_import': COLLECTOR_ON_AT_IMPORT}\n"
)


@pytest.mark.parametrize("on_before", [True, False])
def test_collector_paused_during_scan_and_restored(tmp_path, on_before):
    import gc

    was_on = gc.isenabled()
    (gc.enable if on_before else gc.disable)()
    try:
        app = make_app(tmp_path, {"probe/route.py": GC_PROBE})
        assert gc.isenabled() is on_before
    finally:
        (gc.enable if was_on else gc.disable)()
    assert get(app, "/probe").json() == {"collector_on_at_import": False}


def test_collector_restored_when_a_route_fails_to_import(tmp_path):
    import gc

    assert gc.isenabled()
    startup_error(tmp_path, {"boom/route.py": "raise RuntimeError('nope')\n"})
    assert gc.isenabled()


def test_a_lower_case_5f_escape_gives_a_leading_underscore_too(tmp_path):
    app = make_app(tmp_path, {"%5fname/route.py": "def GET():\n    return {'ok': 1}\n"})
    assert client(app).get("/_name").json() == {"ok": 1}
