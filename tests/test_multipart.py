"""The streaming multipart/form-data parser: round trips, limits, malformed bodies, linear time."""

from __future__ import annotations

import ast
import io
import os
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Callable, Iterator, Union
from urllib.parse import quote

import pytest

import minirouter as mp
from minirouter import HTTPError, UploadFile, multipart_boundary, parse_multipart

BOUNDARY = "----minirouterBoundary7MA4YWxkTrZu0gW"
CHUNK_SIZES = [1, 2, 7, 65536]
LIMITS = {"max_parts": 1000, "max_field_memory": 500 * 1024, "spool_size": 1024 * 1024}

Part = Union[tuple[str, bytes], tuple[str, str, bytes, str]]  # field, or file with type


def encode(
    parts: list[Part], boundary: str = BOUNDARY, preamble: bytes = b"", epilogue: bytes = b""
) -> bytes:
    """A form as a client sends it: (name, value) fields, (name, filename, content, type) files."""
    out = [preamble]
    for part in parts:
        out.append(b"--" + boundary.encode() + b"\r\n")
        if len(part) == 2:
            name, value = part
            out.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
            out.append(value)
        else:
            name, filename, content, ctype = part
            out.append(
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n".encode()
            )
            out.append(content)
        out.append(b"\r\n")
    out.append(b"--" + boundary.encode() + b"--\r\n" + epilogue)
    return b"".join(out)


def raw_part(headers: str, content: bytes = b"x") -> bytes:
    """A body of one part with the header block given as is."""
    boundary = BOUNDARY.encode()
    head = b"--" + boundary + b"\r\n" + headers.encode("utf-8") + b"\r\n\r\n"
    return head + content + b"\r\n--" + boundary + b"--\r\n"


def parse(body: bytes, chunk_size: int = 65536, boundary: str = BOUNDARY, **limits: int):
    options = {**LIMITS, **limits}
    return parse_multipart(io.BytesIO(body).read, boundary, chunk_size=chunk_size, **options)


def plain(form) -> list[tuple[str, object]]:
    """The form with each upload replaced by (filename, content_type, content), and closed."""
    result: list[tuple[str, object]] = []
    for name, value in form:
        if isinstance(value, UploadFile):
            content = value.read()
            assert value.size == len(content)
            result.append((name, (value.filename, value.content_type, content)))
            value.close()
        else:
            result.append((name, value))
    return result


def expect_error(status: int, body: bytes, fragment: str = "", **kwargs) -> HTTPError:
    with pytest.raises(HTTPError) as caught:
        plain(parse(body, **kwargs))
    assert caught.value.status == status, caught.value.message
    assert fragment in caught.value.message
    return caught.value


@pytest.fixture
def spools(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every temporary file the parser makes, to check that errors close them."""
    made: list = []
    real = tempfile.SpooledTemporaryFile

    def tracking(*args, **kwargs):
        spool = real(*args, **kwargs)
        made.append(spool)
        return spool

    monkeypatch.setattr(mp.tempfile, "SpooledTemporaryFile", tracking)
    return made


# ---- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_fields_and_files_round_trip(chunk_size: int) -> None:
    body = encode(
        [
            ("title", b"Hello"),
            ("doc", "a.txt", b"file content\n", "text/plain"),
            ("title", b"again"),
            ("img", "b.bin", bytes(range(256)) * 4, "image/png"),
        ]
    )
    assert plain(parse(body, chunk_size)) == [
        ("title", "Hello"),
        ("doc", ("a.txt", "text/plain", b"file content\n")),
        ("title", "again"),
        ("img", ("b.bin", "image/png", bytes(range(256)) * 4)),
    ]


# Content that looks like, or starts like, a delimiter without being one.
TRICKY = [
    b"\r",
    b"\n",
    b"\r\n",
    b"--",
    b"\r\n\r\n",
    b"-\r\n-",
    b"\r\r\n\n",
    b"--" + BOUNDARY.encode(),  # a boundary with no CRLF before it
    b"\r\n--" + BOUNDARY[:-1].encode(),  # all but the last character
    b"\r\n-" + BOUNDARY.encode(),  # one dash short
    b"\n--" + BOUNDARY.encode() + b"\r\n",  # LF alone before it
    b"\r--" + BOUNDARY.encode() + b"\r\n",  # CR alone before it
    b"\r\n--" + BOUNDARY[:10].encode(),  # a prefix, then the real delimiter
]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
@pytest.mark.parametrize("tricky", TRICKY)
def test_content_that_resembles_a_delimiter_is_kept(chunk_size: int, tricky: bytes) -> None:
    contents = [tricky, b"a" + tricky + b"z", tricky + tricky, b"\x00\xff" + tricky]
    body = encode(
        [
            (f"f{i}", "x.bin", content, "application/octet-stream")
            for i, content in enumerate(contents)
        ]
    )
    assert plain(parse(body, chunk_size, spool_size=10)) == [
        (f"f{i}", ("x.bin", "application/octet-stream", content))
        for i, content in enumerate(contents)
    ]


@pytest.mark.parametrize("tricky", TRICKY)
def test_field_content_that_resembles_a_delimiter(tricky: bytes) -> None:
    body = raw_part(
        'Content-Disposition: form-data; name="v"\r\nContent-Type: text/plain; charset=iso-8859-1',
        b"<" + tricky + b">",
    )
    for chunk_size in CHUNK_SIZES:
        assert parse(body, chunk_size) == [("v", "<" + tricky.decode("latin-1") + ">")]


def test_every_chunk_size_gives_the_same_form() -> None:
    # Every chunk edge position lands somewhere in the delimiters and headers at least once.
    body = encode(
        [
            ("a", b"1\r\n--" + BOUNDARY[:5].encode()),
            ("f", "n.txt", b"\r\n-\r\n--", "text/plain"),
            ("b", b""),
        ],
        preamble=b"pre\r\n",
        epilogue=b"post",
    )
    expected = plain(parse(body))
    for chunk_size in range(1, len(body) + 2):
        assert plain(parse(body, chunk_size)) == expected


def test_short_reads_are_handled() -> None:
    # read(n) may give fewer bytes than asked, as a socket does.
    body = encode([("a", b"value"), ("f", "x", b"\r\n" * 50, "text/plain")])
    stream = io.BytesIO(body)
    form = parse_multipart(lambda n: stream.read(min(n, 3)), BOUNDARY, **LIMITS)
    assert plain(form) == [("a", "value"), ("f", ("x", "text/plain", b"\r\n" * 50))]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_empty_file_empty_field_and_no_file_chosen(chunk_size: int) -> None:
    body = encode(
        [
            ("empty", b""),
            ("f", "empty.txt", b"", "text/plain"),
            ("nofile", "", b"", "application/octet-stream"),
        ]
    )
    assert plain(parse(body, chunk_size)) == [
        ("empty", ""),
        ("f", ("empty.txt", "text/plain", b"")),
        # A browser sends filename="" when no file was picked: still a file part.
        ("nofile", ("", "application/octet-stream", b"")),
    ]


def test_form_with_no_parts() -> None:
    assert parse(b"--" + BOUNDARY.encode() + b"--\r\n") == []
    assert parse(b"--" + BOUNDARY.encode() + b"--") == []


def test_part_without_content_type_defaults_to_text_plain() -> None:
    # RFC 7578 4.4: a part's Content-Type "defaults to 'text/plain'" (Next.js's formData() agrees).
    body = raw_part('Content-Disposition: form-data; name="f"; filename="a"', b"data")
    ((_, upload),) = parse(body)
    assert upload.content_type == "text/plain"
    assert upload.headers == {"content-disposition": 'form-data; name="f"; filename="a"'}
    upload.close()


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_unicode_names_and_values(chunk_size: int) -> None:
    body = encode(
        [
            ("naïve ñame", "café ✓".encode()),
            ("pièce", "résumé 日本.txt", "ü".encode(), "text/plain; charset=utf-8"),
        ]
    )
    assert plain(parse(body, chunk_size)) == [
        ("naïve ñame", "café ✓"),
        ("pièce", ("résumé 日本.txt", "text/plain; charset=utf-8", "ü".encode())),
    ]


def test_extended_filename_wins_over_plain_filename() -> None:
    # RFC 7578 4.2 / RFC 5987: filename*=UTF-8''percent-encoded.
    body = raw_part(
        'Content-Disposition: form-data; name="f"; filename="rates.txt"; '
        "filename*=UTF-8''%E2%82%AC%20rates.txt"
    )
    ((_, upload),) = parse(body)
    assert upload.filename == "€ rates.txt"
    upload.close()
    latin = raw_part("Content-Disposition: form-data; name=f; filename*=iso-8859-1'fr'caf%E9")
    ((_, upload),) = parse(latin)
    assert upload.filename == "café"
    upload.close()


def test_one_odd_byte_in_another_header_does_not_change_the_names() -> None:
    # Each header line is read on its own: a latin-1 byte in X-Note leaves the
    # UTF-8 name and file name as they were sent.
    head = 'Content-Disposition: form-data; name="café"; filename="naïve.txt"'.encode() + b"\r\nX-Note: \xe9"
    body = b"--" + BOUNDARY.encode() + b"\r\n" + head + b"\r\n\r\nv\r\n--" + BOUNDARY.encode() + b"--\r\n"
    ((name, upload),) = parse(body)
    assert (name, upload.filename, upload.headers["x-note"]) == ("café", "naïve.txt", "é")
    upload.close()


@pytest.mark.parametrize(
    "value",
    [
        "UTF-8''%FF%FE",  # not UTF-8
        "UTF-8'%41",  # one quote missing
        "KOI8-R''%C1",  # RFC 5987 asks for UTF-8 or ISO-8859-1 only
        "UTF-8''%00.txt",  # a NUL, refused as a raw one is: open() of such a name raises
        "iso-8859-1''a%00",
    ],
)
def test_malformed_extended_filename(value: str) -> None:
    expect_error(
        400, raw_part(f"Content-Disposition: form-data; name=f; filename*={value}"), "RFC 8187"
    )


@pytest.mark.parametrize(
    "disposition, name, filename",
    [
        ('form-data; name="a\\"b"; filename="q\\"uote.txt"', 'a"b', 'q"uote.txt'),
        ('form-data; name="x"; filename="C:\\Users\\me\\f.txt"', "x", "C:\\Users\\me\\f.txt"),
        ('form-data; name="x"; filename="back\\\\slash"', "x", "back\\\\slash"),  # no escapes (HTML)
        (
            'FORM-DATA ;NAME=plain ; FileName = "spaced; semi=colon.txt"',
            "plain",
            "spaced; semi=colon.txt",
        ),
        ('form-data; name=""; filename="a"', "", "a"),
        ('form-data; bare; name="n"; filename="f"', "n", "f"),
        # An RFC 8187 value is decoded once: an escape that spells "%22" stays "%22". The
        # browsers' own escapes (%22, %0D, %0A) belong to the quoted form only.
        ("form-data; name=f; filename*=UTF-8''100%2522.txt", "f", "100%22.txt"),
        ("form-data; name*=UTF-8''a%250D%250Ab; filename=x", "a%0D%0Ab", "x"),
        ('form-data; name="a%0D%0Ab"; filename="say %22hi%22.txt"', "a\r\nb", 'say "hi".txt'),
    ],
)
def test_content_disposition_parameters(disposition: str, name: str, filename: str) -> None:
    ((got_name, upload),) = parse(raw_part(f"Content-Disposition: {disposition}"))
    assert (got_name, upload.filename) == (name, filename)
    upload.close()


def test_field_charset_from_part_content_type() -> None:
    body = raw_part(
        'Content-Disposition: form-data; name="t"\r\nContent-Type: text/plain; charset=latin-1',
        "café".encode("latin-1"),
    )
    assert parse(body) == [("t", "café")]


def test_preamble_and_epilogue_are_ignored() -> None:
    junk = (
        b"This is a preamble.\r\n--not-the-boundary\r\nx--"
        + BOUNDARY.encode()
        + b"\r\n"
        + b"\r\n--"
        + BOUNDARY[:-1].encode()
        + b"\r\n\r\n-"
    )
    body = encode(
        [("a", b"1")],
        preamble=junk + b"\r\n",
        epilogue=b"\r\n--" + BOUNDARY.encode() + b"\r\ngarbage",
    )
    for chunk_size in CHUNK_SIZES:
        assert parse(body, chunk_size) == [("a", "1")]


def test_transport_padding_after_the_boundary() -> None:
    body = (
        b"--"
        + BOUNDARY.encode()
        + b" \t \r\n"
        + b'Content-Disposition: form-data; name="a"\r\n\r\n1'
        + b"\r\n--"
        + BOUNDARY.encode()
        + b"\t\r\n"
        + b'Content-Disposition: form-data; name="b"\r\n\r\n2'
        + b"\r\n--"
        + BOUNDARY.encode()
        + b"--  \r\n"
    )
    assert parse(body) == [("a", "1"), ("b", "2")]


def test_transport_padding_up_to_its_limit_in_any_chunking() -> None:
    from minirouter import MULTIPART_PADDING_LIMIT

    def with_padding(padding: bytes) -> bytes:
        return (b"--" + BOUNDARY.encode() + padding + b"\r\n"
                + b'Content-Disposition: form-data; name="a"\r\n\r\n1\r\n--' + BOUNDARY.encode() + b"--\r\n")

    for chunk_size in CHUNK_SIZES:
        assert parse(with_padding(b" \t" * (MULTIPART_PADDING_LIMIT // 2)), chunk_size) == [("a", "1")]
        with pytest.raises(HTTPError, match="malformed multipart boundary line"):
            parse(with_padding(b" " * (MULTIPART_PADDING_LIMIT + 1)), chunk_size)


def test_epilogue_is_not_read() -> None:
    body = encode([("a", b"1")])
    reads: list[int] = []
    stream = io.BytesIO(body + b"E" * 100000)

    def read(n: int) -> bytes:
        reads.append(n)
        return stream.read(n)

    assert parse_multipart(read, BOUNDARY, chunk_size=len(body), **LIMITS) == [("a", "1")]
    assert len(reads) == 1


def random_reader(body: bytes, rng: random.Random) -> Callable[[int], bytes]:
    """read(n) giving a random amount up to n, as a network would."""
    stream = io.BytesIO(body)
    return lambda n: stream.read(rng.randint(1, n))


def test_random_forms_round_trip() -> None:
    # Content drawn mostly from the bytes a delimiter is made of, cut at random places.
    rng = random.Random(7)
    boundary = "b0"
    alphabet = [b"\r", b"\n", b"-", b"b", b"0", b"\r\n", b"--", b"\r\n--b", b"x"]
    for _ in range(300):
        parts: list[Part] = []
        for index in range(rng.randint(0, 4)):
            content = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
            if b"\r\n--" + boundary.encode() in b"\r\n" + content + b"\r\n":
                content = content.replace(
                    b"b", b"x"
                )  # a client picks a boundary not in the content
            parts.append(
                (f"f{index}", "n", content, "a/b")
                if rng.random() < 0.5
                else (f"v{index}", content.replace(b"\r", b"").replace(b"\n", b""))
            )
        body = encode(parts, boundary=boundary, preamble=rng.choice([b"", b"pre\r\n", b"\r\n"]))
        expected = [
            (p[0], p[1].decode()) if len(p) == 2 else (p[0], (p[1], p[3], p[2])) for p in parts
        ]
        form = parse_multipart(
            random_reader(body, rng), boundary, chunk_size=rng.choice([1, 3, 16, 4096]), **LIMITS
        )
        assert plain(form) == expected


def test_mangled_bodies_give_a_4xx_or_a_form(spools: list) -> None:
    # Random damage to a valid body: the parser answers with its own 400/413 or a form,
    # never another exception, and leaves no temporary file open.
    rng = random.Random(11)
    body = encode(
        [("a", b"1"), ("f", "f.txt", b"x\r\n--y", "text/plain"), ("b", "é".encode())],
        boundary="bnd",
    )
    for _ in range(3000):
        mangled = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            where = rng.randrange(len(mangled))
            action = rng.random()
            if action < 0.4:
                mangled[where] = rng.choice(b'\r\n-\\";=\x00\xffb')
            elif action < 0.7:
                del mangled[where : where + rng.randint(1, 8)]
            else:
                mangled[where:where] = mangled[rng.randrange(len(mangled)) :][: rng.randint(1, 12)]
        spools.clear()
        try:
            form = parse_multipart(
                random_reader(bytes(mangled), rng),
                "bnd",
                max_parts=5,
                max_field_memory=20,
                spool_size=5,
                chunk_size=rng.choice([1, 7, 64]),
            )
        except HTTPError as error:
            assert error.status in (400, 413)
            assert all(spool.closed for spool in spools)
        else:
            plain(form)


# ---- UploadFile ---------------------------------------------------------------------------------


def test_upload_read_save_and_close(tmp_path: Path) -> None:
    content = os.urandom(300000)
    ((_, upload),) = parse(
        encode([("f", "r.bin", content, "application/octet-stream")]), spool_size=1000
    )
    assert (
        repr(upload)
        == "<UploadFile filename='r.bin' content_type='application/octet-stream' size=300000>"
    )
    assert upload.read(10) == content[:10]  # the first read starts at the beginning
    upload.save(tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == content
    assert upload.read(5) == content[10:15]  # save() does not move a read in progress
    upload.save(str(tmp_path / "again.bin"))
    assert (tmp_path / "again.bin").read_bytes() == content
    assert upload.read() == content[15:]
    assert upload.read() == b""
    upload.close()
    with pytest.raises(ValueError):
        upload.read()


def test_upload_as_context_manager() -> None:
    ((_, upload),) = parse(encode([("f", "a", b"abc", "text/plain")]))
    with upload as same:
        assert same.read() == b"abc"
    assert upload._file.closed


def test_file_above_spool_size_goes_to_disk() -> None:
    body = encode(
        [
            ("small", "s", b"x" * 100, "text/plain"),
            ("exact", "e", b"x" * 101, "text/plain"),
            ("big", "b", b"y" * 102, "text/plain"),
        ]
    )
    form = parse(body, spool_size=101)
    rolled = {name: upload._file._rolled for name, upload in form}
    assert rolled == {"small": False, "exact": False, "big": True}
    assert isinstance(form[2][1]._file.fileno(), int)
    assert plain(form)[2] == ("big", ("b", "text/plain", b"y" * 102))


def test_spool_size_zero_means_always_on_disk() -> None:
    ((_, upload),) = parse(encode([("f", "a", b"", "text/plain")]), spool_size=0)
    assert upload._file._rolled
    upload.close()


# ---- limits -------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [7, 65536])
def test_parts_at_the_limit_and_one_over(chunk_size: int) -> None:
    parts: list[Part] = [(f"f{i}", b"v") for i in range(25)] + [
        (f"u{i}", f"{i}.txt", b"c", "text/plain") for i in range(25)
    ]
    assert len(plain(parse(encode(parts), chunk_size, max_parts=50))) == 50
    error = expect_error(
        413, encode(parts + [("one", b"more")]), chunk_size=chunk_size, max_parts=50
    )
    assert error.message == "form has more than 50 parts"


def test_too_many_parts_closes_the_files(spools: list) -> None:
    parts: list[Part] = [(f"u{i}", f"{i}.txt", b"c", "text/plain") for i in range(4)]
    expect_error(413, encode(parts), max_parts=3)
    assert len(spools) == 3 and all(spool.closed for spool in spools)


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_field_at_the_memory_limit_and_over(chunk_size: int) -> None:
    assert parse(encode([("a", b"x" * 300)]), chunk_size, max_field_memory=300) == [
        ("a", "x" * 300)
    ]
    error = expect_error(
        413, encode([("a", b"x" * 301)]), chunk_size=chunk_size, max_field_memory=300
    )
    assert error.message == "form field 'a' is larger than 300 bytes"
    # The limit is per field and files are not fields.
    form = parse(
        encode([("a", b"x" * 300), ("b", b"y" * 300), ("f", "f", b"z" * 1000, "text/plain")]),
        chunk_size,
        max_field_memory=300,
    )
    assert [size for size in (len(v) if isinstance(v, str) else v.size for _, v in form)] == [
        300,
        300,
        1000,
    ]
    plain(form)


def test_oversized_field_is_refused_without_buffering_it() -> None:
    def endless_field() -> Iterator[bytes]:
        yield b"--" + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="a"\r\n\r\n'
        for _ in range(10000):  # 655 MB if it were all read
            yield b"x" * 65536

    chunks = endless_field()
    served = []

    def read(n: int) -> bytes:
        served.append(1)
        return next(chunks, b"")

    expect_error_from(
        413,
        lambda: parse_multipart(
            read, BOUNDARY, max_parts=10, max_field_memory=200000, spool_size=10
        ),
    )
    assert len(served) < 10


def expect_error_from(status: int, call: Callable[[], object]) -> HTTPError:
    with pytest.raises(HTTPError) as caught:
        call()
    assert caught.value.status == status, caught.value.message
    return caught.value


def test_part_headers_limit() -> None:
    near = "x" * (mp.MULTIPART_HEADER_LIMIT - 100)
    ((_, upload),) = parse(raw_part(f'Content-Disposition: form-data; name="a"; filename="{near}"'))
    assert upload.filename == near
    upload.close()
    over = "x" * mp.MULTIPART_HEADER_LIMIT
    for chunk_size in (7, 65536):
        error = expect_error(
            413,
            raw_part(f'Content-Disposition: form-data; name="a"; filename="{over}"'),
            chunk_size=chunk_size,
        )
        assert error.message == "multipart part headers are larger than 16384 bytes"
    # Headers that never end are refused at the limit, not read to the end of the body.
    endless = b"--" + BOUNDARY.encode() + b"\r\nX-Long: " + b"a" * 10_000_000
    expect_error(413, endless, chunk_size=4096)


def test_each_limit_has_its_own_message() -> None:
    messages = {
        expect_error(413, encode([("a", b"1"), ("b", b"2")]), max_parts=1).message,
        expect_error(413, encode([("a", b"12")]), max_field_memory=1).message,
        expect_error(413, raw_part("X: " + "a" * 20000)).message,
    }
    assert len(messages) == 3


# ---- malformed input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({}, "missing"),
        ({"charset": "utf-8"}, "missing"),
        ({"boundary": ""}, "missing"),
        ({"boundary": "x" * 71}, "invalid"),
        ({"boundary": "has space at end "}, "invalid"),
        ({"boundary": "semi;colon"}, "invalid"),
        ({"boundary": 'quote"d'}, "invalid"),
        ({"boundary": "café"}, "invalid"),
        ({"boundary": "a\r\nb"}, "invalid"),
    ],
)
def test_unusable_boundary(params: dict[str, str], fragment: str) -> None:
    error = expect_error_from(400, lambda: multipart_boundary(params))
    assert fragment in error.message


def test_usable_boundaries() -> None:
    assert multipart_boundary({"boundary": "x" * 70}) == "x" * 70
    assert multipart_boundary({"BOUNDARY": "abc"}) == "abc"
    odd = "'()+_,-./:=? 09azAZ"
    assert multipart_boundary({"boundary": odd}) == odd
    assert parse(encode([("a", b"1")], boundary=odd), boundary=odd) == [("a", "1")]


def test_parse_multipart_checks_the_boundary_too() -> None:
    expect_error(400, b"", boundary="")
    expect_error(400, b"", boundary="é")


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"", "does not contain the boundary"),
        (b"just some text without any boundary\r\n", "does not contain the boundary"),
        (b"--" + BOUNDARY[:-1].encode() + b"\r\n", "does not contain the boundary"),
        (
            b"x--" + BOUNDARY.encode() + b"\r\n",
            "does not contain the boundary",
        ),  # needs CRLF before it
        (b"--" + BOUNDARY.encode() + b"   x\r\n", "boundary line"),
        (b"--" + BOUNDARY.encode() + b"\rX", "boundary line"),
        (b"--" + BOUNDARY.encode() + b" " * 2000 + b"\r\n", "boundary line"),
        (b"--" + BOUNDARY.encode() + b"X\r\n", "boundary line"),
    ],
)
def test_body_without_a_proper_opening_delimiter(body: bytes, fragment: str) -> None:
    for chunk_size in CHUNK_SIZES:
        expect_error(400, body, fragment, chunk_size=chunk_size)


@pytest.mark.parametrize("after", [b"X\r\n", b"-x\r\n", b"\t-\r\n", b"\r", b"\n"])
def test_content_holding_the_boundary_at_a_line_start_is_refused(
    after: bytes, spools: list
) -> None:
    # RFC 2046 5.1.1: a line that starts with the delimiter is a delimiter, whatever
    # follows; a boundary must never occur in content, so such a body is malformed.
    content = b"a\r\n--" + BOUNDARY.encode() + after + b"b"
    for chunk_size in CHUNK_SIZES:
        spools.clear()
        expect_error(
            400, encode([("f", "f", content, "text/plain")]), "boundary line", chunk_size=chunk_size
        )
        assert len(spools) == 1 and spools[0].closed


def test_every_truncation_is_a_400_and_closes_files(spools: list) -> None:
    body = encode(
        [("a", b"1"), ("f", "f.txt", b"content\r\n", "text/plain"), ("b", b"2")],
        preamble=b"pre\r\n",
    )
    end = body.index(b"--\r\n", len(body) - len(BOUNDARY) - 8) + 2  # just past the closing "--"
    for cut in range(end):
        spools.clear()
        for chunk_size in (1, 65536):
            expect_error(400, body[:cut], chunk_size=chunk_size)
            assert all(spool.closed for spool in spools)
    assert len(plain(parse(body[:end]))) == 3


@pytest.mark.parametrize(
    "headers, status, fragment",
    [
        ("", 400, "no Content-Disposition"),
        ("Content-Type: text/plain", 400, "no Content-Disposition"),
        ('Content-Disposition: attachment; name="a"', 400, "not form-data"),
        ("Content-Disposition: form-data", 400, "no name"),
        ('Content-Disposition: form-data; filename="a.txt"', 400, "no name"),
        ('Content-Disposition form-data; name="a"', 400, "malformed multipart part header"),
        (' Content-Disposition: form-data; name="a"', 400, "malformed multipart part header"),
        ('Content-Disposition : form-data; name="a"', 400, "malformed multipart part header"),
        ('Content-Disposition: form-data;\r\n name="a"', 400, "malformed multipart part header"),
        (
            'Content-Disposition: form-data; name="a"\rX-Evil: 1',
            400,
            "malformed multipart part header",
        ),
        (
            'Content-Disposition: form-data; name="a"\nX-Evil: 1',
            400,
            "malformed multipart part header",
        ),
        ('Content-Disposition: form-data; name="a\0"', 400, "malformed multipart part header"),
        (
            'Content-Disposition: form-data; name="a"\r\nContent-Disposition: form-data; name="b"',
            400,
            "two Content-Disposition headers",
        ),
        ('Content-Disposition: form-data; name="a"; name="b"', 400, "gives parameter 'name' twice"),
        ('Content-Disposition: form-data; name="a"; filename="unterminated', 400, "unterminated"),
        (
            'Content-Disposition: form-data; name="a"junk; filename="f"',
            400,
            "malformed multipart part header parameter",
        ),
        ('Content-Disposition: form-data; na me="a"', 400, "malformed multipart part header parameter"),
        ('Content-Disposition: form-data; ="a"', 400, "malformed multipart part header parameter"),
        ('Content-Disposition: form-data; name="a\x01"', 400, "control character"),
        ('Content-Disposition: form-data; name="a\x7f"', 400, "control character"),
        ("Content-Disposition: form-data; name=a; filename*=UTF-8''%4", 400, "RFC 8187"),
        ("Content-Disposition: form-data; name=a; filename*=UTF-8''%%41", 400, "RFC 8187"),
        ("Content-Disposition: form-data; name=a" + "; x" * 40, 400, "more than 32 parameters"),
        (
            "Content-Disposition: form-data; name=a" + "".join(f"; x{i}=1" for i in range(40)),
            400,
            "more than 32 parameters",
        ),
        ('Content-Disposition: form-data; name="a"' + "\r\nX-A: 1" * 40, 413, "more than 32 header lines"),
        (
            'Content-Disposition: form-data; name="a"; filename="' + "\\" * 66 + '"',
            400,
            "more than 64 backslashes",
        ),
    ],
)
def test_malformed_part_headers(headers: str, status: int, fragment: str) -> None:
    expect_error(status, raw_part(headers), fragment)


@pytest.mark.parametrize(
    "content_type, content, fragment",
    [
        ("text/plain", b"\xff\xfe", "not valid UTF-8"),
        ("text/plain; charset=utf-8", b"caf\xe9", "not valid UTF-8"),
        ("text/plain; charset=no-such-charset", b"a", "unsupported charset"),
        ("text/plain; charset=base64", b"YQ==", "unsupported charset"),
        ("text/plain; charset=punycode", b"a", "unsupported charset"),
    ],
)
def test_field_that_cannot_be_decoded(content_type: str, content: bytes, fragment: str) -> None:
    body = raw_part(
        f'Content-Disposition: form-data; name="t"\r\nContent-Type: {content_type}', content
    )
    expect_error(400, body, fragment)


def test_binary_data_in_a_field_is_refused_with_a_way_out() -> None:
    # curl -F 'blob=<image.png' sends a part without a file name: the 400 names
    # the field and says how to send bytes, rather than turn them into U+FFFD.
    body = raw_part('Content-Disposition: form-data; name="blob"\r\nContent-Type: image/png', b"\x89PNG\r\n\x1a\n\xff")
    with pytest.raises(HTTPError) as caught:
        parse(body)
    assert caught.value.status == 400
    assert caught.value.message == (
        "form field 'blob' is not valid UTF-8: send binary data as a file, with a filename"
    )


def test_repeated_ordinary_headers_are_joined() -> None:
    body = raw_part('Content-Disposition: form-data; name="f"; filename="a"\r\nX-A: 1\r\nx-a: 2')
    ((_, upload),) = parse(body)
    assert upload.headers["x-a"] == "1, 2"
    upload.close()


def test_error_in_a_later_part_closes_earlier_files(spools: list) -> None:
    body = encode([("f", "a", b"1", "text/plain"), ("g", "b", b"2", "text/plain")])
    body = body.replace(b'name="g"', b'nom="g"')
    expect_error(400, body, "no name")
    assert len(spools) == 1 and spools[0].closed


def test_reader_failure_closes_files(spools: list) -> None:
    body = encode([("f", "a", b"x" * 1000, "text/plain")])
    stream = io.BytesIO(body[:500])

    def read(n: int) -> bytes:
        data = stream.read(min(n, 100))
        if not data:
            raise ConnectionResetError("client went away")
        return data

    with pytest.raises(ConnectionResetError):
        parse_multipart(read, BOUNDARY, **LIMITS)
    assert len(spools) == 1 and spools[0].closed


# ---- linear time -----------------------------------------------------------------------


def best_times(first: Callable[[], object], second: Callable[[], object], runs: int = 5):
    """The best time of each call, the two taking turns so that a burst of load on the
    machine slows both rather than one."""
    best = [float("inf"), float("inf")]
    for _ in range(runs):
        for index, call in enumerate((first, second)):
            start = time.perf_counter()
            call()
            best[index] = min(best[index], time.perf_counter() - start)
    return best[0], best[1]


def assert_same_cost(adversarial: Callable[[], object], ordinary: Callable[[], object]) -> None:
    """Adversarial input must cost about what ordinary input of the same size costs.

    A ratio, never an absolute time. A quadratic loop on these megabytes takes minutes,
    so the generous factor still catches one."""
    adversarial_time, ordinary_time = best_times(adversarial, ordinary)
    assert adversarial_time < FACTOR * ordinary_time + 0.005, (adversarial_time, ordinary_time)


# Before 3.11, bytes.find steps one byte at a time through runs of a character that
# occurs in the delimiter ("-", or a letter of the boundary), where 3.11+ skips ahead: still
# linear (the delimiter's CRLF never recurs inside it, so partial matches cannot overlap),
# but up to about 20 times slower than over other text. A quadratic loop stays far beyond.
FACTOR = 5 if sys.version_info >= (3, 11) else 25


def file_body(content: bytes) -> bytes:
    return encode([("f", "f.bin", content, "application/octet-stream")])


def parse_and_close(body: bytes, **limits: int) -> Callable[[], object]:
    def run() -> object:
        return plain(parse(body, **{"spool_size": 1 << 30, **limits}))

    return run


SIZE = 4 * 1024 * 1024
ORDINARY_TEXT = (
    b"The quick brown fox jumps over the lazy dog, again and again.\r\n" * (SIZE // 64 + 1)
)[:SIZE]


@pytest.mark.parametrize("start", [b"\r", b"\n", b"\r\n"])
def test_file_starting_with_cr_or_lf_then_no_line_break(start: bytes) -> None:
    adversarial = file_body(start + b"a" * (SIZE - len(start)))
    assert_same_cost(parse_and_close(adversarial), parse_and_close(file_body(ORDINARY_TEXT)))


@pytest.mark.parametrize(
    "noise", [b"\r\n-", b"\r\n--", b"\r\n--" + BOUNDARY[:-1].encode(), b"\r", b"-"]
)
def test_delimiter_like_noise_in_a_file(noise: bytes) -> None:
    adversarial = file_body((noise * (SIZE // len(noise) + 1))[:SIZE])
    assert_same_cost(parse_and_close(adversarial), parse_and_close(file_body(ORDINARY_TEXT)))


@pytest.mark.parametrize("noise", [b"\r\n-", b"\r\n--" + BOUNDARY[:-1].encode()])
def test_delimiter_like_noise_in_a_field(noise: bytes) -> None:
    content = (noise * (SIZE // len(noise) + 1))[:SIZE]
    adversarial = encode([("v", content)])
    ordinary = encode([("v", ORDINARY_TEXT)])
    assert_same_cost(
        parse_and_close(adversarial, max_field_memory=2 * SIZE),
        parse_and_close(ordinary, max_field_memory=2 * SIZE),
    )


@pytest.mark.parametrize(
    "junk", [b"x", b"\r\n", b"\r\n-", b"-", b"\r\n--" + BOUNDARY[:-1].encode()]
)
def test_junk_before_the_first_boundary(junk: bytes) -> None:
    preamble = (junk * (SIZE // len(junk) + 1))[:SIZE]
    adversarial = encode([("f", "f", b"1", "text/plain")], preamble=preamble + b"\r\n")
    ordinary = encode([("f", "f", ORDINARY_TEXT, "text/plain")], preamble=b"\r\n")
    assert_same_cost(parse_and_close(adversarial), parse_and_close(ordinary))


def header_params_call(text: str) -> Callable[[], object]:
    def run() -> object:
        try:
            return mp._part_header_params(text)
        except HTTPError as error:  # a 400 is a fine answer; only its cost is measured
            return error

    return run


@pytest.mark.parametrize("run", ["\\", '\\"', "a", " ", ";", "=", "'", "%", ";a", "a=", "%41"])
@pytest.mark.parametrize(
    "template",
    [
        'form-data; name="a"; filename="{}"',  # inside a quoted string
        "form-data; name=a; filename={}",  # as a token value
        "form-data; name=a; {}",  # where parameter names go
        "form-data; name=a; filename*=UTF-8''{}",  # an RFC 5987 value
    ],
)
def test_long_runs_in_header_parameter_values(run: str, template: str) -> None:
    # Through the parser a header holds at most MULTIPART_HEADER_LIMIT bytes; called here
    # with a megabyte, a slow loop cannot hide behind that limit.
    size = 500_000
    filler = (run * (size // len(run) + 1))[:size]
    # What a client really sends there, of the same size: a plain name or, for filename*,
    # a percent-encoded UTF-8 one.
    name = quote("résumé 2024 final.txt") if "*" in template else "report-2024 final.txt "
    ordinary = (name * (size // len(name) + 1))[:size]
    assert_same_cost(
        header_params_call(template.format(filler)), header_params_call(template.format(ordinary))
    )


def test_limits_on_python_steps_in_a_header_are_generous() -> None:
    windows_path = "C:\\" + "\\".join(["dir"] * 63) + "\\f.txt"  # 64 backslashes
    assert mp._part_header_params(f'form-data; name="a"; filename="{windows_path}"')[1] == {
        "name": "a",
        "filename": windows_path,
    }
    many = "".join(f"; p{i}=v" for i in range(mp.HEADER_PARAMS_LIMIT - 1))
    assert len(mp._part_header_params("form-data; name=a" + many)[1]) == mp.HEADER_PARAMS_LIMIT
    headers = "\r\n".join(f"X-{i}: v" for i in range(mp.MULTIPART_HEADER_LINES_LIMIT - 1))
    ((_, upload),) = parse(
        raw_part(f'Content-Disposition: form-data; name="a"; filename="f"\r\n{headers}')
    )
    assert len(upload.headers) == mp.MULTIPART_HEADER_LINES_LIMIT
    upload.close()


@pytest.mark.parametrize("quoted, name", [
    ('"dir\\"', "dir\\"),  # a file named dir\ as browsers send it: no escapes (HTML)
    ('"a\\\\b.txt"', "a\\\\b.txt"),  # two backslashes stay two
    ('"C:\\dir\\f.txt"', "C:\\dir\\f.txt"),
    ('"a\\"b"', 'a"b'),  # an older client's \" where the string cannot end: a quote
    ('"a\\""', 'a"'),
    ('"a%22b%0D%0Ac"', 'a"b\r\nc'),  # what browsers write instead
    ('""', ""),
])
def test_form_data_names_are_read_as_browsers_write_them(quoted: str, name: str) -> None:
    assert mp._form_data_names({"content-disposition": f"form-data; name={quoted}; filename={quoted}"}) == (
        name, name,
    )
    assert mp._form_data_names({"content-disposition": f"form-data; name={quoted}"}) == (name, None)


def test_a_backslash_before_the_last_quote_ends_the_string() -> None:
    assert mp._part_header_params('form-data; name="a\\" ; x=1')[1] == {"name": "a\\", "x": "1"}
    with pytest.raises(mp.HTTPError, match="unterminated"):
        mp._part_header_params('form-data; name="a\\"b')


@pytest.mark.parametrize("filler", ["\\", '\\"', ";a", " ;", "X-A: 1\r\n", "=", "\\\\\\"])
def test_long_header_lines_through_the_parser(filler: str) -> None:
    # Many parts whose headers are nearly at the limit, made of short repeated pieces,
    # against parts of the same size with ordinary headers.
    size = mp.MULTIPART_HEADER_LIMIT - 200

    def body(text: str) -> bytes:
        text = (text * (size // len(text) + 1))[:size]
        part = raw_part(f'Content-Disposition: form-data; name="a"; filename="{text}"')
        return b"".join([part[: -len(BOUNDARY) - 6]] * 100) + b"--" + BOUNDARY.encode() + b"--\r\n"

    def run(data: bytes) -> Callable[[], object]:
        def parse_it() -> object:
            try:
                return plain(parse(data, max_parts=1000))
            except HTTPError as error:
                return error

        return parse_it

    assert_same_cost(run(body(filler)), run(body("report-2024 final.txt ")))
    assert len(run(body("report-2024 final.txt "))()) == 100


class CountingBuffer(bytearray):
    """The reader's buffer, counting the bytes its searches scan and its compactions move:
    a measure of work that, unlike a time, does not depend on the machine's load."""

    scanned = 0
    moved = 0

    def find(self, sub, start=0, *args):  # type: ignore[override]
        found = super().find(sub, start, *args)
        end = found + len(sub) if found >= 0 else len(self)
        CountingBuffer.scanned += max(0, end - start)
        return found

    def __delitem__(self, key) -> None:  # type: ignore[override]
        if isinstance(key, slice):
            CountingBuffer.moved += len(self) - (key.stop or 0)
        super().__delitem__(key)


def many_parts(count: int) -> bytes:
    return encode([(f"f{i}", b"v") for i in range(count)])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(file_body(ORDINARY_TEXT), id="file"),
        pytest.param(file_body(b"\r\n-" * (SIZE // 3)), id="noisy file"),
        pytest.param(encode([("v", ORDINARY_TEXT)]), id="field"),
        pytest.param(encode([("v", b"1")], preamble=b"-" * SIZE + b"\r\n"), id="preamble"),
        pytest.param(many_parts(50000), id="many parts"),
        pytest.param(
            raw_part("X-A: " + "a" * (mp.MULTIPART_HEADER_LIMIT - 100)) * 100, id="long headers"
        ),
    ],
)
@pytest.mark.parametrize("chunk_size", [7, 4096, 65536])
def test_work_is_linear_in_the_body(
    body: bytes, chunk_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No byte is searched or moved more than a few times, whatever the chunk size: nothing
    # searches a growing buffer from its start again, nothing copies it again.
    if chunk_size == 7:
        body = body[:300_000]  # fewer tiny reads; a 400 for the cut body is fine here
    monkeypatch.setattr(mp, "bytearray", CountingBuffer, raising=False)
    CountingBuffer.scanned = CountingBuffer.moved = 0
    try:
        plain(parse(body, chunk_size, max_parts=10**6, max_field_memory=10**8))
    except HTTPError:
        pass  # a body cut short above is a 400; the work done until then still counts
    reads = len(body) // chunk_size + 2
    delimiter = len(BOUNDARY) + 4
    # Each read rescans at most a delimiter's length of the previous one.
    assert CountingBuffer.scanned <= 2 * len(body) + reads * delimiter
    assert CountingBuffer.moved <= len(body) + reads * delimiter


def test_parsing_a_20_mb_file_keeps_memory_bounded() -> None:
    size = 20 * 1024 * 1024
    head = file_body(b"").split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    tail = b"\r\n--" + BOUNDARY.encode() + b"--\r\n"
    piece = bytes(range(256)) * 256  # 64 KiB

    def body() -> Iterator[bytes]:
        # The body is produced on the fly, so that only the parser's memory is measured.
        yield head
        for _ in range(size // len(piece)):
            yield piece
        yield tail

    chunks = body()
    pending = bytearray()

    def read(n: int) -> bytes:
        while len(pending) < n:
            chunk = next(chunks, b"")
            if not chunk:
                break
            pending.extend(chunk)
        data = bytes(pending[:n])
        del pending[:n]
        return data

    tracemalloc.start()
    try:
        form = parse_multipart(
            read, BOUNDARY, max_parts=10, max_field_memory=1024, spool_size=1024 * 1024
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    ((_, upload),) = form
    assert upload.size == size and upload._file._rolled
    assert peak < size / 5, peak
    upload.close()


# ---- the code itself ----------------------------------------------------------------------


def test_section_keeps_python_3_9_syntax() -> None:
    source = Path(mp.__file__).read_text(encoding="utf-8")
    ast.parse(source, feature_version=(3, 9))


def test_names_and_file_names_are_unescaped_as_browsers_escape_them() -> None:
    # The HTML standard's multipart/form-data encoding writes '"', CR and LF as
    # %22, %0D and %0A; Next.js's formData() (and the WHATWG parser) reads them back.
    ((name, value),) = parse(raw_part('Content-Disposition: form-data; name="say %22hi%22"', b"v"))
    assert (name, value) == ('say "hi"', "v")
    ((_, upload),) = parse(raw_part('Content-Disposition: form-data; name="f"; filename="my %22notes%22%0D%0A.txt"'))
    assert upload.filename == 'my "notes"\r\n.txt'


def test_two_content_types_in_a_part_are_a_400():
    # A proxy that reads the first and the app that reads the second would see two charsets.
    expect_error(400, raw_part('Content-Disposition: form-data; name="f"\r\nContent-Type: text/plain\r\n'
                               'Content-Type: text/plain; charset=latin-1'))
