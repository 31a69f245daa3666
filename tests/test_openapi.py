"""The OpenAPI 3.1 document built from the file tree, and App(openapi_url=...) serving it."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from helpers import ROOT, client, make_app
from minirouter import App, openapi_document

FILES = {
    "route.py": '''
        def GET(request):
            """The API root."""
            return {}
        ''',
    "comments/route.py": '''
        def GET(request):
            """List comments.

            Newest first. Each comment has an `id`,
            an `author` and a `text`.
            """
            return []

        def POST(request):
            return {}
        ''',
    "comments/[id]/route.py": '''
        revalidate = 30

        def GET(request, context):
            """One comment."""
            return {}

        async def PATCH(request, context):
            """Edit a comment."""
            return {}

        def DELETE(request, context):
            return {}
        ''',
    "shop/[...slug]/route.py": "def GET(request, context):\n    return {}\n",
    "docs/[[...slug]]/route.py": "def GET(request, context):\n    return {}\n",
    "(admin)/users/[user]/posts/[post]/route.py": "def PUT(request, context):\n    return {}\n",
    "profile/page.html": "<h1>Profile</h1>\n",
    "_lib/helpers.py": "x = 1\n",
}


@pytest.fixture
def app(tmp_path: Path) -> App:
    return make_app(tmp_path, FILES)


def path_params(item: dict) -> list[tuple[str, str]]:
    return [(p["name"], p["in"]) for p in item.get("parameters", [])]


def test_document_validates_against_openapi_3_1(app: App) -> None:
    document = openapi_document(app)
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)


def test_paths_use_braces_and_skip_groups_and_private_folders(app: App) -> None:
    paths = openapi_document(app)["paths"]
    assert sorted(paths) == [
        "/", "/comments", "/comments/{id}", "/docs", "/docs/{slug}", "/profile",
        "/shop/{slug}", "/users/{user}/posts/{post}",
    ]
    assert path_params(paths["/comments/{id}"]) == [("id", "path")]
    assert path_params(paths["/users/{user}/posts/{post}"]) == [("user", "path"), ("post", "path")]
    assert all(p["required"] is True for item in paths.values() for p in item.get("parameters", []))


def test_catch_alls_are_path_parameters_with_a_note(app: App) -> None:
    paths = openapi_document(app)["paths"]
    [slug] = paths["/shop/{slug}"]["parameters"]
    assert slug["x-minirouter-param"] == "catchall"
    assert "one or more path segments" in slug["description"]
    # The optional catch-all also matches its parent URL: both paths, same handler.
    assert "parameters" not in paths["/docs"]
    [optional] = paths["/docs/{slug}"]["parameters"]
    assert optional["x-minirouter-param"] == "optional"
    assert set(paths["/docs"]) == set(paths["/docs/{slug}"]) - {"parameters"} == {"get"}


def test_methods_are_the_exported_handlers(app: App) -> None:
    paths = openapi_document(app)["paths"]
    assert set(paths["/comments"]) == {"get", "post"}
    assert set(paths["/comments/{id}"]) - {"parameters"} == {"get", "patch", "delete"}
    assert set(paths["/users/{user}/posts/{post}"]) - {"parameters"} == {"put"}
    assert set(paths["/profile"]) == {"get"}
    assert "text/html" in paths["/profile"]["get"]["responses"]["200"]["content"]


def test_docstrings_become_summary_and_description(app: App) -> None:
    paths = openapi_document(app)["paths"]
    listing = paths["/comments"]["get"]
    assert listing["summary"] == "List comments."
    assert listing["description"].startswith("List comments.\n\nNewest first.")
    assert "an `author` and a `text`." in listing["description"]
    assert paths["/comments/{id}"]["patch"]["summary"] == "Edit a comment."  # async def too
    assert "summary" not in paths["/comments"]["post"]


def test_module_docstring_describes_the_path(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"notes/route.py": '''
        """Notes: a long first paragraph
        wrapped over two lines.

        More detail here."""

        def GET(request):
            """List the notes."""
            return []
        '''})
    item = openapi_document(app)["paths"]["/notes"]
    assert item["summary"] == "Notes: a long first paragraph wrapped over two lines."
    assert item["description"].endswith("More detail here.")
    assert item["get"]["summary"] == "List the notes."


def test_operation_ids_are_unique(app: App) -> None:
    paths = openapi_document(app)["paths"]
    ids = [op["operationId"] for item in paths.values() for key, op in item.items() if key != "parameters"]
    assert len(ids) == len(set(ids))
    assert paths["/comments/{id}"]["get"]["operationId"] == "get_comments_id"


def test_title_and_version(app: App) -> None:
    document = openapi_document(app, title="Comments API", version="2.1.0")
    assert document["info"]["title"] == "Comments API"
    assert document["info"]["version"] == "2.1.0"
    default = openapi_document(app)["info"]
    assert default["title"] == os.path.basename(app.app_dir)


def test_example_app_document_validates(example_env: Path) -> None:
    document = openapi_document(App(str(ROOT / "app")))
    validate(document, cls=OpenAPIV31SpecValidator)
    assert "/comments/{id}" in document["paths"]


def test_served_at_openapi_url_when_asked(tmp_path: Path) -> None:
    app = make_app(tmp_path, FILES, openapi_url="/openapi.json")
    response = client(app).get("/openapi.json")
    assert response.status == 200
    assert response.headers.get("content-type").startswith("application/json")
    assert response.json() == openapi_document(app)
    head = client(app).head("/openapi.json")
    assert head.status == 200 and head.content == b""
    assert client(app).post("/openapi.json").status == 405


def test_served_under_a_mount_point_it_names_that_server(tmp_path: Path) -> None:
    from minirouter import TestClient

    app = make_app(tmp_path, FILES, openapi_url="/openapi.json")
    document = TestClient(app, base_url="http://testserver/my%20api").get("/openapi.json").json()
    assert document["servers"] == [{"url": "/my%20api"}]  # clients call /my%20api/comments, not /comments
    validate(document, cls=OpenAPIV31SpecValidator)
    assert "servers" not in client(app).get("/openapi.json").json()


def test_served_only_at_its_own_segments_so_the_middleware_matcher_agrees(tmp_path: Path) -> None:
    files = dict(FILES)
    files["middleware.py"] = (
        "from minirouter import Response\n"
        "config = {'matcher': ['/admin/:path*', '/hidden']}\n"
        "def middleware(request):\n"
        "    if request.path == '/hidden':\n"
        "        return Response.rewrite('/admin/openapi.json')\n"
        "    return Response.json({'error': 'sign in'}, status=401)\n"
    )
    app = make_app(tmp_path, files, openapi_url="/admin/openapi.json")
    c = client(app)
    assert c.get("/admin/openapi.json").status == 401
    # %2F keeps "admin/openapi.json" one segment: the matcher does not cover it, and it is not the document.
    assert c.get("/admin%2Fopenapi.json").status == 404
    assert c.get("/hidden").status == 200  # a rewrite to it serves it, as a rewrite to a route would


def test_not_served_by_default(app: App) -> None:
    assert client(app).get("/openapi.json").status == 404


@pytest.mark.parametrize("url", ["openapi.json", "/api/", "", "//openapi.json", "/a//b"])
def test_openapi_url_must_be_a_path(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match="openapi_url"):
        make_app(tmp_path, FILES, openapi_url=url)


def test_a_template_shared_by_param_and_catch_all_documents_the_route_that_answers(tmp_path: Path) -> None:
    app = make_app(tmp_path, {
        "a/[id]/route.py": 'def GET():\n    """single"""\n    return {}\n',
        "a/[...id]/route.py": 'def GET():\n    """catch"""\n    return {}\ndef POST():\n    return {}\n',
    })
    item = openapi_document(app)["paths"]["/a/{id}"]
    assert item["get"]["summary"] == "single"  # [id] answers /a/x; [...id] only deeper paths
    assert "post" not in item  # POST /a/x is a 405: the catch-all's POST is not this path's


@pytest.mark.parametrize("catch_all", ["[...rest]", "[[...rest]]"])
def test_a_param_and_a_catch_all_of_another_name_give_one_template(tmp_path: Path, catch_all: str) -> None:
    # OpenAPI 3.1: templates that differ only in their parameter names must not both be there.
    app = make_app(tmp_path, {
        "items/[id]/route.py": 'def GET(request, context):\n    """single"""\n    return dict(context.params)\n',
        f"items/{catch_all}/route.py": 'def GET(request, context):\n    """catch"""\n    return dict(context.params)\n',
    })
    document = openapi_document(app)
    validate(document, cls=OpenAPIV31SpecValidator)
    templates = [path for path in document["paths"] if path.startswith("/items/")]
    assert templates == ["/items/{id}"]
    assert document["paths"]["/items/{id}"]["get"]["summary"] == "single"
    assert client(app).get("/items/r1").json() == {"id": "r1"}  # as documented: [id] answers it


@pytest.mark.parametrize("url", ["/café.json", "/api spec.json"])
def test_a_non_ascii_openapi_url_is_served(tmp_path: Path, url: str) -> None:
    app = make_app(tmp_path, FILES, openapi_url=url)
    assert client(app).get(quote(url)).json() == openapi_document(app)
    redirected = client(app).get("/" + quote(url))  # //café.json: served without the empty segment
    assert (redirected.status, redirected.headers.get("location")) == (308, quote(url))


def test_folder_names_with_url_syntax_are_escaped_in_paths(tmp_path: Path) -> None:
    app = make_app(tmp_path, {
        "b{c}/route.py": "def GET():\n    return {}\n",
        "q?x/route.py": "def GET():\n    return {}\n",
        "100%/route.py": "def GET():\n    return {}\n",
    })
    document = openapi_document(app)
    assert {"/b%7Bc%7D", "/q%3Fx", "/100%25"} <= set(document["paths"])
    validate(document, cls=OpenAPIV31SpecValidator)


def test_a_partial_handler_is_described_by_its_function(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"p/route.py": (
        "import functools\n"
        "def greet(greeting):\n    \"\"\"Say hello.\"\"\"\n    return {'say': greeting}\n"
        "GET = functools.partial(greet, 'hi')\n"
    )})
    assert openapi_document(app)["paths"]["/p"]["get"]["summary"] == "Say hello."
