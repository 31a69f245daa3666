"""The example app in app/, end to end.

1. Every curl line of the README, run against waitress, checked against the
   output the README shows (through real curl when installed, and always
   through http.client).
2. The same tutorial flows through the in-process TestClient.
3. What the README does not show: the SQLite store under concurrent
   requests, upload names that try to escape, odd ids, run.py itself.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import readme_curl
from conftest import APP_DIR, ROOT, LiveServer
from helpers import popen_that_stops_on_ctrl_c

from minirouter import App, TestClient

README = ROOT / "README.md"
SECTIONS = readme_curl.read_sections(README)
CURL = shutil.which("curl")


def _multipart_supported() -> bool:
    """Whether minirouter.py parses multipart forms yet (issue 3 adds it)."""
    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder) / f"probe_{uuid.uuid4().hex[:8]}"
        (site / "up").mkdir(parents=True)
        (site / "up" / "route.py").write_text(
            "def POST(request):\n    return {'size': request.form().get('f').size}\n"
        )
        response = TestClient(App(str(site))).post("/up", files={"f": ("a.txt", b"abc", "text/plain")})
        sys.modules.pop(site.name, None)
        return response.status == 200 and response.json() == {"size": 3}


needs_multipart = pytest.mark.xfail(
    not _multipart_supported(), reason="minirouter.py does not parse multipart forms yet (issue 3)", strict=True
)


# --- 1. the README, line by line ----------------------------------------------------

def _section_params():
    for section in SECTIONS:
        if not section.curl_steps:
            continue
        for backend in ("http.client", "curl"):
            marks = [pytest.mark.skipif(CURL is None, reason="curl is not installed")] if backend == "curl" else []
            if any("-F" in step.argv for step in section.curl_steps):
                marks.append(needs_multipart)
            yield pytest.param(section, backend, id=f"{backend}: {section.title}", marks=marks)


@pytest.mark.parametrize(("section", "backend"), list(_section_params()))
def test_readme_curl_lines_give_what_the_readme_shows(section, backend, live_server, tmp_path):
    """Each ## or ### section of the README on a fresh server, its lines in order."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for step in section.steps:
        if not step.is_curl:
            readme_curl.run_echo(step, scratch)
            continue
        if backend == "curl":
            result, include = readme_curl.run_with_curl(step, live_server, scratch, CURL)
        else:
            result, include = readme_curl.run_with_http_client(step, live_server, scratch)
        readme_curl.check(step, result, include, exact_names=backend == "curl")


def test_every_readme_curl_line_shows_its_output_and_uses_known_options(tmp_path):
    steps = [step for section in SECTIONS for step in section.curl_steps]
    assert len(steps) >= 30, "the tour lost its curl lines"
    for section in SECTIONS:
        for step in section.steps:
            if not step.is_curl:
                readme_curl.run_echo(step, tmp_path)  # the files -F and -d @ send
    for step in steps:
        assert step.expected, f"README line {step.line} shows no output: {step.source}"
        request = readme_curl.parse_curl(step.argv, tmp_path)  # raises on options the runner cannot replay
        assert request.url.startswith(readme_curl.README_HOST)
        # parse_expected raises when the # lines are not status, headers, body
        readme_curl.parse_expected(step, request.include)


def test_readme_tour_covers_the_tutorial(tmp_path):
    """The tour must keep showing each lesson of the tutorial (deleting one fails here)."""
    (tmp_path / "hello.txt").write_text("x\n")
    shown = set()
    for section in SECTIONS:
        for step in section.curl_steps:
            request = readme_curl.parse_curl(step.argv, tmp_path)
            shown.add((request.method, urlsplit(request.url).path))
    needed = {
        ("GET", "/hello"), ("GET", "/dashboard"), ("GET", "/dashboard/users"),
        ("GET", "/comments"), ("POST", "/comments"), ("GET", "/comments/4"),
        ("PATCH", "/comments/4"), ("DELETE", "/comments/4"), ("GET", "/comments/first"),
        ("GET", "/profile"), ("GET", "/profile/api"),
        ("POST", "/files"), ("GET", "/files"), ("GET", "/files/hello.txt"),
        ("GET", "/docs"), ("GET", "/docs/routing/params"), ("GET", "/about"),
    }
    assert needed <= shown, f"missing from the README tour: {sorted(needed - shown)}"


def test_readme_commands_match_ci():
    """The README's test command is the one .ci/run runs."""
    text = README.read_text(encoding="utf-8")
    assert "pip install -r requirements.txt && python run.py" in text
    assert "pip install -r requirements.txt && python -m pytest" in text
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "python -m pip install -r requirements.txt" in ci
    assert ci[-1] == "python -m pytest"
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


# --- 2. the tutorial through the TestClient ----------------------------------------

def test_hello_and_dashboard(client):
    response = client.get("/hello")
    assert (response.status, response.text) == (200, "Hello World!")
    assert response.headers.get("content-type") == "text/plain; charset=utf-8"
    assert client.get("/dashboard").text == "Dashboard data"
    assert client.get("/dashboard/users").text == "Users data"


def test_comments_crud_flow(client):
    seeded = client.get("/comments").json()
    assert [c["id"] for c in seeded] == [1, 2, 3]
    assert client.get("/comments?query=second").json() == [seeded[1]]
    assert client.get("/comments?query=nothing like it").json() == []

    created = client.post("/comments", json={"text": "A new one"})
    assert created.status == 201
    assert created.json() == {"id": 4, "text": "A new one"}
    assert created.headers.get("location") == "/comments/4"
    assert client.get("/comments/4").json() == {"id": 4, "text": "A new one"}

    patched = client.patch("/comments/4", json={"text": "Changed"})
    assert (patched.status, patched.json()) == (200, {"id": 4, "text": "Changed"})
    deleted = client.delete("/comments/4")
    assert (deleted.status, deleted.json()) == (200, {"id": 4, "text": "Changed"})

    gone = client.get("/comments/4")
    assert (gone.status, gone.headers.get("location"), gone.content) == (307, "/comments", b"")
    assert client.patch("/comments/4", json={"text": "x"}).status == 404
    assert client.delete("/comments/4").status == 404
    # ids are never reused, even after a delete
    assert client.post("/comments", json={"text": "Next"}).json()["id"] == 5


def test_query_is_a_plain_substring_not_a_pattern(client):
    client.post("/comments", json={"text": "100% sure_thing"})
    assert [c["text"] for c in client.get("/comments?query=%25").json()] == ["100% sure_thing"]
    assert [c["text"] for c in client.get("/comments?query=_").json()] == ["100% sure_thing"]
    # an empty query is no filter
    assert len(client.get("/comments?query=").json()) == 4


@pytest.mark.parametrize("bad_id", ["abc", "1.5", "-1", "+1", "1_0", "%201", "%D9%A3", "0", "000"])
def test_a_non_integer_id_is_400(client, bad_id):
    for method in ("GET", "PATCH", "DELETE"):
        response = client.request(method, f"/comments/{bad_id}", json={"text": "x"})
        assert response.status == 400, (method, bad_id, response.text)
        assert "integer" in response.json()["error"]


def test_leading_zeros_name_the_same_id_however_many(client):
    first = client.get("/comments/1").json()
    assert client.get("/comments/" + "0" * 30 + "1").json() == first


def test_a_huge_but_valid_id_is_simply_missing(client):
    assert client.get(f"/comments/{2**63 - 1}").status == 307
    assert client.delete(f"/comments/{2**63 - 1}").status == 404


@pytest.mark.parametrize("too_big", [str(2**63), "9" * 40])
def test_an_id_larger_than_sqlite_stores_says_so(client, too_big):
    response = client.patch(f"/comments/{too_big}", json={"text": "x"})
    assert response.status == 400
    assert response.json()["error"].startswith(f"the id must be at most {2**63 - 1}, not ")


def test_comment_text_is_limited_to_what_the_page_allows(client):
    response = client.post("/comments", json={"text": "x" * 2001})
    assert response.status == 400
    assert response.json() == {"error": "the text is longer than 2000 characters"}
    assert client.post("/comments", json={"text": "x" * 2000}).status == 201
    assert client.patch("/comments/1", json={"text": "y" * 2001}).status == 400


@pytest.mark.parametrize("blank", ["\u200b", "\u00a0\u2003", "\ufeff", "\t\u200d\n",
                                   "\u3164", "\u034f", "\ufe0f", "\u2800", " \U000e0100 "])
def test_text_that_shows_nothing_is_refused(client, blank):
    response = client.post("/comments", json={"text": blank})
    assert response.status == 400
    assert len(client.get("/comments").json()) == 3


def test_a_database_locked_for_longer_than_the_wait_is_a_503(monkeypatch):
    import sqlite3

    from app.comments import data
    from minirouter import HTTPError

    monkeypatch.setattr(data.time, "sleep", lambda seconds: None)

    def locked():
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(HTTPError) as raised:
        data._retry_when_locked(locked)
    answer = raised.value.to_response()
    assert answer.status == 503 and answer.headers.get("retry-after") == "5"


@pytest.mark.parametrize(
    "body",
    [{"json": {}}, {"json": {"text": 5}}, {"json": {"text": "   "}}, {"json": ["text"]}, {"json": "text"}],
)
def test_post_without_a_text_string_is_400(client, body):
    response = client.post("/comments", **body)
    assert response.status == 400
    assert response.json() == {"error": 'send a JSON object with a "text" string'}
    assert len(client.get("/comments").json()) == 3


def test_post_that_is_not_json(client):
    assert client.post("/comments", data={"text": "hi"}).status == 415
    assert client.post("/comments", data=b"{nope", headers={"Content-Type": "application/json"}).status == 400


def test_profile_page_and_api_headers_and_cookies(client):
    page = client.get("/profile")
    assert page.status == 200
    assert page.headers.get("content-type").startswith("text/html")
    assert "<h1>Profile</h1>" in page.text
    assert client.post("/profile").status == 405

    response = client.get(
        "/profile/api",
        headers={"Authorization": "Bearer abc", "User-Agent": "tests <b>"},
        cookies={"theme": "light"},
    )
    assert response.status == 200
    assert response.headers.get("content-type") == "text/html; charset=utf-8"
    assert response.cookies["theme"] == "dark"
    assert response.cookies["resultsPerPage"] == "20"
    set_cookies = response.headers.get_all("set-cookie")
    assert "theme=dark; Path=/" in set_cookies
    assert any(v.startswith("resultsPerPage=20;") and "Path=/" in v for v in set_cookies)
    assert "<li>Authorization: Bearer abc</li>" in response.text
    assert "<li>User-Agent: tests &lt;b&gt;</li>" in response.text  # escaped, never raw HTML
    assert "<li>theme cookie: light</li>" in response.text
    assert "<li>resultsPerPage cookie: 20</li>" in response.text

    bare = client.get("/profile/api")
    assert "<li>Authorization: (none)</li>" in bare.text
    assert "<li>theme cookie: (none)</li>" in bare.text


@needs_multipart
def test_upload_list_and_download(client, example_env):
    content = "name,score\nada,3\n".encode()
    response = client.post("/files", files={"file": ("scores.csv", content, "text/csv")})
    assert response.status == 201, response.text
    assert response.json() == {"name": "scores.csv", "size": len(content), "type": "text/csv"}
    assert response.headers.get("location") == "/files/scores.csv"
    assert (example_env / "uploads" / "scores.csv").read_bytes() == content

    assert client.get("/files").json() == [{"name": "scores.csv", "size": len(content), "type": "text/csv"}]
    back = client.get("/files/scores.csv")
    assert back.status == 200
    assert back.content == content
    assert back.headers.get("content-type") == "text/csv"
    assert back.headers.get("x-content-type-options") == "nosniff"
    assert back.headers.get("content-security-policy") == "sandbox"
    head = client.head("/files/scores.csv")
    assert (head.status, head.content, head.headers.get("content-length")) == (200, b"", str(len(content)))
    # Sent by serve_file(), as public/ files are: validators, 304, one Range.
    again = client.get("/files/scores.csv", headers={"If-None-Match": back.headers["etag"]})
    assert again.status == 304 and again.content == b""
    part = client.get("/files/scores.csv", headers={"Range": "bytes=0-3"})
    assert (part.status, part.content, part.headers.get("content-range")) == (206, b"name", f"bytes 0-3/{len(content)}")
    assert part.headers.get("content-security-policy") == "sandbox"


@needs_multipart
def test_an_uploaded_html_page_cannot_run_scripts_on_this_site(client):
    page = b"<script>document.cookie</script>"
    response = client.post("/files", files={"file": ("page.html", page, "image/png")})
    assert response.json()["type"] == "text/html"  # from the name, not the client's claim
    back = client.get("/files/page.html")
    assert back.content == page
    assert back.headers.get("content-security-policy") == "sandbox"
    assert back.headers.get("x-content-type-options") == "nosniff"


@needs_multipart
def test_binary_upload_comes_back_byte_for_byte(client):
    content = bytes(range(256)) * 1000
    assert client.post("/files", files={"file": ("blob.bin", content, "application/x-thing")}).status == 201
    back = client.get("/files/blob.bin")
    assert back.content == content
    assert back.headers.get("content-type") == "application/octet-stream"


@needs_multipart
@pytest.mark.parametrize("name", ["data.csv.gz", "notes.tar.gz", "pic.svgz", "page.html.br"])
def test_a_compressed_upload_is_served_as_bytes_not_as_what_it_holds(client, name):
    # mimetypes guesses data.csv.gz as text/csv with an encoding: a browser showed gzip bytes as text.
    import gzip

    content = gzip.compress(b"name,score\n")
    assert client.post("/files", files={"file": (name, content, "application/gzip")}).json()["type"] == (
        "application/octet-stream")
    back = client.get(f"/files/{name}")
    assert back.content == content and back.headers.get("content-type") == "application/octet-stream"


@needs_multipart
@pytest.mark.parametrize(
    ("client_name", "stored_as"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/abs/path/report.pdf", "report.pdf"),
        ("my notes (1).txt", "my_notes__1_.txt"),
        ("café.txt", "caf_.txt"),
    ],
)
def test_client_filenames_never_become_paths(client, example_env, client_name, stored_as):
    response = client.post("/files", files={"file": (client_name, b"data", "text/plain")})
    assert response.status == 201, response.text
    assert response.json()["name"] == stored_as
    uploads = example_env / "uploads"
    assert sorted(p.name for p in uploads.iterdir()) == [stored_as]
    assert not (example_env / "passwd").exists()


@needs_multipart
@pytest.mark.parametrize("client_name", [".bashrc", "..", ".", "", "../", "dir/.hidden", "  "])
def test_dotfiles_and_empty_names_are_refused(client, example_env, client_name):
    response = client.post("/files", files={"file": (client_name, b"data", "text/plain")})
    assert response.status == 400, response.text
    uploads = example_env / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


@needs_multipart
@pytest.mark.parametrize(("client_name", "reason"), [
    ("", "the file needs a name"), ("a/", "the file needs a name"), ("../", "the file needs a name"),
    (".env", "a file name may not start with a dot"), ("dir/..", "a file name may not start with a dot"),
])
def test_a_refused_name_says_why(client, client_name, reason):
    response = client.post("/files", files={"file": (client_name, b"data", "text/plain")})
    assert (response.status, response.json()) == (400, {"error": reason})


@needs_multipart
def test_an_upload_never_replaces_a_file(client, example_env):
    # "é.txt" and "ü.txt" both become "_.txt": the second is refused, the first kept.
    assert client.post("/files", files={"file": ("é.txt", b"first", "text/plain")}).json()["name"] == "_.txt"
    second = client.post("/files", files={"file": ("ü.txt", b"second", "text/plain")})
    assert second.status == 409
    assert second.json() == {"error": 'a file named _.txt exists already: send another name in the "name" field'}
    assert client.get("/files/_.txt").content == b"first"
    renamed = client.post("/files", files={"file": ("ü.txt", b"second", "text/plain")}, data={"name": "u.txt"})
    assert (renamed.status, client.get("/files/u.txt").content) == (201, b"second")
    assert sorted(p.name for p in (example_env / "uploads").iterdir()) == ["_.txt", "u.txt"]  # no partial left


@needs_multipart
@pytest.mark.parametrize(("extension", "kind"), [(".html", "text/html"), (".tar.gz", "application/octet-stream")])
def test_a_long_name_keeps_its_extension(client, extension, kind):
    response = client.post("/files", files={"file": ("r" * 300 + extension, b"<p>", "text/plain")})
    assert response.json() == {"name": "r" * (120 - len(extension)) + extension, "size": 3, "type": kind}


@needs_multipart
def test_uploads_work_where_the_filesystem_has_no_hard_links(client, example_env, monkeypatch):
    import errno
    import os

    def no_links(source, target):
        raise PermissionError(errno.EPERM, "hard links are not supported here")

    monkeypatch.setattr(os, "link", no_links)
    assert client.post("/files", files={"file": ("a.txt", b"first", "text/plain")}).status == 201
    second = client.post("/files", files={"file": ("a.txt", b"second", "text/plain")})
    assert second.status == 409  # still never replaced
    assert client.get("/files/a.txt").content == b"first"
    assert sorted(p.name for p in (example_env / "uploads").iterdir()) == ["a.txt"]


@needs_multipart
def test_upload_without_a_file_field_is_400(client):
    response = client.post("/files", files={"other": ("a.txt", b"x", "text/plain")})
    assert response.status == 400
    assert response.json() == {"error": 'send the file in a multipart field named "file"'}


def test_upload_of_a_plain_field_is_400(client):
    response = client.post("/files", data={"file": "just text"})
    assert response.status == 400
    assert response.json() == {"error": 'send the file in a multipart field named "file"'}


@pytest.mark.parametrize("name", ["missing.txt", "..%2Fcomments.db", "%2E%2E", ".partial-x", "a%00b"])
def test_download_of_anything_else_is_404(client, example_env, name):
    (example_env / "uploads").mkdir()
    (example_env / "uploads" / ".partial-x").write_bytes(b"half")
    response = client.get(f"/files/{name}")
    assert response.status in (404, 400), response.text  # 400 only for a malformed path
    assert b"half" not in response.content and b"SQLite" not in response.content


def test_catch_all_group_and_private_folder(client):
    assert client.get("/docs").json()["slug"] == []
    assert client.get("/docs/routing").json()["slug"] == ["routing"]
    assert client.get("/docs/no/such/page").status == 404
    assert client.get("/about").text.startswith("minirouter")
    assert client.get("/(marketing)/about").status == 404
    assert client.get("/_lib/validate").status == 404


def test_route_table_lists_the_example_routes(example_app):
    table = {route.url: route for route in example_app.route_table()}
    for url in ("/hello", "/dashboard", "/dashboard/users", "/comments", "/comments/[id]",
                "/profile", "/profile/api", "/files", "/files/[name]", "/docs/[[...slug]]", "/about"):
        assert url in table, f"{url} missing from {sorted(table)}"
    assert table["/comments/[id]"].methods == ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH")
    assert table["/profile"].kind == "page"
    assert table["/docs/[[...slug]]"].params == [("slug", "optional")]
    assert not any("_lib" in url or "data" in url or "storage" in url for url in table)


# --- 3. the store under load, and run.py ---------------------------------------------

def _request(base_url: str, method: str, path: str, body: dict | None = None):
    target = urlsplit(base_url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_concurrent_posts_through_waitress_all_land_once(live_server):
    """Many threads POST at once: every comment is stored once, ids unique."""
    errors: list[BaseException] = []
    ids: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            for i in range(10):
                status, _, body = _request(live_server, "POST", "/comments", {"text": f"w{n}-{i}"})
                assert status == 201, body
                with lock:
                    ids.append(json.loads(body)["id"])
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors[0]
    assert len(ids) == 80 and len(set(ids)) == 80
    status, _, body = _request(live_server, "GET", "/comments")
    texts = [c["text"] for c in json.loads(body)]
    assert len(texts) == 83
    assert sorted(texts[3:]) == sorted(f"w{n}-{i}" for n in range(8) for i in range(10))


def test_two_stores_on_one_file_share_it_and_seed_once(example_env):
    """Two apps (think: two gunicorn workers) on the same database file."""
    first = TestClient(App(str(APP_DIR)))
    first_store = _current_store()
    second = TestClient(App(str(APP_DIR)))
    second_store = _current_store()
    assert first_store is not second_store
    try:
        assert len(first.get("/comments").json()) == 3
        assert len(second.get("/comments").json()) == 3  # not seeded twice
        created = first.post("/comments", json={"text": "seen by both"}).json()
        assert second.get(f"/comments/{created['id']}").json() == created
        assert second.delete(f"/comments/{created['id']}").status == 200
        assert first.get(f"/comments/{created['id']}").status == 307
    finally:
        first_store.close()
        second_store.close()
    mode = __import__("sqlite3").connect(example_env / "comments.db").execute("PRAGMA journal_mode").fetchone()
    assert mode[0] == "wal"


def test_store_retries_while_another_process_holds_the_lock(example_env):
    """A writer holding the database for a moment delays a POST; it does not fail it."""
    import sqlite3

    client = TestClient(App(str(APP_DIR)))
    store = _current_store()
    assert client.get("/comments").status == 200  # creates the file
    blocker = sqlite3.connect(example_env / "comments.db", isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, lambda: blocker.execute("COMMIT"))
    release.start()
    try:
        response = client.post("/comments", json={"text": "after the lock"})
    finally:
        release.join()
        blocker.close()
        store.close()
    assert response.status == 201


def test_a_read_does_not_wait_behind_a_write_that_waits_for_the_file(example_env):
    """Each thread has its own connection: while one request waits for another
    process's write lock, the others (a read here) are served."""
    import sqlite3

    client = TestClient(App(str(APP_DIR)))
    store = _current_store()
    assert client.get("/comments").status == 200  # creates the file
    blocker = sqlite3.connect(example_env / "comments.db", isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    results: dict[str, int] = {}
    writer = threading.Thread(target=lambda: results.update(post=client.post("/comments", json={"text": "w"}).status))
    reader = threading.Thread(target=lambda: results.update(get=client.get("/comments").status))
    try:
        writer.start()
        time.sleep(0.2)  # the POST is now waiting for the blocker's lock
        reader.start()
        reader.join(timeout=10)
        assert results.get("get") == 200 and writer.is_alive()  # served while the write still waits
    finally:
        blocker.execute("COMMIT")
        blocker.close()
        writer.join(timeout=30)
        store.close()
    assert results["post"] == 201


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files through /proc")
def test_a_thread_per_request_server_leaves_no_connections_behind(example_env):
    """wsgiref's server (and others) start a thread per connection: connections
    are borrowed from a pool, not kept per thread, so they do not pile up."""
    client = TestClient(App(str(APP_DIR)))
    store = _current_store()
    try:
        assert client.get("/comments").status == 200
        open_files = len(os.listdir("/proc/self/fd"))
        for _ in range(50):
            thread = threading.Thread(target=lambda: client.get("/comments"))
            thread.start()
            thread.join()
        assert len(os.listdir("/proc/self/fd")) <= open_files + 2
    finally:
        store.close()


def _current_store():
    """The store of the most recently built App (each App imports app/ afresh)."""
    return sys.modules["app.comments.data"].store


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_line(process: subprocess.Popen, needle: str, timeout: float = 30) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not printed; got {lines}")


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def test_run_py_serves_prints_routes_and_stops_on_ctrl_c(example_env):
    port = _free_port()
    env = dict(os.environ, PORT=str(port), PYTHONUNBUFFERED="1")
    process = popen_that_stops_on_ctrl_c(
        [sys.executable, str(ROOT / "run.py")], cwd=example_env, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = _wait_for_line(process, "Ctrl-C")
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}" in output
        assert "/comments/[id]" in output and "app/comments/[id]/route.py" in output
        status, _, body = _request(f"http://127.0.0.1:{port}", "GET", "/hello")
        assert (status, body) == (200, b"Hello World!")
        # the access logger is on: the request shows up on the output
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=15)
        assert process.returncode == 0, output + rest
        assert "Traceback" not in rest
        assert "stopped" in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # the database is opened at first use, and nothing asked for /comments
    assert not (example_env / "comments.db").exists()


@pytest.mark.skipif(
    "minirouter.access" not in (ROOT / "minirouter.py").read_text(encoding="utf-8"),
    reason="minirouter.py has no minirouter.access logger yet",
)
def test_run_py_logs_each_request_on_the_access_logger(example_env):
    port = _free_port()
    env = dict(os.environ, PORT=str(port), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py")], cwd=example_env, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        _wait_for_line(process, "Ctrl-C")
        assert _request(f"http://127.0.0.1:{port}", "GET", "/dashboard/users")[0] == 200
        process.terminate()
        rest, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "minirouter.access" in rest and "/dashboard/users" in rest, rest


@pytest.mark.parametrize("reload", [[], ["--reload"]], ids=["plain", "reload"])
def test_run_py_says_when_the_port_is_taken(example_env, reload):
    # With --reload too: no file change can free the port, so it stops at once.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        completed = subprocess.run(
            [sys.executable, str(ROOT / "run.py"), "--port", str(port), *reload], cwd=example_env,
            capture_output=True, text=True, timeout=30,
        )
    assert completed.returncode == 1
    assert f"127.0.0.1:{port}" in completed.stderr
    assert "Traceback" not in completed.stderr
    if not reload:
        assert "--port" in completed.stderr


def test_run_py_port_flag_and_host_env(example_env):
    port = _free_port()
    env = dict(os.environ, HOST="127.0.0.1", PORT="1", PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "--port", str(port)], cwd=example_env, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        _wait_for_line(process, f"http://127.0.0.1:{port}")
        assert _request(f"http://127.0.0.1:{port}", "GET", "/dashboard")[0] == 200
        process.terminate()  # SIGTERM stops it as cleanly as Ctrl-C
        process.communicate(timeout=15)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_run_py_application_is_a_wsgi_callable_for_other_servers(example_env, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    import importlib

    run = importlib.import_module("run")
    server = LiveServer(run.application)
    try:
        assert _request(server.url, "GET", "/hello")[2] == b"Hello World!"
    finally:
        server.stop()
    assert "/files/[name]" in run.route_table(run.application)


def test_waitress_serve_runs_the_module_level_application(example_env):
    """README: `waitress-serve --listen=127.0.0.1:8000 run:application`."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "run:application"],
        cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        _wait_for_line(process, f"127.0.0.1:{port}")
        status, _, body = _request(f"http://127.0.0.1:{port}", "GET", "/comments/1")
        assert (status, json.loads(body)) == (200, {"id": 1, "text": "This is the first comment"})
    finally:
        process.terminate()
        process.communicate(timeout=15)
    assert (example_env / "comments.db").exists()  # COMMENTS_DB was honoured


def test_default_locations_are_beside_run_py(monkeypatch):
    monkeypatch.delenv("COMMENTS_DB", raising=False)
    monkeypatch.delenv("UPLOADS_DIR", raising=False)
    App(str(APP_DIR))
    assert sys.modules["app.comments.data"].CommentStore().path == ROOT / "comments.db"
    assert sys.modules["app.files.storage"].uploads_dir() == ROOT / "uploads"


# --- forms, webhooks and non-UI responses ------------------------------------------


def test_subscribe_reads_urlencoded_and_multipart_forms(client):
    assert client.post("/subscribe", data={"name": "Ada", "email": "ada@example.com"}).json() == {
        "name": "Ada", "email": "ada@example.com"}
    multipart = client.post("/subscribe", files={"email": (None, "b@example.com")})
    assert multipart.json() == {"name": None, "email": "b@example.com"}
    missing = client.post("/subscribe", data={"name": "Ada"})
    assert missing.status == 400 and "email" in missing.json()["error"]
    as_file = client.post("/subscribe", files={"email": ("e.txt", b"c@example.com", "text/plain")})
    assert as_file.status == 400  # a file is not an address
    name_as_file = client.post("/subscribe", files={"name": ("n.txt", b"Ada", "text/plain"),
                                                    "email": (None, "a@example.com")})
    assert name_as_file.status == 400 and "name" in name_as_file.json()["error"]


def test_webhook_takes_any_text_and_refuses_an_empty_payload(client):
    assert client.post("/webhook", json={"event": "push"}).text == "Success!"
    assert client.post("/webhook", data="event=push").status == 200
    empty = client.post("/webhook", data=b"  ")
    assert empty.status == 400 and empty.json() == {"error": "Webhook error: the payload is empty"}
    assert client.post("/webhook", data=b"\xff", headers={"Content-Type": "text/plain"}).status == 400
    assert client.get("/webhook").status == 405


def test_rss_links_use_the_host_scheme_and_mount_the_client_asked_for(example_app):
    feed = TestClient(example_app, base_url="https://news.example/api").get("/rss.xml?utm=x")
    assert feed.status == 200 and feed.headers["content-type"] == "text/xml; charset=utf-8"
    assert "<link>https://news.example/api/hello</link>" in feed.text
    import xml.dom.minidom

    xml.dom.minidom.parseString(feed.content)  # well-formed


def test_the_examples_own_locations_keep_the_mount_point(example_app):
    # Mounted under /api (SCRIPT_NAME), the paths the example writes itself carry it too.
    mounted = TestClient(example_app, base_url="http://testserver/api")
    created = mounted.post("/comments", json={"text": "mounted"})
    assert created.status == 201 and created.headers["location"] == f"/api/comments/{created.json()['id']}"
    missing = mounted.get("/comments/999999")
    assert missing.status == 307 and missing.headers["location"] == "/api/comments"
    uploaded = mounted.post("/files", files={"file": ("mounted.txt", b"x")})
    assert uploaded.status == 201 and uploaded.headers["location"] == "/api/files/mounted.txt"
    assert TestClient(example_app).get("/comments/999999").headers["location"] == "/comments"


def test_time_is_kept_per_url_and_reads_the_first_of_a_repeated_parameter(client):
    first = client.get("/time?tz=a&tz=b")
    assert first.json()["query"] == {"tz": "a"}  # to_dict(): the first value, as get() reads it
    assert client.get("/time?tz=a&tz=b").json() == first.json()  # kept for 10 seconds
    assert client.get("/time?tz=c").json()["query"] == {"tz": "c"}
