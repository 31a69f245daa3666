"""Query strings: split on '&' only, blanks kept, never a 5xx, linear time.

Each case names the rule (design.md "Limits and parsing rules") or the
advisory it guards against.
"""
from __future__ import annotations

import pytest

from minirouter import parse_query


def pairs(probe, target):
    result = probe.raw(target)
    assert result.status == 200, result
    return [tuple(p) for p in result.json()["query"]]


# CVE-2021-23336 (CPython urllib.parse.parse_qsl) and CVE-2020-28473 (Bottle):
# treating ';' as a separator lets a cache key on "a=1" while the app sees
# "a=1;a=2" as two values (web cache poisoning). ';' is data here, as in
# WHATWG URLSearchParams.
@pytest.mark.parametrize(
    "query, expected",
    [
        ("a=1;b=2", [("a", "1;b=2")]),
        ("utm=x;callback=evil", [("utm", "x;callback=evil")]),
        ("a=1&a=2;a=3", [("a", "1"), ("a", "2;a=3")]),
        (";", [(";", "")]),
        ("a;b", [("a;b", "")]),
        ("a=%3B", [("a", ";")]),
    ],
)
def test_semicolon_is_never_a_separator(probe, query, expected):
    assert pairs(probe, f"/echo?{query}") == expected


# design.md: "blank values are kept"; `?a=` and `?a` both give "" (URLSearchParams).
@pytest.mark.parametrize(
    "query, expected",
    [
        ("a=", [("a", "")]),
        ("a", [("a", "")]),
        ("a=&b", [("a", ""), ("b", "")]),
        ("=x", [("", "x")]),
        ("&&a=1&&", [("a", "1")]),
        ("a==b", [("a", "=b")]),
    ],
)
def test_blank_values_are_kept_and_empty_pieces_skipped(probe, query, expected):
    assert pairs(probe, f"/echo?{query}") == expected


def test_repeated_names_keep_every_value_in_order(probe):
    result = probe.raw("/echo?x=1&y=2&x=3&x=")
    assert [tuple(p) for p in result.json()["query"]] == [("x", "1"), ("y", "2"), ("x", "3"), ("x", "")]


# Malformed escapes and invalid UTF-8 are data, never an exception: urllib
# keeps "%zz" as is and replaces undecodable bytes (U+FFFD), and so must we,
# instead of a 500 from a strict decode.
@pytest.mark.parametrize(
    "query, expected",
    [
        ("a=%zz", [("a", "%zz")]),
        ("a=%", [("a", "%")]),
        ("a=%4", [("a", "%4")]),
        ("a=%ff", [("a", "\ufffd")]),
        ("a=%c0%ae", [("a", "\ufffd\ufffd")]),  # overlong UTF-8 for '.'
        ("a=%ed%a0%80", [("a", "\ufffd\ufffd\ufffd")]),  # an encoded lone surrogate
        ("a=%00", [("a", "\x00")]),
        ("a+b=c+d", [("a b", "c d")]),
        ("a=%2B", [("a", "+")]),
        ("k%3Dx=v", [("k=x", "v")]),
        ("a=%26b%3D1", [("a", "&b=1")]),
        ("q=caf%C3%A9", [("q", "caf\u00e9")]),
    ],
)
def test_escapes_decode_once_and_never_raise(probe, query, expected):
    assert pairs(probe, f"/echo?{query}") == expected


def test_escapes_are_decoded_only_once(probe):
    # Double decoding turns %2526 into '&' and splits a value in two.
    assert pairs(probe, "/echo?a=%2526b%253D1") == [("a", "%26b%3D1")]


def test_raw_latin1_bytes_in_the_query_do_not_break_the_parse(probe):
    # A server hands non-ASCII query bytes over as latin-1 characters (PEP 3333).
    environ_query = "q=caf\u00c3\u00a9&r=\u00ff"
    from helpers import make_environ

    result = probe.call(make_environ("GET", "/echo", query=environ_query))
    assert result.status == 200
    assert [tuple(p) for p in result.json()["query"]] == [("q", "caf\u00e9"), ("r", "\ufffd")]


# Hash-flooding and quadratic splitting (the reason CPython added
# parse_qsl(max_num_fields) for CVE-era DoS reports): a query with very many
# pairs or one huge value must parse in linear time. Bounded by size, not time.
def test_many_pairs_and_long_values_parse(probe):
    query = "&".join(f"k{i}=v{i}" for i in range(20000))
    got = pairs(probe, f"/echo?{query}")
    assert len(got) == 20000 and got[-1] == ("k19999", "v19999")
    long_value = "%41" * 100000
    assert parse_query("a=" + long_value) == [("a", "A" * 100000)]
    assert parse_query("&" * 200000) == []
    assert parse_query("=" * 200000) == [("", "=" * 199999)]


def test_query_does_not_leak_into_the_path_or_params(probe):
    result = probe.raw("/seg/abc?id=evil&x=%2F..%2F")
    assert result.status == 200
    assert result.json()["params"] == {"id": "abc"}
    assert result.json()["path"] == "/seg/abc"


def test_fragment_in_the_request_target_is_not_part_of_the_path(probe):
    # A '#' should never reach a server, but if it does, it ends the path.
    result = probe.raw("/seg/abc#frag")
    assert result.status == 200
    assert result.json()["params"] == {"id": "abc"}
