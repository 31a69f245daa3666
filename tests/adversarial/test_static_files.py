"""public/ files: no way out of the folder, in any encoding, and no hang or
5xx on odd validators and ranges.

design.md: "public/ ... serves its files at the root ... and no way out of the
folder (.., encoded or not, symlinks leaving it, backslashes, NUL bytes,
dotfiles: 404)". The probe's public/ has a secret.txt beside it, a folder
outside/, a sibling folder public-evil/ and symlinks pointing at them.
"""
from __future__ import annotations

import os
from urllib.parse import unquote_to_bytes

import pytest

from minirouter import _byte_range

from .conftest import PUBLIC_FILES, SECRET, assert_error, raw_exchange, server_port, split_response

LEAKS = [SECRET, b"SECRET_KEY", b"dotfile", b"dotfolder"]

# Path traversal, every encoding seen in advisories: Werkzeug safe_join
# (CVE-2024-49766: Windows UNC and drive paths slipped through), Starlette StaticFiles
# (CVE-2023-29159: a sibling folder sharing the prefix, "public-evil"), aiohttp
# follow_symlinks (CVE-2024-23334), double encoding, overlong UTF-8 (the IIS
# "%c0%af" family), fullwidth dots that NFKC turns into '.', and NUL bytes that
# truncate a C-level path.
TRAVERSALS = [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/..%5csecret.txt",
    "/..%5Csecret.txt",
    "/..\\secret.txt",
    "/\\..\\secret.txt",
    "/%5c..%5csecret.txt",
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/%c0%ae%c0%ae/secret.txt",
    "/%c0%ae%c0%ae%c0%afsecret.txt",
    "/%e0%80%ae%e0%80%ae/secret.txt",
    "/%ef%bc%8e%ef%bc%8e/secret.txt",
    "/%ef%bc%8e%ef%bc%8e%ef%bc%8fsecret.txt",
    "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/sub/..%2f..%2fsecret.txt",
    "/hello.txt/../../secret.txt",
    "/....//secret.txt",
    "/..../secret.txt",
    "/.../secret.txt",
    "/%2fsecret.txt",
    "/%2f..%2fsecret.txt",
    "//../secret.txt",
    "/%00../secret.txt",
    "/..%00/secret.txt",
    "/../secret.txt%00.png",
    "/../public-evil/x.txt",
    "/%2e%2e/public-evil/x.txt",
    "/..%2fpublic-evil%2fx.txt",
    "/link-out.txt",
    "/dir-out/inner.txt",
    "/dir-out/../secret.txt",
    "/dir-out%2finner.txt",
    "/C:%5csecret.txt",
    "/c:/secret.txt",
    "/%2e%2e%5c%2e%2e%5csecret.txt",
]

# Dotfiles and dot-folders (.env, .git/config: the classic leaks).
DOTFILES = [
    "/.env",
    "/%2eenv",
    "/%2Eenv",
    "/.git/config",
    "/%2egit/config",
    "/.git%2fconfig",
    "/sub/.secret",
    "/sub/%2esecret",
    "/./.env",
    "/.%2f.env",
    "/sub/./.secret",
]

# NUL bytes and backslashes in the name of a file that exists.
ODD_NAMES = [
    "/hello.txt%00",
    "/hello.txt%00.png",
    "/%00hello.txt",
    "/hello.txt\\",
    "/sub\\page.txt",
    "/sub%5cpage.txt",
    "/sub%5Cpage.txt",
    "/./hello.txt",
    "/sub/./page.txt",
    "/hello.txt/.",
    "/hello.txt:$DATA",
    "/hello.txt::$DATA",
]


def assert_refused(result, target):
    assert result.status in (400, 404), (target, result)
    for leak in LEAKS:
        assert leak not in result.body, (target, result)


@pytest.mark.parametrize("target", TRAVERSALS + DOTFILES + ODD_NAMES)
def test_nothing_outside_public_or_hidden_is_served(probe, target):
    assert_refused(probe.raw(target), target)
    # And through a server that passes only the decoded PATH_INFO.
    decoded = unquote_to_bytes(target).decode("latin-1")
    assert_refused(probe.decoded(decoded), target)
    assert_refused(probe.raw(target, method="HEAD"), target)


@pytest.mark.parametrize(
    "target",
    ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/..%5csecret.txt", "/link-out.txt",
     "/dir-out/inner.txt", "/.env", "/.git/config", "/hello.txt%00", "/%c0%ae%c0%ae/secret.txt"],
)
def test_nothing_outside_public_is_served_through_waitress(probe_server, target):
    raw = raw_exchange(
        server_port(probe_server),
        b"GET " + target.encode("latin-1") + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    status, _, body = split_response(raw)
    assert status in (400, 404), (target, raw[:200])
    for leak in LEAKS:
        assert leak not in raw


@pytest.mark.parametrize(
    "target, name",
    [("/hello.txt", "hello.txt"), ("/sub/page.txt", "sub/page.txt"), ("/caf%C3%A9.txt", "caf\u00e9.txt"),
     ("/link-in.txt", "hello.txt")],
)
def test_files_inside_public_are_served(probe, target, name):
    result = probe.raw(target)
    assert result.status == 200
    assert result.body == PUBLIC_FILES[name]


def test_folders_are_not_listed(probe):
    assert probe.raw("/sub").status == 404
    assert probe.raw("/dir-out").status == 404


def test_a_fifo_in_public_is_not_opened(probe):
    # open() on a FIFO blocks until a writer appears: a GET must never hang on one.
    fifo = probe.public / "pipe.txt"
    if not fifo.exists():
        os.mkfifo(fifo)
    assert_refused(probe.raw("/pipe.txt"), "/pipe.txt")


def test_a_symlink_to_a_device_is_not_served(probe):
    link = probe.public / "zero.bin"
    if not link.exists():
        os.symlink("/dev/zero", link)
    assert_refused(probe.raw("/zero.bin"), "/zero.bin")


def test_other_methods_on_a_file_are_405(probe):
    result = probe.raw("/hello.txt", method="POST")
    assert_error(result, 405)
    assert result.header("allow") == "GET, HEAD, OPTIONS"


# --- validators and Range ------------------------------------------------


@pytest.mark.parametrize(
    "header, value",
    [
        ("If-None-Match", "\"unterminated"),
        ("If-None-Match", ",,,,"),
        ("If-None-Match", "W/"),
        ("If-None-Match", "x" * 100_000),
        ("If-Modified-Since", "Thu, 99 Foo 20000 99:99:99 GMT"),
        ("If-Modified-Since", "Sat, 01 Jan 99999 00:00:00 GMT"),
        ("If-Modified-Since", "-1"),
        ("If-Modified-Since", "1" * 400),
        ("If-Modified-Since", "Mon, 01 Jan 0001 00:00:00 GMT"),
        ("If-Range", "\x01garbage"),
        ("Range", "bytes=0-1" + ",0-1" * 10_000),
    ],
)
def test_odd_validators_never_fail(probe, header, value):
    result = probe.raw("/hello.txt", headers={header: value})
    assert result.status in (200, 206, 304), result
    if result.status == 200:
        assert result.body == PUBLIC_FILES["hello.txt"]


SIZE = len(PUBLIC_FILES["big.bin"])


@pytest.mark.parametrize(
    "value, expected",
    [
        ("bytes=0-0", (206, 0, 0)),
        ("bytes=-1", (206, SIZE - 1, SIZE - 1)),
        ("bytes=-0", (416, None, None)),
        ("bytes=5-", (206, 5, SIZE - 1)),
        ("bytes=0-999999999", (206, 0, SIZE - 1)),
        ("bytes=-999999999", (206, 0, SIZE - 1)),
        (f"bytes={SIZE}-", (416, None, None)),
        ("bytes=99999999999999999999999999-", (416, None, None)),
        ("bytes=1-0", (200, 0, SIZE - 1)),
        ("bytes=0-1,2-3", (200, 0, SIZE - 1)),
        ("bytes=--1", (200, 0, SIZE - 1)),
        ("bytes=+1-2", (200, 0, SIZE - 1)),
        ("bytes=1_0-20", (200, 0, SIZE - 1)),
        ("bytes=\uff10-1", (200, 0, SIZE - 1)),
        ("bytes=0x10-20", (200, 0, SIZE - 1)),
        ("bytes=1-2-3", (200, 0, SIZE - 1)),
        ("items=0-1", (200, 0, SIZE - 1)),
        ("bytes", (200, 0, SIZE - 1)),
        ("bytes=", (200, 0, SIZE - 1)),
        ("bytes=-", (200, 0, SIZE - 1)),
    ],
)
def test_range_requests(probe, value, expected):
    status, first, last = expected
    result = probe.raw("/big.bin", headers={"Range": value})
    assert result.status == status, (value, result)
    if status == 416:
        assert result.header("content-range") == f"bytes */{SIZE}"
        return
    data = PUBLIC_FILES["big.bin"]
    assert result.body == data[first : last + 1]
    if status == 206:
        assert result.header("content-range") == f"bytes {first}-{last}/{SIZE}"
    assert result.header("content-length") == str(len(result.body))


def test_byte_range_on_an_empty_file():
    assert _byte_range("bytes=0-0", 0) == "unsatisfiable"
    # RFC 9110 14.1.1: a suffix range is satisfiable on an empty file; it
    # has no byte to send, so the answer is the whole (empty) file.
    assert _byte_range("bytes=-5", 0) is None
    assert _byte_range("bytes=-0", 0) == "unsatisfiable"


# The example app's /files/[name] serves uploads from UPLOADS_DIR: the name
# comes from the URL, so only a name the app itself could have saved is
# looked up (the same traversal list, through a route parameter this time).
@pytest.mark.parametrize(
    "target",
    [
        "/files/..%2Fcomments.db",
        "/files/..%2F..%2Frun.py",
        "/files/%2e%2e",
        "/files/.",
        "/files/..",
        "/files/.partial-x",
        "/files/%2Fetc%2Fpasswd",
        "/files/..%5Ccomments.db",
        "/files/a%00.txt",
        "/files/" + "a" * 200,
    ],
)
def test_example_downloads_reach_only_saved_uploads(client, example_env, target):
    (example_env / "uploads").mkdir(exist_ok=True)
    (example_env / "uploads" / ".partial-x").write_bytes(b"half an upload")
    (example_env / "secret.txt").write_bytes(SECRET)
    result = client.get(target)
    assert result.status in (400, 404), (target, result.status)
    assert SECRET not in result.content and b"half an upload" not in result.content


def test_example_uploads_come_back_inert(client):
    # An uploaded HTML page is sent with its own type, but the browser may
    # neither sniff another nor run its scripts on this origin.
    result = client.post("/files", files={"file": ("page.html", b"<script>alert(1)</script>", "image/png")})
    assert result.status == 201
    download = client.get(result.headers.get("location"))
    assert download.status == 200
    assert download.headers.get("x-content-type-options") == "nosniff"
    assert "sandbox" in download.headers.get("content-security-policy")
