"""Forms: urlencoded and multipart/form-data parse correctly or refuse with a
4xx and a reason; every limit holds; temporary files never outlive the request.

design.md limits: max_form_parts (fields plus files, 1000), max_form_memory
(a non-file field held in memory, 500 KiB), spool_size (a file part above it
goes to a temporary file, 1 MiB), max_body_size (10 MiB); each its own 413.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest

from helpers import make_environ, RecordingInput

from .conftest import Probe, assert_error


PARTS = 20
MEMORY = 2048
SPOOL = 8192


@pytest.fixture(scope="module")
def tight(tmp_path_factory) -> Probe:
    """The probe app with small form limits, so each limit is cheap to hit."""
    return Probe(
        tmp_path_factory.mktemp("tight"),
        max_form_parts=PARTS, max_form_memory=MEMORY, spool_size=SPOOL, max_body_size=1024 * 1024,
    )


def post_form(probe, body: bytes, content_type: str, **kwargs):
    environ = make_environ("POST", "/echo", query="mode=form", body=body, content_type=content_type, **kwargs)
    return probe.call(environ)


def fields(result) -> list:
    assert result.status == 200, result
    return [tuple(f) if isinstance(f[1], str) else (f[0], f[1]) for f in result.json()["form"]]


URLENCODED = "application/x-www-form-urlencoded"

# --- application/x-www-form-urlencoded ------------------------------------


# CVE-2021-23336 / CVE-2020-28473 (Bottle): ';' is not a separator in forms either.
def test_urlencoded_semicolon_is_data(probe):
    assert fields(post_form(probe, b"a=1;b=2&c=3", URLENCODED)) == [("a", "1;b=2"), ("c", "3")]


def test_urlencoded_decodes_utf8_and_keeps_blanks(probe):
    body = "q=caf%C3%A9&raw=caf\u00e9&blank=&bare&bad=%ff&plus=a+b".encode()
    assert fields(post_form(probe, body, URLENCODED)) == [
        ("q", "caf\u00e9"), ("raw", "caf\u00e9"), ("blank", ""), ("bare", ""), ("bad", "\ufffd"), ("plus", "a b"),
    ]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json", "application/x-www-form-urlencodedx"])
def test_form_with_another_media_type_is_415(probe, content_type):
    environ = make_environ("POST", "/echo", query="mode=form", body=b"a=1", content_type=content_type)
    assert_error(probe.call(environ), 415)


# Werkzeug CVE-2023-25577 and Starlette CVE-2023-30798: no cap on the number
# of form parts let one request allocate without bound. max_form_parts caps
# urlencoded fields too.
def test_urlencoded_field_count_is_capped(tight):
    body = "&".join(f"f{i}=1" for i in range(PARTS + 1)).encode()
    error = assert_error(post_form(tight, body, URLENCODED), 413)
    assert str(PARTS) in error["error"]
    body = "&".join(f"f{i}=1" for i in range(PARTS)).encode()
    assert len(fields(post_form(tight, body, URLENCODED))) == PARTS


# Werkzeug CVE-2024-49767 / Starlette CVE-2024-47874: non-file fields were
# held in memory without a size limit. max_form_memory caps one field.
def test_urlencoded_field_size_is_capped(tight):
    error = assert_error(post_form(tight, b"big=" + b"x" * (MEMORY + 1), URLENCODED), 413)
    assert "big" in error["error"]
    assert fields(post_form(tight, b"big=" + b"x" * MEMORY, URLENCODED)) == [("big", "x" * MEMORY)]


def test_urlencoded_field_size_counts_bytes_not_characters(tight):
    # The limit is in bytes (design.md: 500 KiB); a field of multi-byte
    # characters must not hold up to four times as much.
    value = "%E2%82%AC" * (MEMORY // 3 + 1)  # each one is 3 bytes of UTF-8
    assert_error(post_form(tight, ("big=" + value).encode(), URLENCODED), 413)


def test_urlencoded_empty_pieces_do_not_count_as_parts(tight):
    body = b"&" * 10_000 + b"a=1"
    assert fields(post_form(tight, body, URLENCODED)) == [("a", "1")]


# --- multipart/form-data ---------------------------------------------------

BOUNDARY = "XyZ-boundary-123"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def part(name: str, data: bytes, filename: str | None = None, content_type: str | None = None,
         boundary: str = BOUNDARY) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + data + b"\r\n"


def close(boundary: str = BOUNDARY) -> bytes:
    return f"--{boundary}--\r\n".encode()


# A part that names no Content-Type is text/plain (RFC 7578 4.4).
def file_info(data: bytes, filename: str, content_type: str = "text/plain") -> dict:
    return {
        "filename": filename, "content_type": content_type, "size": len(data), "read": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def test_multipart_fields_and_files_round_trip(probe):
    data = bytes(range(256)) * 10
    result = probe.client.post(
        "/echo?mode=form", data={"title": "caf\u00e9", "n": "1"}, files={"upload": ("a.bin", data, "image/png")}
    )
    assert fields(result) == [("title", "caf\u00e9"), ("n", "1"), ("upload", file_info(data, "a.bin", "image/png"))]


# Werkzeug CVE-2023-25577, Starlette CVE-2023-30798, python-multipart's
# max_fields/max_files: the part count is capped, files included.
def test_multipart_part_count_is_capped(tight):
    body = b"".join(part(f"f{i}", b"1") for i in range(PARTS)) + part("one-too-many", b"x", filename="x.txt") + close()
    error = assert_error(post_form(tight, body, MULTIPART), 413)
    assert str(PARTS) in error["error"]


def test_multipart_part_count_at_the_limit_is_fine(tight):
    body = b"".join(part(f"f{i}", b"1") for i in range(PARTS)) + close()
    assert len(fields(post_form(tight, body, MULTIPART))) == PARTS


# Werkzeug CVE-2024-49767, Starlette CVE-2024-47874: a part without a
# filename was buffered in memory whatever its size.
def test_multipart_giant_field_is_413(tight):
    body = part("big", b"x" * (MEMORY + 1)) + close()
    error = assert_error(post_form(tight, body, MULTIPART), 413)
    assert "big" in error["error"] or str(MEMORY) in error["error"]


def test_multipart_field_at_the_limit_is_fine(tight):
    body = part("big", b"x" * MEMORY) + close()
    assert fields(post_form(tight, body, MULTIPART)) == [("big", "x" * MEMORY)]


def test_multipart_files_are_not_capped_by_field_memory(tight):
    data = os.urandom(SPOOL * 4)  # bigger than both max_form_memory and spool_size
    body = part("file", data, filename="big.bin") + close()
    assert fields(post_form(tight, body, MULTIPART)) == [("file", file_info(data, "big.bin"))]


# Werkzeug CVE-2023-46136: a file part full of CR/LF made the parser slow
# (it rescanned at each chunk boundary). Correctness is checked, and the size
# bounds the work; plus a delimiter straddling the 64 KiB read boundary.
@pytest.mark.parametrize(
    "data",
    [
        b"\r\n" * 100_000,
        b"\r" * 150_000,
        b"\n" * 150_000,
        b"\r\n--" * 40_000,
        ("\r\n--" + BOUNDARY[:-1]).encode() * 5000,
        b"x" * (64 * 1024 - 3),
        b"x" * (64 * 1024 - 2 - len(BOUNDARY)),
        b"x" * (64 * 1024 - 60) + b"\r",
        b"ends with CR\r",
        b"ends with CRLF\r\n",
        b"--" + BOUNDARY.encode(),  # the boundary without its leading CRLF is data
        b"",
    ],
    ids=["crlf-run", "cr-run", "lf-run", "crlf-dashes", "near-boundary", "straddle-3", "straddle-delimiter",
         "cr-at-chunk-end", "ends-cr", "ends-crlf", "boundary-without-crlf", "empty"],
)
def test_multipart_cr_lf_edge_cases_round_trip(probe, data):
    body = part("file", data, filename="d.bin") + part("after", b"ok") + close()
    assert fields(post_form(probe, body, MULTIPART)) == [("file", file_info(data, "d.bin")), ("after", "ok")]


# RFC 2046 5.1.1: the preamble before the first delimiter and the epilogue
# after the last are ignored. python-multipart CVE-2024-53981: CR/LF junk
# there made the parser log (and work) per byte.
@pytest.mark.parametrize(
    "preamble, epilogue",
    [
        (b"This is a preamble.\r\n", b""),
        (b"\r\n" * 200_000, b""),
        (b"", b"epilogue junk\r\n" * 1000),
        (b"", b"\r\n" * 200_000),
        (b"junk --XyZ-boundary-12 not quite\r\n", b"--XyZ-boundary-123\r\nmore"),
    ],
    ids=["text-preamble", "crlf-preamble", "text-epilogue", "crlf-epilogue", "near-boundary-junk"],
)
def test_multipart_preamble_and_epilogue_are_ignored(probe, preamble, epilogue):
    body = preamble + part("a", b"1") + close() + epilogue
    assert fields(post_form(probe, body, MULTIPART)) == [("a", "1")]


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        'multipart/form-data; boundary=""',
        "multipart/form-data; boundary=" + "b" * 71,  # RFC 2046: 1 to 70 characters
        "multipart/form-data; charset=utf-8",
        "multipart/form-data; boundary=a\x00b",
    ],
)
def test_multipart_without_a_usable_boundary_is_400(probe, content_type):
    body = part("a", b"1") + close()
    assert_error(post_form(probe, body, content_type), 400)


@pytest.mark.parametrize(
    "content_type",
    [
        f'multipart/form-data; boundary="{BOUNDARY}"',
        f"Multipart/Form-Data; BOUNDARY={BOUNDARY}",
        f"multipart/form-data; charset=utf-8; boundary={BOUNDARY}",
        f"multipart/form-data;boundary={BOUNDARY}",
    ],
)
def test_multipart_boundary_parameter_variants(probe, content_type):
    body = part("a", b"1") + close()
    assert fields(post_form(probe, body, content_type)) == [("a", "1")]


@pytest.mark.parametrize("second", ["other", f'"{BOUNDARY}x"'])
def test_two_boundaries_are_400(probe, second):
    # A proxy that took the other one would read other fields from the same
    # body (RFC 6838 4.3: a parameter given twice is an error).
    body = part("a", b"1") + close()
    result = post_form(probe, body, f"multipart/form-data; boundary={BOUNDARY}; BOUNDARY={second}")
    assert_error(result, 400)
    assert "given twice, with two values" in result.json()["error"]


@pytest.mark.parametrize("second", [BOUNDARY, f'"{BOUNDARY}"'])
def test_one_boundary_given_twice_reads_one_way(probe, second):
    body = part("a", b"1") + close()
    assert fields(post_form(probe, body, f"multipart/form-data; boundary={BOUNDARY}; boundary={second}")) == [("a", "1")]


def test_multipart_quoted_boundary_with_special_characters(probe):
    # Every character RFC 2046 allows in a boundary ("bchars"), space included;
    # the quotes let the Content-Type carry them.
    boundary = "a b'()+_,-./:=?"
    body = part("a", b"1", boundary=boundary) + close(boundary)
    assert fields(post_form(probe, body, f'multipart/form-data; boundary="{boundary}"')) == [("a", "1")]


# python-multipart CVE-2024-24762 (and Starlette, which used it): a crafted
# Content-Type header made its option parser's regex backtrack. Parameters
# here are read in one pass; the size bounds the work.
@pytest.mark.parametrize(
    "suffix",
    ["; a=b" * 20_000, ";" * 100_000, '; x="' + "\\" * 100_000 + '"', "; x=" + "\t" * 100_000],
    ids=["many-params", "semicolons", "backslashes", "tabs"],
)
def test_crafted_content_type_parameters_parse_in_linear_time(probe, suffix):
    # The boundary comes first: the form parses, or the header is refused
    # with a 400 and a reason (a cap on parameters or backslashes is fine).
    body = part("a", b"1") + close()
    result = post_form(probe, body, MULTIPART + suffix)
    if result.status == 200:
        assert fields(result) == [("a", "1")]
    else:
        assert_error(result, 400)


@pytest.mark.parametrize(
    "body",
    [
        part("a", b"1"),  # no close delimiter
        part("a", b"1")[:-2],  # truncated in the data
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"a\"\r\n".encode(),  # ends in the headers
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"a\"".encode(),
        f"--{BOUNDARY}--".encode()[:-1],
        b"no boundary at all",
        b"",
    ],
)
def test_truncated_or_missing_multipart_is_400(probe, body):
    result = post_form(probe, body, MULTIPART)
    if result.status == 200:
        # An empty form is an acceptable reading of a body with no parts.
        assert result.json()["form"] == []
    else:
        assert_error(result, 400)


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Type: text/plain\r\n",  # no Content-Disposition
        b"Content-Disposition: form-data\r\n",  # no name
        b"Content-Disposition: attachment; name=\"a\"\r\n",
        b"Content-Disposition: form-data; name=\"a\"\r\nX: " + b"y" * 200_000 + b"\r\n",
        b"Content-Disposition: form-data; name=\"a\"\r\n" + b"X-Many: 1\r\n" * 20_000,
        b"Content-Disposition: form-data; name=\"a\"\r\nno colon here\r\n",
        b"Content-Disposition: form-data; name=\"a\"\n",  # bare LF line ending
    ],
    ids=["no-disposition", "no-name", "attachment", "long-header", "many-headers", "no-colon", "bare-lf"],
)
def test_malformed_part_headers_are_a_4xx_or_skipped(tight, headers):
    body = f"--{BOUNDARY}\r\n".encode() + headers + b"\r\nvalue\r\n" + part("b", b"2") + close()
    result = post_form(tight, body, MULTIPART)
    if result.status == 200:
        assert ("b", "2") in fields(result)
    else:
        assert_error(result, 400, 413)


@pytest.mark.parametrize(
    "disposition, name, filename",
    [
        ('form-data; name="a;b"; filename="x;y.txt"', "a;b", "x;y.txt"),
        ('form-data; name="q\\"uote"; filename="f.txt"', 'q"uote', "f.txt"),
        ('form-data; name=bare; filename=bare.txt', "bare", "bare.txt"),
        ('form-data; NAME="up"; FILENAME="case.txt"', "up", "case.txt"),
        ('form-data; name="f"; filename="../../etc/passwd"', "f", None),
        ('form-data; name="f"; filename="C:\\\\evil\\\\x.txt"', "f", None),
    ],
)
def test_part_names_and_filenames_are_data(probe, disposition, name, filename):
    body = (
        f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + b"content\r\n" + close()
    )
    (got,) = fields(post_form(probe, body, MULTIPART))
    assert got[0] == name
    info = got[1]
    if filename is not None:
        assert info["filename"] == filename
    # Whatever the parser keeps of a path-like name, it is only ever data:
    # the framework never writes the file by that name.
    assert info["read"] == len(b"content")


def test_the_example_app_never_uses_the_client_filename_as_a_path(client, example_env):
    result = client.post("/files", files={"file": ("../../escape.txt", b"data", "text/plain")})
    assert result.status == 201, result.text
    assert not (example_env / "escape.txt").exists()
    assert not (example_env.parent / "escape.txt").exists()
    stored = [p.name for p in (example_env / "uploads").iterdir()]
    assert stored and all("/" not in n and not n.startswith(".") for n in stored)


def test_body_shorter_than_content_length_is_400(probe):
    body = part("a", b"1") + close()
    environ = make_environ(
        "POST", "/echo", query="mode=form", wsgi_input=RecordingInput(body),
        content_length=str(len(body) + 100), content_type=MULTIPART,
    )
    assert_error(probe.call(environ, validate=False), 400)


# Spooled uploads are temporary files: they must be gone when the request
# ends, whether the handler succeeded, a later part broke a limit, or the
# body was cut short.
@pytest.fixture
def private_tempdir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize(
    "tail, expected",
    [
        (close(), 200),
        (b"".join(part(f"f{i}", b"1") for i in range(PARTS)) + close(), 413),
        (part("big", b"x" * (MEMORY + 1)) + close(), 413),
        (b"", 400),
    ],
    ids=["complete", "too-many-parts", "giant-field", "truncated"],
)
def test_temporary_files_are_removed_when_the_request_ends(tight, private_tempdir, tail, expected):
    data = os.urandom(SPOOL * 3)
    before = open_fds()
    body = part("file", data, filename="spooled.bin") + tail
    result = post_form(tight, body, MULTIPART)
    assert result.status == expected, result
    assert list(private_tempdir.iterdir()) == []
    assert open_fds() <= before


# A part may name its charset (RFC 7578 4.4). Whatever it names, the field is
# text that can be written out again: an unknown or non-text codec is a 400,
# and a decoder that yields unpaired surrogates (UTF-7 decodes "+2AA-" to
# U+D800) must not hand the handler a str that fails the first time it is
# encoded (a 500 in Response.json or in SQLite), as with lone "\ud800"
# escapes in JSON (RFC 7493 2.1).
def charset_part(charset: str, data: bytes) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f"\r\n'
        f"Content-Type: text/plain; charset={charset}\r\n\r\n".encode() + data + b"\r\n" + close()
    )


@pytest.mark.parametrize(
    "charset, data, expected",
    [
        ("utf-8", "caf\u00e9".encode(), "caf\u00e9"),
        ("iso-8859-1", "caf\u00e9".encode("latin-1"), "caf\u00e9"),
        ("utf-16", "caf\u00e9".encode("utf-16"), "caf\u00e9"),
        ("bogus", b"x", None),
        ("base64", b"eA==", None),
        ("rot13", b"x", None),
        ("zlib", b"x", None),
        ("punycode", b"x", None),
        ("utf-8", b"\xff", None),
        ("utf-16", b"\x00\xd8", None),
    ],
)
def test_part_charsets_decode_or_are_400(probe, charset, data, expected):
    result = post_form(probe, charset_part(charset, data), MULTIPART)
    if expected is None:
        assert_error(result, 400)
    else:
        assert fields(result) == [("f", expected)]


@pytest.mark.parametrize("data", [b"+2AA-", b"+3AA-", b"a+2D3cAA-b"])
def test_a_charset_that_decodes_to_lone_surrogates_is_400(probe, data):
    result = post_form(probe, charset_part("utf-7", data), MULTIPART)
    assert result.status in (200, 400), result
    if result.status == 200:
        (field,) = result.json()["form"]
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in field[1])
