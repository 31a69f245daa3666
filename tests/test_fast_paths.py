"""The objects the app makes for every request without calling their class
(minirouter's _new_object: calling a class costs CPython 3.11 a second run of
its interpreter) must be the objects the class would make, field for field; and
the attributes read for every request must be the object's own, which CPython
3.11 reads much faster than a class default. And start-up imports route files
compiled ahead of time, as the README's Deploying section advises where Python
may not write __pycache__ itself."""
from __future__ import annotations

import contextvars
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import minirouter
from helpers import client, files_compiled_at_start, make_app
from minirouter import Context, Limits, Request, Response


def test_the_apps_request_has_the_fields_request_gives_it_and_its_context():
    environ = {"REQUEST_METHOD": "PUT", "PATH_INFO": "/a b", "REQUEST_URI": "/a%20b"}
    limits = Limits(max_body_size=10)
    context = contextvars.copy_context()
    made = minirouter._request_for_app(environ, "PUT", "/a b", "/a%20b", limits, True, context)
    called = Request(environ, "/a b", "/a%20b", limits, True)
    assert type(made) is Request
    assert {**vars(called), "_context": context} == vars(made)
    # The two read for every request are the object's own, not the class's None.
    assert vars(made)["_jar"] is None and vars(made)["_uploads"] is None
    assert vars(Request(environ))["_jar"] is None


@pytest.mark.parametrize("params", [None, {}, {"id": "4"}])
def test_a_handlers_context_is_the_one_context_gives(params):
    made = minirouter._context_for(params)
    called = Context(params)
    assert type(made) is Context
    assert all(getattr(made, name) == getattr(called, name) for name in Context.__slots__)
    if params is not None:
        assert made.params is params  # the route's own dict, as Context keeps it
    else:
        assert made.params is not minirouter._context_for(None).params  # never one dict shared by requests


@pytest.mark.parametrize("data", [{"id": 1}, [1, "é"], {"lone": "\ud800"}, {}])
@pytest.mark.parametrize("status", [200, 201])
def test_response_json_made_without_the_class_equals_the_one_made_with_it(data, status):
    quick = Response.json(data, status)  # no headers: the cheaper way
    general = Response.json(data, status, headers={})  # through Response(None, status, {})
    assert vars(quick) == vars(general)
    assert type(quick) is Response and quick.headers["content-type"] == "application/json"

    class MyResponse(Response):
        pass

    assert type(MyResponse.json(data, status)) is MyResponse  # a subclass's json() still makes its own kind
    assert vars(MyResponse.json(data, status)) == vars(quick)


def test_every_response_has_its_own_middleware_field():
    made = [Response(), Response("x"), Response(b"x"), Response("x", 201, {"X-A": "1"}), Response.json({}),
            Response.json({}, headers={"X-A": "1"}), Response.redirect("/a"), Response.next(),
            Response.rewrite("/a"), Response(iter([b"a"])), minirouter._copy_of(Response("x"))]
    for response in made:
        assert "_middleware" in vars(response), response
    assert Response.next()._middleware is not None and Response("x")._middleware is None


def test_the_cheaper_objects_serve_as_before(tmp_path):
    app = make_app(tmp_path, {
        "items/[id]/route.py": """
            def GET(request, context):
                return {"id": context.params["id"], "path": request.path, "method": request.method}
            """,
        "plain/route.py": """
            from minirouter import Response

            def GET():
                return Response("plain")
            """,
        "next/route.py": """
            from minirouter import Response

            def GET():
                return Response.next()
            """,
    })
    web = client(app)
    answer = web.get("/items/%C3%A9")
    assert answer.status == 200 and answer.json() == {"id": "é", "path": "/items/é", "method": "GET"}
    assert answer.headers["content-type"] == "application/json"
    assert web.get("/plain").text == "plain"
    assert web.get("/next").status == 500  # only middleware may return Response.next()


def test_routes_compiled_ahead_are_imported_without_compiling_where_python_writes_no_bytecode(tmp_path):
    root = Path(__file__).resolve().parent.parent
    app_dir = tmp_path / "app"
    shutil.copytree(root / "app", app_dir, ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    build = f"import sys\nsys.path.insert(0, {str(root)!r})\nimport minirouter\nminirouter.App({str(app_dir)!r})"
    assert files_compiled_at_start(build, app_dir) > 5  # every route.py, at every start
    assert files_compiled_at_start(build, app_dir) > 5  # (none was written)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(app_dir)], env=env, check=True, timeout=60)
    assert files_compiled_at_start(build, app_dir) == 0
