"""page.html and public/: validators, 304, one Range, methods, and no way out.

Design: "Middleware, caching, pages and static files"; RFC 9110 sections 13
(conditional requests) and 14 (range requests).
"""
from __future__ import annotations

import datetime
import http.client
import io
import logging
import os
import time
from pathlib import Path

import pytest

from conftest import LiveServer
from helpers import client, make_app_dir
import minirouter
from minirouter import App

CSS = b"body { color: #222; }\n"
BLOB = bytes(range(256)) * 40  # 10,240 bytes, every byte value


@pytest.fixture
def site(tmp_path: Path):
    """An app with a page, a route that shadows a public file, and public/ beside it."""
    app_dir = make_app_dir(
        tmp_path,
        {
            "profile/page.html": "<h1>Profile</h1>\n",
            "both/page.html": "<p>never served</p>\n",
            "both/route.py": "def GET():\n    return {'from': 'route'}\n",
            "robots.txt/route.py": "from minirouter import Response\n\ndef GET():\n    return Response('from the route')\n",
        },
    )
    public = tmp_path / "public"
    (public / "css").mkdir(parents=True)
    (public / "css" / "style.css").write_bytes(CSS)
    (public / "blob.bin").write_bytes(BLOB)
    (public / "empty.txt").write_bytes(b"")
    (public / "robots.txt").write_bytes(b"from public\n")
    (public / ".env").write_bytes(b"SECRET=1\n")
    (public / ".hidden").mkdir()
    (public / ".hidden" / "x.txt").write_bytes(b"hidden\n")
    (tmp_path / "outside.txt").write_bytes(b"outside the public folder\n")
    os.symlink(tmp_path / "outside.txt", public / "leak.txt")
    os.symlink(public / "css" / "style.css", public / "alias.css")
    os.symlink(".env", public / "env.txt")  # inside the folder, but to a dotfile
    os.symlink(".hidden", public / "shown")
    return app_dir


@pytest.fixture
def web(site: Path):
    return client(App(str(site)))


def test_public_file_is_served_with_type_length_and_validators(web):
    r = web.get("/css/style.css")
    assert r.status == 200
    assert r.content == CSS
    assert r.headers["content-type"] == "text/css; charset=utf-8"
    assert r.headers["content-length"] == str(len(CSS))
    assert r.headers["etag"].startswith('"') and r.headers["etag"].endswith('"')
    assert r.headers["last-modified"].endswith(" GMT")
    assert r.headers["accept-ranges"] == "bytes"


def test_head_gives_the_headers_without_the_body(web):
    r = web.head("/blob.bin")
    assert r.status == 200
    assert r.content == b""
    assert r.headers["content-length"] == str(len(BLOB))
    assert r.headers["content-type"] == "application/octet-stream"


def test_if_none_match_gives_304_that_repeats_the_etag(web):
    etag = web.get("/css/style.css").headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        r = web.get("/css/style.css", headers={"If-None-Match": header})
        assert r.status == 304, header
        assert r.content == b""
        assert r.headers["etag"] == etag
        assert "content-type" not in r.headers
    assert web.get("/css/style.css", headers={"If-None-Match": '"nope"'}).status == 200


def test_if_modified_since(web):
    last_modified = web.get("/css/style.css").headers["last-modified"]
    assert web.get("/css/style.css", headers={"If-Modified-Since": last_modified}).status == 304
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert web.get("/css/style.css", headers={"If-Modified-Since": old}).status == 200
    # A malformed date is ignored, never an error.
    assert web.get("/css/style.css", headers={"If-Modified-Since": "yesterday"}).status == 200


def test_if_none_match_takes_precedence_over_if_modified_since(web):
    last_modified = web.get("/css/style.css").headers["last-modified"]
    r = web.get("/css/style.css", headers={"If-None-Match": '"nope"', "If-Modified-Since": last_modified})
    assert r.status == 200  # RFC 9110 13.2.2: If-Modified-Since is ignored here


def test_if_match_and_if_unmodified_since_give_412_once_the_file_changed(web):
    # RFC 9110 13.1.1, 13.1.4: the method is not performed when the condition is false.
    first = web.get("/css/style.css")
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    for header in (etag, f'"other", {etag}', "*"):
        assert web.get("/css/style.css", headers={"If-Match": header}).content == CSS, header
    for header in ('"other"', f"W/{etag}"):  # If-Match compares strongly: a weak tag never matches
        r = web.get("/css/style.css", headers={"If-Match": header})
        assert r.status == 412, header
        assert "If-Match" in r.json()["error"]
    assert web.get("/css/style.css", headers={"If-Unmodified-Since": last_modified}).status == 200
    old = "Sun, 06 Nov 1994 08:49:37 GMT"
    r = web.get("/css/style.css", headers={"If-Unmodified-Since": old})
    assert r.status == 412 and "If-Unmodified-Since" in r.json()["error"]
    assert web.get("/css/style.css", headers={"If-Unmodified-Since": "whenever"}).status == 200  # ignored
    # RFC 9110 13.2.2: If-Unmodified-Since is not looked at when If-Match is there.
    assert web.get("/css/style.css", headers={"If-Match": etag, "If-Unmodified-Since": old}).status == 200
    assert web.head("/css/style.css", headers={"If-Match": '"other"'}).status == 412


def test_a_date_that_is_not_an_http_date_is_ignored(web):
    # RFC 9110 13.1.3, 13.1.4: a value that is not a valid HTTP-date, a list of
    # dates included, is ignored; 5.6.7: the three forms, always in GMT.
    last_modified = web.get("/css/style.css").headers["last-modified"]
    old = "Sun, 06 Nov 1994 08:49:37 GMT"
    for header in (f"{old}, {last_modified}", last_modified.replace("GMT", "+0000"), old.lower()):
        assert web.get("/css/style.css", headers={"If-Unmodified-Since": header}).status == 200, header
    for header in (f"{last_modified}, {old}", last_modified.replace("GMT", "-2300")):
        assert web.get("/css/style.css", headers={"If-Modified-Since": header}).status == 200, header
    # The two obsolete forms are read too.
    for header in ("Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"):
        assert web.get("/css/style.css", headers={"If-Unmodified-Since": header}).status == 412, header
        assert web.get("/css/style.css", headers={"If-Modified-Since": header}).status == 200, header


@pytest.mark.parametrize(
    "this_year, two_digits, year", [(2026, "94", 1994), (2026, "70", 2070), (2026, "77", 1977),
                                    (2080, "20", 2120), (2049, "99", 2099), (2050, "01", 2001),
                                    (2050, "00", 2100)],
)
def test_an_rfc850_year_is_the_one_at_most_50_years_ahead(monkeypatch, this_year, two_digits, year):
    # RFC 9110 5.6.7: more than 50 years in the future means the latest past year with those digits.
    now = time.struct_time((this_year, 6, 1, 0, 0, 0, 0, 152, 0))
    monkeypatch.setattr(minirouter.time, "gmtime", lambda *args: now)
    parsed = minirouter._parse_http_date(f"Sunday, 06-Nov-{two_digits} 08:49:37 GMT")
    assert parsed is not None and datetime.datetime.fromtimestamp(parsed, datetime.timezone.utc).year == year


@pytest.mark.parametrize(
    "header, first, last",
    [("bytes=0-9", 0, 9), ("bytes=100-", 100, len(BLOB) - 1), ("bytes=-16", len(BLOB) - 16, len(BLOB) - 1),
     ("bytes=-99999999999999999999999", 0, len(BLOB) - 1),  # longer than the file, too long to read: all of it
     ("bytes=10000-99999", 10000, len(BLOB) - 1), ("bytes=5-5", 5, 5),
     # Empty list elements do not count (RFC 9110 5.6.1.2): one range, after all.
     ("bytes=0-4,", 0, 4), ("bytes=, 3-7 ,,", 3, 7), ("bytes=,\t-5", len(BLOB) - 5, len(BLOB) - 1)],
)
def test_single_range_gives_206(web, header, first, last):
    r = web.get("/blob.bin", headers={"Range": header})
    assert r.status == 206
    assert r.content == BLOB[first : last + 1]
    assert r.headers["content-range"] == f"bytes {first}-{last}/{len(BLOB)}"
    assert r.headers["content-length"] == str(last - first + 1)


@pytest.mark.parametrize("header", ["bytes=20000-", "bytes=10240-10300", "bytes=-0", "bytes=20000-,"])
def test_unsatisfiable_range_gives_416(web, header):
    r = web.get("/blob.bin", headers={"Range": header})
    assert r.status == 416
    assert r.headers["content-range"] == f"bytes */{len(BLOB)}"
    assert r.json() == {"error": "range not satisfiable"}


@pytest.mark.parametrize(
    "header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-2", "bytes=a-b", "bytes", "bytes=-", "bytes=-1x",
               "bytes=0-1,20000-", "bytes=20000-,30000-", "bytes=,", "bytes= ", "bytes=0-1,,5-6"]
)
def test_several_or_malformed_ranges_give_the_whole_file(web, header):
    r = web.get("/blob.bin", headers={"Range": header})
    assert r.status == 200
    assert r.content == BLOB


def test_if_range_with_an_old_etag_gives_the_whole_file(web):
    etag = web.get("/blob.bin").headers["etag"]
    assert web.get("/blob.bin", headers={"Range": "bytes=0-0", "If-Range": etag}).status == 206
    r = web.get("/blob.bin", headers={"Range": "bytes=0-0", "If-Range": '"old"'})
    assert r.status == 200 and r.content == BLOB


def test_empty_file(web):
    r = web.get("/empty.txt")
    assert r.status == 200 and r.content == b"" and r.headers["content-length"] == "0"
    for suffix in ("bytes=-1", "bytes=-99999999999999999999999"):  # satisfiable, nothing to send
        r = web.get("/empty.txt", headers={"Range": suffix})
        assert r.status == 200 and r.content == b"", suffix


class _ServerFileWrapper:
    """What a server offers as wsgi.file_wrapper (wsgiref's and gunicorn's are classes like this)."""

    def __init__(self, file, block_size: int) -> None:
        self.file = file

    def __iter__(self):
        return iter(lambda: self.file.read(8192), b"")

    def close(self) -> None:
        self.file.close()


def test_the_access_log_leaves_the_servers_file_wrapper_to_the_server(site, caplog):
    # Wrapped in the access log's counting body, waitress no longer sees its
    # own class and copies the file through Python instead of sending it.
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/blob.bin", "SERVER_NAME": "x", "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input": io.BytesIO(), "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http", "wsgi.file_wrapper": _ServerFileWrapper,
    }
    with caplog.at_level(logging.INFO, logger="minirouter.access"):
        body = App(str(site))(environ, lambda status, headers, exc_info=None: None)
        assert type(body) is _ServerFileWrapper
        assert b"".join(body) == BLOB
        body.close()
        ranged = App(str(site))({**environ, "HTTP_RANGE": "bytes=0-9"}, lambda *args: None)
        assert b"".join(ranged) == BLOB[:10]
        ranged.close()
    records = [r for r in caplog.records if r.name == "minirouter.access"]
    assert [(r.status, r.bytes) for r in records] == [(200, len(BLOB)), (206, 10)]


@pytest.mark.parametrize(
    "path",
    [
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/css/..%2f..%2foutside.txt",
        "/css/%2E%2E/%2E%2E/outside.txt",
        "/..%5coutside.txt",
        "/css%5cstyle.css",
        "/css/style.css%00",
        "/css/style.css%00.png",
        "/.env",
        "/%2eenv",
        "/.hidden/x.txt",
        "/leak.txt",  # a symlink that leaves the folder
        "/env.txt",  # symlinks that lead to a dotfile or into a dot-folder
        "/shown/x.txt",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/C:%5cWindows",
        "/css",  # a folder is not a file
    ],
)
def test_nothing_outside_public_is_reachable(web, path):
    r = web.get(path)
    assert r.status in (400, 404), path
    assert b"outside the public folder" not in r.content and b"SECRET" not in r.content and b"root:" not in r.content


def test_symlink_inside_the_folder_is_served(web):
    assert web.get("/alias.css").content == CSS


def test_a_symlink_is_typed_by_the_name_asked_for(site):
    os.symlink(site.parent / "public" / "css" / "style.css", site.parent / "public" / "style.txt")
    r = client(App(str(site))).get("/style.txt")
    assert r.content == CSS and r.headers["content-type"] == "text/plain; charset=utf-8"


def test_routes_win_over_public_files(web):
    assert web.get("/robots.txt").text == "from the route"


def test_public_files_answer_only_get_and_head(web):
    r = web.post("/css/style.css", data=b"x")
    assert r.status == 405
    assert r.headers["allow"] == "GET, HEAD, OPTIONS"
    assert r.json()["error"]
    r = web.options("/css/style.css")
    assert r.status == 204 and r.headers["allow"] == "GET, HEAD, OPTIONS"


def test_page_html_is_served_at_its_folder(web):
    r = web.get("/profile")
    assert r.status == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.text == "<h1>Profile</h1>\n"
    head = web.head("/profile")
    assert head.status == 200 and head.content == b""
    assert head.headers["content-length"] == r.headers["content-length"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_page_html_refuses_other_methods(web, method):
    r = web.request(method, "/profile", data=b"")
    assert r.status == 405
    assert r.headers["allow"] == "GET, HEAD, OPTIONS"


def test_page_html_options(web):
    r = web.options("/profile")
    assert r.status == 204 and r.headers["allow"] == "GET, HEAD, OPTIONS"


def test_route_beside_page_wins_with_a_warning(site, caplog):
    with caplog.at_level(logging.WARNING, logger="minirouter"):
        web = client(App(str(site)))
    assert web.get("/both").json() == {"from": "route"}
    warnings = [r.getMessage() for r in caplog.records if r.name == "minirouter"]
    assert any("both" in m and "page.html" in m and "route.py" in m for m in warnings)


def test_public_dir_option_names_another_folder(tmp_path):
    app_dir = make_app_dir(tmp_path, {"route.py": "def GET():\n    return {}\n"})
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "a.txt").write_text("A")
    web = client(App(str(app_dir), public_dir=str(assets)))
    assert web.get("/a.txt").text == "A"


def _get(url: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_files_through_waitress_use_its_file_wrapper(site, tmp_path):
    big = os.urandom(3 * 1024 * 1024)
    (tmp_path / "public" / "big.bin").write_bytes(big)
    server = LiveServer(App(str(site)))
    try:
        status, headers, body = _get(server.url, "/big.bin")
        assert status == 200 and body == big and headers["content-length"] == str(len(big))
        status, headers, body = _get(server.url, "/big.bin", {"Range": "bytes=1000-1999"})
        assert status == 206 and body == big[1000:2000]
        status, _, body = _get(server.url, "/profile")
        assert status == 200 and body == b"<h1>Profile</h1>\n"
        status, _, _ = _get(server.url, "/%2e%2e/outside.txt")
        assert status == 404
    finally:
        server.stop()


def test_a_modification_time_in_the_future_is_sent_as_now(site):
    # RFC 9110 8.8.2.1: never a Last-Modified later than the answer's own time.
    css = site.parent / "public" / "css" / "style.css"
    os.utime(css, (time.time(), datetime.datetime(2099, 1, 1, tzinfo=datetime.timezone.utc).timestamp()))
    web = client(App(str(site)))
    before = time.time()
    r = web.get("/css/style.css")
    sent = minirouter._parse_http_date(r.headers["last-modified"])
    assert r.status == 200 and int(before) <= sent <= time.time() + 1
    assert web.get("/css/style.css", headers={"If-None-Match": r.headers["etag"]}).status == 304


def test_a_date_http_cannot_write_is_no_500(site, monkeypatch):
    real_fstat = os.fstat

    def far_future(fd):  # year 14645, as a tar archive may set; most filesystems would store it
        result = real_fstat(fd)
        values = list(result)
        values[8] = 4e11  # st_mtime
        return os.stat_result(values, {"st_mtime_ns": int(4e20)})

    monkeypatch.setattr(os, "fstat", far_future)
    r = client(App(str(site))).get("/css/style.css")
    assert r.status == 200 and r.content == CSS


def test_the_validators_belong_to_the_bytes_sent_when_the_file_is_replaced_meanwhile(site, monkeypatch):
    # A deploy lands just before the file is opened. Validators taken apart from
    # the open file (a stat first) would pair the old ETag with the new bytes:
    # a resumed download would splice two versions together.
    css = site.parent / "public" / "css" / "style.css"
    web = client(App(str(site)))
    old_etag = web.get("/css/style.css").headers["etag"]
    real_open = open

    def replace_then_open(path, *args, **kwargs):
        if str(path).endswith("style.css"):
            replacement = css.with_name("new.css")
            replacement.write_bytes(b"NEW-NEW-NEW-NEW-NEW-")
            os.utime(replacement, ns=(1, 1))  # another mtime, so another ETag
            os.replace(replacement, css)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(minirouter, "open", replace_then_open, raising=False)
    r = web.get("/css/style.css", headers={"Range": "bytes=4-", "If-Range": old_etag})
    assert r.status == 200 and r.content == b"NEW-NEW-NEW-NEW-NEW-" and r.headers["etag"] != old_etag


def test_a_file_body_closed_unread_closes_the_file(site, monkeypatch):
    opened = []
    real_open = open
    monkeypatch.setattr(minirouter, "open", lambda *a, **k: opened.append(real_open(*a, **k)) or opened[-1],
                        raising=False)
    app = App(str(site))
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/css/style.css", "SERVER_NAME": "x", "SERVER_PORT": "80",
               "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO()}  # no wsgi.file_wrapper
    body = app(environ, lambda status, headers, exc_info=None: None)
    assert len(opened) == 1 and not opened[0].closed
    body.close()  # as a server does when the client left before the first piece
    assert opened[0].closed


@pytest.mark.parametrize("name,content_type", [
    ("app.js", "text/javascript; charset=utf-8"), ("mod.MJS", "text/javascript; charset=utf-8"),
    ("font.woff2", "font/woff2"), ("font.ttf", "font/ttf"), ("pic.webp", "image/webp"),
    ("clip.mp4", "video/mp4"), ("app.js.map", "application/json"),
    ("data.json", "application/json"), ("notes.md", "text/markdown; charset=utf-8"),
    ("site.webmanifest", "application/manifest+json"), ("a.tar.gz", "application/octet-stream"),
])
def test_web_types_do_not_depend_on_the_hosts_mime_files(tmp_path, monkeypatch, name, content_type):
    import mimetypes

    monkeypatch.setattr(mimetypes, "guess_type", lambda *a, **k: (None, None))  # a slim container
    app_dir = make_app_dir(tmp_path, {"route.py": "def GET():\n    return 'home'\n"})
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / name).write_bytes(b"x")
    r = client(App(str(app_dir))).get("/" + name)
    assert r.status == 200 and r.headers["content-type"] == content_type


def test_a_file_sent_for_a_post_is_no_304(tmp_path):
    # RFC 9110 13.1.2-3: a 304 answers GET and HEAD; for another method a matching
    # If-None-Match is a 412 and If-Modified-Since is ignored.
    (tmp_path / "report.csv").write_bytes(b"a,b\n")
    app_dir = make_app_dir(tmp_path, {"export/route.py": (
        "import os\n"
        "from minirouter import serve_file\n"
        f"FILE = {str(tmp_path / 'report.csv')!r}\n"
        "def GET(request):\n    return serve_file(request.environ, FILE)\n"
        "def POST(request):\n    return serve_file(request.environ, FILE)\n"
    )})
    web = client(App(str(app_dir)))
    got = web.get("/export")
    etag, modified = got.headers["etag"], got.headers["last-modified"]
    assert web.get("/export", headers={"If-None-Match": etag}).status == 304
    assert web.get("/export", headers={"If-Modified-Since": modified}).status == 304
    refused = web.post("/export", headers={"If-None-Match": etag})
    assert refused.status == 412 and refused.json() == {"error": "If-None-Match: the file's ETag is among those given"}
    assert web.post("/export", headers={"If-None-Match": "*"}).status == 412
    sent = web.post("/export", headers={"If-Modified-Since": modified})
    assert (sent.status, sent.content) == (200, b"a,b\n")
