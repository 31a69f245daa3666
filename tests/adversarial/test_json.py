"""request.json(): only JSON media types, UTF-8 only, bounded depth, never a 5xx.

Rules from design.md "Limits and parsing rules": only application/json and
application/*+json (else 415 naming the Content-Type to send); decoded as
UTF-8 whatever the charset says (RFC 8259 8.1); empty body, bad UTF-8, bad
JSON or nesting too deep: 400 with the reason.
"""
from __future__ import annotations

import json

import pytest

from helpers import make_environ, RecordingInput

from .conftest import assert_error


def post_json(probe, body: bytes, content_type: str | None = "application/json", mode: str = "json"):
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return probe.client.post(f"/echo?mode={mode}", data=body, headers=headers)


# CVE-2021-32677 (FastAPI < 0.65.2): JSON was read from bodies sent as
# text/plain, which a cross-site <form> or a simple fetch() can send without a
# CORS preflight, so cookie-authenticated JSON endpoints were open to CSRF.
# Every non-JSON media type must be refused with 415, before parsing.
@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "text/plain; charset=utf-8",
        "text/plain; x=application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/json",
        "application/jsonp",
        "application/json-seq",
        "application/jsonx",
        "application/json, text/plain",
        "json",
        "application/+json/x",
    ],
)
def test_non_json_media_types_are_415(probe, content_type):
    result = post_json(probe, b'{"text": "hi"}', content_type)
    error = assert_error(result, 415)
    assert "application/json" in error["error"]  # it says what to send


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "APPLICATION/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "application/json ; foo=bar",
        "application/problem+json",
        "application/vnd.api+json",
        "application/merge-patch+json; charset=utf-8",
    ],
)
def test_json_media_types_are_accepted(probe, content_type):
    result = post_json(probe, b'{"text": "hi"}', content_type)
    assert result.status == 200, result.text
    assert result.json() == {"json": repr({"text": "hi"})}


# RFC 8259 8.1: JSON exchanged between systems is UTF-8. A charset parameter
# cannot switch the decoder (a UTF-7/UTF-16 body is a classic filter bypass):
# bytes that are not UTF-8 are a 400, and UTF-8 bytes parse whatever it says.
@pytest.mark.parametrize(
    "body, charset",
    [
        ('{"text": "h\u00e9"}'.encode("utf-16"), "utf-16"),
        ('{"text": "h\u00e9"}'.encode("utf-16-le"), "utf-16-le"),
        ('{"text": "h\u00e9"}'.encode("utf-32"), "utf-32"),
        ('{"text": "h\u00e9"}'.encode("latin-1"), "latin-1"),
        ('{"text": "h\u00e9"}'.encode("cp1252"), "windows-1252"),
        (b'{"text": "\xff\xfe"}', "utf-8"),
        (b'{"text": "\xc0\xae"}', "utf-8"),  # overlong UTF-8
        (b'{"text": "\xed\xa0\x80"}', "utf-8"),  # UTF-8-encoded surrogate (CESU-8)
    ],
)
def test_bodies_that_are_not_utf8_are_400(probe, body, charset):
    result = post_json(probe, body, f"application/json; charset={charset}")
    assert_error(result, 400)


def test_utf7_charset_does_not_switch_the_decoder(probe):
    # "+ACI-" is '"' in UTF-7: decoding by the declared charset would turn
    # a harmless string into markup. The bytes are read as UTF-8.
    body = b'{"text": "+ADw-script+AD4-"}'
    result = post_json(probe, body, "application/json; charset=utf-7")
    assert result.status == 200
    assert result.json() == {"json": repr({"text": "+ADw-script+AD4-"})}


@pytest.mark.parametrize("charset", ["utf-16", "bogus-charset", "latin-1", '"utf-8"'])
def test_utf8_bodies_parse_whatever_the_charset_says(probe, charset):
    result = post_json(probe, '{"text": "h\u00e9"}'.encode(), f"application/json; charset={charset}")
    assert result.status == 200, result.text
    assert result.json() == {"json": repr({"text": "h\u00e9"})}


def test_a_utf8_bom_is_allowed(probe):
    result = post_json(probe, b'\xef\xbb\xbf{"a": 1}')
    assert result.status == 200 and result.json() == {"json": repr({"a": 1})}


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b"\r\n\t", b"{", b"{} x", b"[1,]", b"{'a': 1}", b'{"a" 1}', b"\x00", b"nul", b"01"],
)
def test_empty_or_malformed_json_is_400_with_a_reason(probe, body):
    error = assert_error(post_json(probe, body), 400)
    assert "json" in error["error"].lower() or "empty" in error["error"].lower()


# Deep nesting: the C scanner recurses, so "[[[[..." exhausts the stack
# (RecursionError) and an unguarded handler answers 500 (a DoS lever reported
# against many JSON-consuming frameworks). It must be a 400.
@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 100_000 + b"]" * 100_000, b'[{"a":' * 50_000],
)
def test_deep_nesting_is_400(probe, body):
    error = assert_error(post_json(probe, body), 400)
    assert "deep" in error["error"]


def test_moderate_nesting_still_parses(probe):
    body = b"[" * 200 + b"]" * 200
    assert post_json(probe, body).status == 200


# CVE-2020-10735 (CPython): int() on a huge decimal string is quadratic. Since
# 3.11 json.loads refuses more than 4300 digits; that refusal must be a 400,
# not a 500.
def test_integers_with_too_many_digits_are_400(probe):
    assert_error(post_json(probe, b"1" * 5000), 400)
    result = post_json(probe, b'{"n": ' + b"9" * 100_000 + b"}")
    assert_error(result, 400)
    # In the client's terms: CPython's own message names sys.set_int_max_str_digits().
    reason = result.json()["error"]
    assert "digits" in reason and "sys." not in reason, reason


def test_long_but_allowed_integers_parse(probe):
    result = post_json(probe, b"7" * 4000)
    assert result.status == 200


# The parser refuses NaN and Infinity (RFC 8259 has no such values), so a
# handler can send back what it received with Response.json(). A number too
# large for a float must not smuggle the same value in as inf: 400, or a finite
# value, never float('inf').
@pytest.mark.parametrize("body", [b"NaN", b"Infinity", b"-Infinity", b"[NaN]", b'{"a": Infinity}'])
def test_nan_and_infinity_literals_are_400(probe, body):
    assert_error(post_json(probe, body), 400)


@pytest.mark.parametrize("body", [b"1e400", b"[-1e400]", b'{"a": 1.5e999}', b"123456789e999"])
def test_numbers_too_large_for_a_float_never_become_infinity(probe, body):
    result = post_json(probe, body)
    if result.status == 200:
        assert "inf" not in result.json()["json"], result.json()
    else:
        assert_error(result, 400)
    # And echoing the parsed value back never turns into a 500.
    echoed = post_json(probe, body, mode="raw-json")
    assert echoed.status in (200, 400), echoed.text


# RFC 8259 8.2 / RFC 7493 (I-JSON) 2.1: strings with unpaired surrogates are
# not interoperable; Python's json.loads accepts "\ud800" and hands over a str
# that cannot be encoded as UTF-8, so the first write of it (a response, a
# database) raises. Refuse it at the parser: 400.
@pytest.mark.parametrize("body", [b'"\\ud800"', b'{"text": "a\\udfffb"}', b'["\\udc00\\ud800"]'])
def test_lone_surrogates_are_400(probe, body):
    assert_error(post_json(probe, body), 400)
    assert post_json(probe, body, mode="raw-json").status == 400


def test_escaped_surrogate_pairs_are_fine(probe):
    result = post_json(probe, b'{"text": "\\ud83d\\ude00"}', mode="raw-json")
    assert result.status == 200
    assert result.json() == {"text": "\U0001F600"}


def test_example_app_refuses_a_lone_surrogate_comment_with_400(client):
    # The example app stores the text in SQLite: a lone surrogate there is a
    # UnicodeEncodeError, which must never surface as a 500.
    result = client.post(
        "/comments", data=b'{"text": "\\ud800"}', headers={"Content-Type": "application/json"}
    )
    assert_error(result, 400)
    assert client.get("/comments").status == 200


# design.md: a body over max_body_size is a 413 from Content-Length, before
# the handler runs and without reading the body.
def test_json_body_declared_over_the_limit_is_413_unread(probe):
    stream = RecordingInput(b"{}")
    environ = make_environ(
        "POST", "/echo", query="mode=json", wsgi_input=stream,
        content_length=str(10 * 1024 * 1024 + 1), content_type="application/json",
    )
    result = probe.call(environ, validate=False)
    assert_error(result, 413)
    assert stream.bytes_read == 0


def test_json_body_of_a_few_megabytes_parses(probe):
    payload = {"items": ["x" * 100] * 30000}
    body = json.dumps(payload).encode()
    assert len(body) > 2 * 1024 * 1024
    result = post_json(probe, body, mode="body")
    assert result.status == 200 and result.json()["size"] == len(body)
