"""minirouter: Next.js App Router route handlers for Python, in one WSGI module.

A folder of ``route.py`` files, each defining functions named after HTTP
methods (``GET``, ``POST``, ...), becomes a WSGI application::

    # app/hello/route.py
    def GET(request):
        return {"message": "Hello, world"}

    # run.py
    from minirouter import App
    application = App("app")

Standard library only: copy this file into a project, or ``pip install`` it.
The module reads top to bottom in the order a request flows through it, each
section opening with a banner: HTTP primitives and multipart forms, the request
path, Request, Response, errors and the request context, middleware, the route
tree, pages and public files, route caching, the access log, the App (the WSGI
callable), then the helpers around it: the route table and OpenAPI, TestClient,
serving with a reloader, and the command line.
"""

from __future__ import annotations

import asyncio
import atexit
import builtins
import codecs
import contextlib
import contextvars
import copy as copylib
import dataclasses
import datetime
import email.utils
import errno
import functools
import gc
import http
import importlib.machinery
import importlib.util
import inspect
import io
import ipaddress
import json as jsonlib
import logging
import mimetypes
import os
import re
import socket
import sys
import tempfile
import threading
import time
import traceback
import types
import unicodedata
from collections.abc import Hashable, Mapping, MutableMapping, Sequence
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    AsyncIterable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    NoReturn,
    Optional,
    TypeVar,
    Union,
)
from urllib.parse import quote, unquote_to_bytes, urlencode

if TYPE_CHECKING:  # the command line imports these when it runs; the WSGI app never needs them
    import argparse
    import subprocess

__version__ = "0.1.0"

__all__ = [
    "App",
    "Context",
    "FormData",
    "HTTPError",
    "MissingRequestValue",
    "Headers",
    "Request",
    "RequestCookies",
    "RequestHeaders",
    "Response",
    "ResponseCookies",
    "RouteInfo",
    "SearchParams",
    "StartupError",
    "TestClient",
    "TestResponse",
    "UploadFile",
    "cookies",
    "exit_with_reloader",
    "free_port",
    "headers",
    "local_allowed_hosts",
    "not_found",
    "permanent_redirect",
    "redirect",
    "run_with_reloader",
    "serve_file",
    "waitress_options",
]

logger = logging.getLogger("minirouter")

# The only names ever called as handlers (Next.js route handlers export these).
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

# Default limits: each one is an ``App`` keyword argument of the same name.
DEFAULT_MAX_BODY_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_FORM_PARTS = 1000
DEFAULT_MAX_FORM_MEMORY = 500 * 1024
DEFAULT_SPOOL_SIZE = 1024 * 1024
DEFAULT_CACHE_SIZE = 1024

# A body read without a Content-Length (chunked), streamed, or parsed as a
# form is read from the server in chunks of this size.
READ_CHUNK_SIZE = 64 * 1024

StartResponse = Callable[..., Any]
HeaderInput = Union["Headers", Mapping[str, str], Iterable[tuple[str, str]], None]
# What Response() sends: text, bytes, or pieces of either, made as they are sent.
_Chunk = Union[bytes, bytearray, memoryview, str]
ResponseBody = Union[str, bytes, bytearray, memoryview, Iterable[_Chunk], AsyncIterable[_Chunk], None]


# ---------------------------------------------------------------------------
# HTTP primitives: header and cookie syntax, query strings, Content-Type.
# Every parser here runs in time linear in its input (no nested repetition).
# ---------------------------------------------------------------------------

# RFC 9110 token: header names, cookie names, media types.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# Control characters: CR, LF and NUL in a header value would let it forge a
# header or split the response. RFC 9110 5.5 allows HTAB inside a value, and
# so do request headers; PEP 3333 does not for response headers, and neither
# does wsgiref's validator.
_CONTROL_CHAR = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_CHAR_BUT_TAB = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# A percent sign not followed by two hex digits.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Host header: a name or IPv4 address, or an IPv6 literal, then an optional port.
# RFC 9110 7.2 and RFC 3986 3.2.3: the port may be empty ("host:"), meaning the default.
# At most 65535, which TCP can have (Python's urlsplit(url).port raises above it).
_VALID_HOST = re.compile(r"(?:[A-Za-z0-9_.\-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])"
                         r"(?::(?:[0-9]{0,4}|[0-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?\Z")


def _is_token(value: str) -> bool:
    return _TOKEN.match(value) is not None


def _exact_str(text: Any) -> Any:
    """A str subclass (a StrEnum member, say) as an exact ``str`` of its text:
    PEP 3333 wants the type named str, and since Python 3.12 an f-string
    writes a ``(str, Enum)`` member as ``Class.MEMBER``. Anything else as it is."""
    return str.__str__(text) if isinstance(text, str) and type(text) is not str else text


def _ascii_int(text: str, max_digits: int = 18) -> Optional[int]:
    """A whole number written in ASCII digits only (no sign, '_' or spaces)."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    stripped = text.lstrip("0") or "0"
    if len(stripped) > max_digits:
        return None
    return int(stripped)


def _check_header(name: str, value: str, sent: bool = True) -> tuple[str, str]:
    """Refuse a header that could not be sent safely, at the moment it is set;
    the name and value as exact ``str`` (see ``_exact_str``), checked as such.
    ``sent=False`` for a request header the middleware hands the route, which
    PEP 3333's response rules (no tab, no ``Status``) do not concern."""
    name, value = _exact_str(name), _exact_str(value)
    if not isinstance(name, str) or not _is_token(name):
        raise ValueError(f"invalid header name {name!r}")
    if sent and len(name) == 6 and name.lower() == "status":  # a CGI gateway would read it as the status line
        raise ValueError("a header named Status is not allowed (PEP 3333): return the status instead")
    if not isinstance(value, str):
        raise TypeError(f"header {name} must be a str, not {type(value).__name__}")
    # As fetch's Headers do: spaces around a value are not part of it (RFC 9110 5.5).
    value = value.strip(" \t")
    if (_CONTROL_CHAR if sent else _CONTROL_CHAR_BUT_TAB).search(value):
        raise ValueError(f"header {name} contains CR, LF, NUL, a tab or another control character")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(
            f"header {name} has characters outside latin-1; percent-encode them"
        ) from None
    if len(name) == 14 and name.lower() == "content-length" and _ascii_int(value) is None:
        # A server would refuse it (a 500 of its own) or send a body cut to a wrong length.
        raise ValueError(f"header Content-Length must be a number of bytes in digits, not {value!r}")
    return name, value


class Headers(MutableMapping):  # type: ignore[type-arg]
    """Response headers: case-insensitive names, several values per name.

    Reads follow the fetch API that Next.js uses: ``get(name)`` joins several
    values with ", ", ``get_all(name)`` lists them (one per ``Set-Cookie``).
    """

    __slots__ = ("_items",)

    def __init__(self, init: HeaderInput = None) -> None:
        self._items: list[tuple[str, str]] = []
        if not init:
            return
        self._items = _header_pairs(init)

    # Mapping protocol (one entry per distinct name).
    def __getitem__(self, name: str) -> str:
        key = name.lower()
        values = [v for n, v in self._items if n.lower() == key]
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if not self.has(name):
            raise KeyError(name)
        self.delete(name)

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._items:
            key = name.lower()
            if key not in seen:
                seen.add(key)
                yield key

    def __len__(self) -> int:
        return len({name.lower() for name, _ in self._items})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.has(name)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    # The fetch-style methods Next.js developers know.
    def has(self, name: str) -> bool:
        key = name.lower()
        for item_name, _ in self._items:
            if item_name.lower() == key:
                return True
        return False

    def set(self, name: str, value: str) -> None:
        """Replace every value of ``name`` with ``value``."""
        name, value = _check_header(name, value)
        key = name.lower()
        self._items[:] = [(n, v) for n, v in self._items if n.lower() != key]
        self._items.append((name, value))

    def append(self, name: str, value: str) -> None:
        """Add a value, keeping the ones already there (for ``Set-Cookie``)."""
        name, value = _check_header(name, value)
        self._items.append((name, value))

    def delete(self, name: str) -> None:
        key = name.lower()
        self._items[:] = [(n, v) for n, v in self._items if n.lower() != key]

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for n, v in self._items if n.lower() == key]

    def update(self, other: Any = (), /, **more: str) -> None:
        """Replace each name given with every value given for it: from another
        ``Headers``, a list of pairs or urllib's headers, each value is kept
        (the mapping view would join two ``Set-Cookie`` lines into one that
        browsers misread). Everything is checked before anything changes."""
        given = _header_pairs(other)
        extra = [_check_header(name, value) for name, value in more.items()]
        for batch in (given, extra):
            for key in {name.lower() for name, _ in batch}:
                self.delete(key)
            self._items.extend(batch)

    def raw(self) -> list[tuple[str, str]]:
        """Every (name, value) pair, in order, as it will be sent."""
        return list(self._items)

    @classmethod
    def _view(cls, items: list[tuple[str, str]]) -> Headers:
        """Headers over a list held elsewhere (a Response's): changes land there."""
        headers = cls.__new__(cls)
        headers._items = items
        return headers


def _header_pairs(source: Any) -> list[tuple[str, str]]:
    """Checked (name, value) pairs from another ``Headers``, urllib's or the
    email package's headers (every value of a repeated name), a mapping, or
    an iterable of pairs."""
    if isinstance(source, Headers):
        return list(source._items)  # checked already; a copy, as source may view the list it goes into
    if hasattr(source, "get_all") and hasattr(source, "items"):  # email.message.Message: items() has every value
        pairs: Iterable[tuple[str, str]] = source.items()
    elif isinstance(source, Mapping) or hasattr(source, "keys"):
        pairs = [(name, source[name]) for name in source.keys()]
    elif isinstance(source, (str, bytes)) or not hasattr(source, "__iter__"):
        raise TypeError(f"headers take a dict, a Headers or a list of (name, value) pairs, "
                        f"not {type(source).__name__}")
    else:
        pairs = source
    checked = []
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"headers take (name, value) pairs, not {pair!r}"[:200])
        checked.append(_check_header(pair[0], pair[1]))
    return checked


# Next.js names a porter reaches for, and what to write here instead: reading one
# on a class that lacks it raises an AttributeError saying so (see _PortingHints).
_NEXTJS_HINTS = {
    "nextUrl": "request.search_params, request.path (decoded) or request.url",
    "next_url": "request.search_params, request.path (decoded) or request.url",
    "searchParams": "request.search_params",
    "formData": "request.form() (not awaited)",
    "arrayBuffer": "request.body()",
    "blob": "request.body()",
    "ip": 'request.environ["REMOTE_ADDR"]',
    "geo": "nothing: minirouter has no geolocation (Next.js 15 removed it too)",
    "getAll": "items() (every pair) or get(name)",
    "entries": "items()",
    "forEach": "a for loop over items()",
    "clear": "delete(name) for each name",
}


# URLSearchParams and FormData name some of them otherwise.
_MULTI_VALUE_HINTS = {"getAll": "get_all(name)", "entries": "items()", "forEach": "a for loop over items()"}


# And Flask's, on the request (README, "Coming from Flask").
_FLASK_REQUEST_HINTS = {
    "args": "request.search_params",
    "values": "request.search_params, or request.form()",
    "files": 'request.form(): request.form().get("file") is the upload',
    "get_json": "request.json()",
    "data": "request.body()",
    "get_data": "request.body()",
    "remote_addr": 'request.environ["REMOTE_ADDR"]',
    "view_args": 'the handler\'s second argument: context.params["id"]',
    "host": 'request.headers.get("host"), or urlsplit(request.url).netloc',
    "scheme": "urlsplit(request.url).scheme",
    "mimetype": "request.content_type",
}
_FLASK_MULTI_VALUE_HINTS = {"getlist": "get_all(name)"}
_FLASK_RESPONSE_HINTS = {
    "set_cookie": "response.cookies.set(name, value, http_only=True, same_site=\"lax\")",
    "delete_cookie": "response.cookies.delete(name)",
    "status_code": "response.status",
    "mimetype": 'response.headers["Content-Type"]',
    "data": "response.body",
    "get_json": "json.loads(response.body)",
}
_FLASK_ERROR_HINTS = {"code": "error.status", "description": "error.message"}
_FLASK_TEST_RESPONSE_HINTS = {"data": "response.content", "get_json": "response.json()",
                              "get_data": "response.content, or response.text"}
_NO_HINTS: Mapping[str, str] = types.MappingProxyType({})


class _PortingHint:
    """A name a porter reaches for by habit, on a class that does not have it:
    reading it raises the AttributeError Python would, saying what to write instead."""

    __slots__ = ("framework", "instead", "name")

    def __init__(self, framework: str, instead: str, name: str) -> None:
        self.framework, self.instead, self.name = framework, instead, name

    def __get__(self, instance: Any, owner: Optional[type] = None) -> NoReturn:
        shown = type(instance).__name__ if instance is not None else getattr(owner, "__name__", "?")
        raise AttributeError(f"{shown!r} object has no attribute {self.name!r}: "
                             f"that is {self.framework}'s name; write {self.instead}")


class _PortingHints:
    """Base of the classes a porter reaches into by habit: each name of the class's
    ``_nextjs_hints`` and ``_flask_hints`` that it lacks becomes a _PortingHint.

    Class attributes, not a ``__getattr__``: CPython cannot specialize attribute
    reads on a class that has one, which cost every request 8 to 12% of its instructions."""

    __slots__ = ()
    _nextjs_hints: Mapping[str, str] = _NEXTJS_HINTS
    _flask_hints: Mapping[str, str] = _NO_HINTS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Set when the class is made, unseen by a type checker: it still flags a misspelt attribute.
        hinted: set[str] = set()
        for framework, hints in (("Next.js", cls._nextjs_hints), ("Flask", cls._flask_hints)):
            for name, instead in hints.items():
                if name in hinted:
                    continue  # Next.js's hint first, as before
                found = [vars(klass)[name] for klass in cls.__mro__ if name in vars(klass)]
                real = [value for value in found if not isinstance(value, _PortingHint)]
                if not real:
                    setattr(cls, name, _PortingHint(framework, instead, name))
                    hinted.add(name)
                elif found[0] is not real[0]:
                    setattr(cls, name, real[0])  # a base later in the MRO (a mixin) has it: a hint must not hide it


class RequestHeaders(_PortingHints, Mapping):  # type: ignore[type-arg]
    """The request's headers: read-only, case-insensitive, lower-case names.

    Built from the WSGI environ on first use. To send headers, return a
    ``Response`` that has them: changing these raises ``TypeError``.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, str]) -> None:
        self._data = {name.lower(): value for name, value in data.items()}

    def __await__(self) -> Generator[Any, None, RequestHeaders]:
        """``await headers()``, as Next.js 15 writes it, is the headers themselves."""
        return _itself(self).__await__()

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> RequestHeaders:
        data: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                data[key[5:].replace("_", "-").lower()] = value
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                data[key.replace("_", "-").lower()] = value
        headers = cls.__new__(cls)
        headers._data = data
        return headers

    def __getitem__(self, name: str) -> str:
        try:
            return self._data[name.lower()]
        except KeyError:
            raise MissingRequestValue("header", name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._data

    def __repr__(self) -> str:
        return f"RequestHeaders({self._data!r})"

    def get(self, name: str, default: Any = None) -> Any:
        return self._data.get(name.lower(), default)

    def has(self, name: str) -> bool:
        return name.lower() in self._data

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "request headers are read-only: to send a header, return a Response "
            "with headers={...}; in middleware, use Response.next(request_headers={...})"
        )

    # Every way a dict or Headers is changed: each says why, not "no attribute".
    __setitem__ = __delitem__ = set = append = delete = _refuse
    update = pop = popitem = clear = setdefault = _refuse


_ESCAPE_RUN = re.compile(rb"(?:%[0-9A-Fa-f]{2})+")


def _environ_bytes(text: str) -> bytes:
    """The bytes a WSGI string stands for: each character is one byte
    (latin-1, PEP 3333). A server that passes characters beyond latin-1
    decoded the bytes as UTF-8 itself: they are encoded back as UTF-8."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _unescape_run(match: re.Match[bytes]) -> bytes:
    return bytes.fromhex(match.group().replace(b"%", b"").decode("ascii"))


def percent_decode(text: str) -> bytes:
    """The bytes of a WSGI string (latin-1, PEP 3333) with %XX escapes
    decoded; a '%' that starts no escape stays as it is.

    ``unquote_to_bytes`` handles each malformed '%' through an exception, which
    makes a run of them ten times slower than text; runs of escapes are
    decoded here at once, so every input costs about the same per byte.
    """
    data = _environ_bytes(text)
    if _BAD_ESCAPE.search(text) is None:
        return unquote_to_bytes(data)
    return _ESCAPE_RUN.sub(_unescape_run, data)


# What a path may carry as it is (RFC 3986 pchar and '/', less '%'): what
# percent-encoding a decoded path leaves alone.
_PATH_CHARS = "/!$&'()*+,;=:@-._~"
# What a URL's path, and its query, may carry as they are, '%' included, so
# escapes already made are kept.
_PATH_SAFE = _PATH_CHARS + "%"
_URL_SAFE = _PATH_SAFE + "?"


def _url_from_environ(text: str) -> str:
    """A raw path or query from the environ, made safe to put in a URL or a
    ``Location``: its characters are bytes (latin-1, PEP 3333), and those a URL
    may not carry (controls, spaces, non-ASCII) are percent-encoded."""
    return quote(_environ_bytes(text), safe=_URL_SAFE)


def _script_name(environ: dict[str, Any]) -> str:
    """Where the app is mounted: ``SCRIPT_NAME`` without a trailing '/', so
    that a server that passes "/" for the root mounts the app at the root."""
    script: str = environ.get("SCRIPT_NAME", "")
    return script.rstrip("/")


def _base_path(environ: dict[str, Any]) -> str:
    """Where the app is mounted, written as in a URL; "" at the root. Never
    ``//host``, which a Location would read as another site (gunicorn takes
    SCRIPT_NAME from a request header sent from 127.0.0.1)."""
    script = _script_name(environ)
    # Decoded, as every CGI variable is (RFC 3875 4.1.13): a '%' or '?' in it is part of
    # the name, and is encoded, unlike in the raw path and query _url_from_environ is for.
    return quote(_environ_bytes("/" + script.lstrip("/")), safe=_PATH_CHARS) if script else ""


def _decode_component(text: str) -> str:
    """Decode one query or form component: '+' is a space, %XX are UTF-8 bytes."""
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text and text.isascii():
        return text
    # WSGI strings carry the raw bytes as latin-1 (PEP 3333).
    return percent_decode(text).decode("utf-8", "replace")


_QUERY_PIECE = re.compile(r"[^&]+")


def parse_query(query: str, max_pairs: Optional[int] = None) -> list[tuple[str, str]]:
    """Split a query string or urlencoded form into (name, value) pairs.

    Only '&' separates pairs (a ';' is data, as in WHATWG URLSearchParams and
    in CPython since the web-cache-poisoning fix of 2021). ``a=`` and ``a``
    both give ``""``; empty pieces are skipped. Past ``max_pairs`` pairs it
    stops at once with 413.
    """
    pairs: list[tuple[str, str]] = []
    # A long body is walked piece by piece: split() would first make a list of
    # every piece, 80 MB for a 10 MiB form of '&' before any limit applies.
    pieces: Iterable[str] = (
        query.split("&") if len(query) < 65536 else (match.group() for match in _QUERY_PIECE.finditer(query))
    )
    for piece in pieces:
        if not piece:
            continue
        if max_pairs is not None and len(pairs) == max_pairs:
            raise HTTPError(413, f"form has more than {max_pairs} parts")
        name, _, value = piece.partition("=")
        pairs.append((_decode_component(name), _decode_component(value)))
    return pairs


def _has_cr_lf_or_nul(value: str) -> bool:
    return "\r" in value or "\n" in value or "\0" in value


def _decode_cookie_value(value: str) -> Optional[str]:
    """A cookie value percent-decoded as UTF-8; None when it cannot be (a
    malformed escape or bytes), as Next.js's decodeURIComponent refuses it,
    and when it decodes to CR, LF or NUL, which no cookie can be set to:
    code that writes a cookie back as it came would fail with a 500."""
    if "%" not in value and value.isascii():
        return None if "\0" in value else value  # (a raw CR or LF cannot arrive in a header line)
    if _BAD_ESCAPE.search(value):
        return None
    try:
        decoded = percent_decode(value).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _has_cr_lf_or_nul(decoded) else decoded


def parse_cookie_header(header: str) -> dict[str, str]:
    """Parse a ``Cookie`` header pair by pair, as browsers and Next.js do.

    A pair without '=' or whose value does not percent-decode as UTF-8 is
    skipped, a nameless one dropped, the rest kept; quotes around a value are
    part of it (RFC 6265 5.4, as Next.js reads them); the first of two
    same-named cookies wins (browsers send the most specific path first). No
    regular expression: CPython's ``http.cookies`` had a quadratic one on
    backslash-heavy values.
    """
    cookies: dict[str, str] = {}
    for pair in header.split(";"):
        read = _read_cookie_pair(pair)
        if read is not None and read[0] not in cookies:
            cookies[read[0]] = read[1]
    return cookies


def _read_cookie_pair(pair: str) -> Optional[tuple[str, str]]:
    """(name, decoded value) of one ``name=value`` pair, or None for a pair
    that is skipped: no '=', no name, a control character in the name, a
    value that does not decode."""
    name, sep, value = pair.partition("=")
    name = name.strip(" \t")  # RFC 6265 WSP only: str.strip() also drops \xa0, \x85, \x1c-\x1f
    if not sep or not name or _CONTROL_CHAR.search(name):
        return None
    decoded = _decode_cookie_value(value.strip(" \t"))
    return None if decoded is None else (name, decoded)


_QUOTE_OR_BACKSLASH = re.compile(r'["\\]')
# Parameters in one header (a Content-Type, a part's Content-Disposition);
# real ones have 1-3. Each costs a Python step, so they are capped.
HEADER_PARAMS_LIMIT = 32
# Backslashes in one such header; a real one has a few (a Windows path), or none.
HEADER_BACKSLASH_LIMIT = 64
# Runs the parameter parsers skip at C speed (one character class, no backtracking).
_SEPARATOR_RUN = re.compile(r"[ \t;]*")
_SPACE_RUN = re.compile(r"[ \t]*")


def _run_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    match = pattern.match(text, pos)
    return match.end() if match else pos


def _read_http_quoted_string(text: str, start: int) -> tuple[str, int]:
    """Read an RFC 9110 quoted-string (backslash escapes a character) whose
    opening quote is at ``start - 1``. Multipart part headers are read as
    browsers write them instead: see ``_read_form_quoted_string``."""
    parts = []
    i, end = start, len(text)
    while i < end:
        match = _QUOTE_OR_BACKSLASH.search(text, i)
        if match is None:
            parts.append(text[i:])
            return "".join(parts), end
        j = match.start()
        parts.append(text[i:j])
        if text[j] == "\\":
            parts.append(text[j + 1 : j + 2])
            i = j + 2
        else:
            return "".join(parts), j + 1
    return "".join(parts), end


def parse_header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type/subtype; a=1; b="x;y"`` into a lower-case value and params.

    Parameter names are lower-cased; quoted values may hold ';' and backslash
    escapes. A parameter named twice with two values is a 400 (RFC 6838 4.3
    calls it an error): a proxy that read the other ``boundary`` or ``charset``
    would see another body. Named twice with one value, it reads one way only.
    """
    media_type, _, rest = value.partition(";")
    params: dict[str, str] = {}
    if rest.count("\\") > HEADER_BACKSLASH_LIMIT:
        raise HTTPError(400, f"header has more than {HEADER_BACKSLASH_LIMIT} backslashes")
    i, end, seen = 0, len(rest), 0
    while True:
        i = _run_end(_SEPARATOR_RUN, rest, i)
        if i >= end:
            break
        seen += 1
        if seen > HEADER_PARAMS_LIMIT:
            raise HTTPError(400, f"header has more than {HEADER_PARAMS_LIMIT} parameters")
        semicolon = rest.find(";", i)
        stop = end if semicolon == -1 else semicolon
        equals = rest.find("=", i, stop)
        if equals == -1:
            i = stop + 1
            continue  # a parameter without a value: ignored
        name = rest[i:equals].strip(" \t").lower()
        i = _run_end(_SPACE_RUN, rest, equals + 1)
        if i < end and rest[i] == '"':
            param_value, i = _read_http_quoted_string(rest, i + 1)
            semicolon = rest.find(";", i)
            i = end if semicolon == -1 else semicolon + 1
        else:
            param_value = rest[i:stop].strip(" \t")
            i = stop + 1
        if name in params and params[name] != param_value:
            raise HTTPError(400, f"header parameter {_shown(name, 64)!r} is given twice, with two values")
        if name:
            params[name] = param_value
    return media_type.strip(" \t").lower(), params


def http_date(timestamp: float) -> str:
    """An IMF-fixdate (RFC 9110 5.6.7), e.g. ``Thu, 01 Jan 1970 00:00:00 GMT``."""
    return email.utils.formatdate(timestamp, usegmt=True)


# RFC 9110 5.6.7: the three forms of an HTTP-date, always GMT, case-sensitive.
_IMF_FIXDATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) ([A-Z][a-z][a-z]) (\d{4}) (\d\d):(\d\d):(\d\d) GMT\Z", re.ASCII
)
_RFC850_DATE = re.compile(
    r"(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, (\d\d)-([A-Z][a-z][a-z])-(\d\d) (\d\d):(\d\d):(\d\d) GMT\Z",
    re.ASCII,
)
_ASCTIME_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z][a-z]) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\d{4})\Z", re.ASCII
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _parse_http_date(value: str) -> Optional[float]:
    """An HTTP-date as epoch seconds, or None for anything else, a list of
    dates included: If-Modified-Since and If-Unmodified-Since are then ignored
    (RFC 9110 13.1.3, 13.1.4)."""
    value = value.strip(" \t")
    if (match := _IMF_FIXDATE.match(value)) is not None:
        day, month, year, hour, minute, second = match.groups()
    elif (match := _RFC850_DATE.match(value)) is not None:
        day, month, short_year, hour, minute, second = match.groups()
        # The year with these two digits that is at most 50 years ahead: one
        # further ahead is the latest such year in the past.
        this_year = time.gmtime().tm_year
        full_year = this_year - this_year % 100 + int(short_year)
        if full_year > this_year + 50:
            full_year -= 100
        elif full_year + 100 <= this_year + 50:
            full_year += 100
        year = str(full_year)
    elif (match := _ASCTIME_DATE.match(value)) is not None:
        month, day, hour, minute, second, year = match.groups()
    else:
        return None
    if month not in _MONTHS:
        return None
    try:
        moment = datetime.datetime(
            int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute), int(second),
            tzinfo=datetime.timezone.utc,
        )
    except ValueError:  # 31 Feb, 25:00 ...
        return None
    return moment.timestamp()


class _MultiValueView(_PortingHints):
    """Ordered (name, value) pairs read like URLSearchParams / FormData.

    Lookups go through a dict of the values by name, made on the first one:
    a handler that looks up every name of a 50,000-pair query string would
    otherwise scan the pairs once per name, in quadratic time."""

    __slots__ = ("_pairs", "_by_name")
    _what = "value"  # what a name is, for the 400 of a missing one
    _nextjs_hints = _MULTI_VALUE_HINTS
    _flask_hints = _FLASK_MULTI_VALUE_HINTS

    def __init__(self, pairs: Iterable[tuple[str, Any]] = ()) -> None:
        self._pairs = list(pairs)
        self._by_name: Optional[dict[str, list[Any]]] = None

    def _values(self) -> dict[str, list[Any]]:
        if self._by_name is None:
            by_name: dict[str, list[Any]] = {}
            for key, value in self._pairs:
                by_name.setdefault(key, []).append(value)
            self._by_name = by_name
        return self._by_name

    def _values_of(self, name: Any) -> Optional[list[Any]]:
        try:
            return self._values().get(name)
        except TypeError:  # an unhashable name (a list) names no field
            return None

    def get(self, name: str, default: Any = None) -> Any:
        """The first value for ``name``, or ``default``."""
        values = self._values_of(name)
        return values[0] if values else default

    def get_all(self, name: str) -> list[Any]:
        """Every value for ``name``, in the order they came."""
        return list(self._values_of(name) or ())

    def has(self, name: str) -> bool:
        return self._values_of(name) is not None

    def __contains__(self, name: object) -> bool:
        return self._values_of(name) is not None

    def __getitem__(self, name: str) -> Any:
        values = self._values_of(name)
        if not values:
            raise MissingRequestValue(self._what, name)
        return values[0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())

    def keys(self) -> list[str]:
        """Distinct names, in order of first appearance."""
        return list(self._values())

    def items(self) -> list[tuple[str, Any]]:
        """Every (name, value) pair, repeated names included, in order."""
        return list(self._pairs)

    def to_dict(self) -> dict[str, Any]:
        """First value per name."""
        return {key: values[0] for key, values in self._values().items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._pairs!r})"


class SearchParams(_MultiValueView):
    """The query string: ``get``, ``get_all``, ``has``/``in``, ``items``."""

    __slots__ = ()
    _what = "query parameter"
    _nextjs_hints = {**_MULTI_VALUE_HINTS, "toString": "str(...)"}  # (FormData's toString() is no encoding)

    def __str__(self) -> str:
        """The query, encoded as URLSearchParams' toString() writes it (``a=1&b=x+y``),
        so ``f"/login?{request.search_params}"`` is a URL, not this object's repr."""
        return urlencode(self._pairs)


class FormData(_MultiValueView):
    """A parsed form: values are ``str``, or ``UploadFile`` for file parts."""

    __slots__ = ()
    _what = "form field"


class RequestCookies(_PortingHints, Mapping):  # type: ignore[type-arg]
    """The request's cookies, name to (percent-decoded) value; read-only."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, str]) -> None:
        self._data = dict(data)

    def __getitem__(self, name: str) -> str:
        try:
            return self._data[name]
        except KeyError:
            raise MissingRequestValue("cookie", name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def get(self, name: str, default: Any = None) -> Any:
        return self._data.get(name, default)

    def has(self, name: str) -> bool:
        return name in self._data

    def __repr__(self) -> str:
        return f"RequestCookies({self._data!r})"

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "request cookies are read-only: to set or delete a cookie, use cookies().set(...) or "
            "cookies().delete(...), or response.cookies; for the route to read other cookies than the "
            "client sent, the middleware returns Response.next(request_headers={\"cookie\": ...})"
        )

    __setitem__ = __delitem__ = set = delete = _refuse
    update = pop = popitem = clear = setdefault = _refuse


# ---------------------------------------------------------------------------
# Multipart forms: a streaming parser for multipart/form-data (RFC 7578).
# Bodies are read in chunks; file parts above spool_size go to a temp file.
# ---------------------------------------------------------------------------

# A part's header block is small in every real client; a bigger one is refused outright.
MULTIPART_HEADER_LIMIT = 16 * 1024
# Real parts carry two or three headers, and each header line costs a Python step.
MULTIPART_HEADER_LINES_LIMIT = 32
# RFC 2046 allows whitespace between a boundary and its CRLF; real clients send none.
MULTIPART_PADDING_LIMIT = 1024
# An RFC 5987 filename* value; a 255-byte file name takes at most 765 characters.
EXTENDED_VALUE_LIMIT = 1024
# The piece size UploadFile.save() copies with.
UPLOAD_COPY_CHUNK = 64 * 1024

_PADDING_RUN = re.compile(rb"[ \t]*")
_TRUNCATED = "multipart body is truncated: no closing boundary"
_BAD_EXTENDED = "malformed filename* or name* parameter (RFC 8187)"
# RFC 2046 section 5.1.1, "bchars": what a boundary may be made of.
_BOUNDARY_CHARS = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? "
)
# Codecs whose decoders are slower than linear on crafted input (punycode inserts
# characters one by one), that are no charset a client would label text with,
# or that hide markup from a filter that reads the raw bytes: UTF-7 spells '<'
# as '+ADw-' (browsers dropped it for that), and the EBCDIC code pages put it at
# another byte. (UTF-16 and UTF-32, which real clients send, are kept.)
# request.text() reads such a body as UTF-8, and a form field naming one is a 400.
_REFUSED_CHARSETS = frozenset({
    "punycode", "idna", "unicode-escape", "raw-unicode-escape", "undefined", "utf-7",
    "cp037", "cp273", "cp424", "cp500", "cp875", "cp1026", "cp1140",
    "mac-arabic", "mac-farsi",  # '<', '>', '"' and '&' at bytes 0xA0-0xBF too
})

# No pattern below repeats more than one character class, and each is matched at a
# given position: it runs forward over the text and never backtracks, so each use is linear.
_PART_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PARAM_NAME_RUN = re.compile(r"[^=;]*")
_PARAM_VALUE_RUN = re.compile(r"[^;]*")
# Control characters, HTAB aside (RFC 9110 field values).
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F])


class UploadFile:
    """A file sent in a multipart form.

    Up to `spool_size` bytes (or `max_form_memory`, if smaller) it lives in memory,
    beyond that in a temporary file; either
    way closing it frees it, and the framework closes every upload when the request ends.
    `filename` is whatever the client sent: never use it as a path without cleaning it.
    """

    def __init__(
        self, filename: str, content_type: str, headers: dict[str, str], file: IO[bytes]
    ) -> None:
        self.filename = filename
        self.content_type = content_type
        self.headers = headers
        self.size = 0
        self._file = file
        self._reading = False

    def _write(self, data: bytes | bytearray) -> None:
        self._file.write(data)
        self.size += len(data)

    def read(self, size: int = -1) -> bytes:
        """Read the content; the first call starts from the beginning."""
        if not self._reading:
            # The parser leaves the position at the end of what it wrote.
            self._file.seek(0)
            self._reading = True
        return self._file.read(size)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Copy the whole content to `path`, in pieces, whatever read() has consumed."""
        position = self._file.tell()
        self._file.seek(0)
        try:
            with open(path, "wb") as target:
                while True:
                    piece = self._file.read(UPLOAD_COPY_CHUNK)
                    if not piece:
                        break
                    target.write(piece)
        finally:
            # A read() in progress carries on where it was.
            self._file.seek(position)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> UploadFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<UploadFile filename={self.filename!r} "
            f"content_type={self.content_type!r} size={self.size}>"
        )


def multipart_boundary(content_type_params: dict[str, str]) -> str:
    """The boundary of a multipart Content-Type, from its parsed parameters; 400 if unusable."""
    boundary = content_type_params.get("boundary")
    if boundary is None:
        # Parameter names are case-insensitive (RFC 9110), whatever case the caller kept.
        for key, value in content_type_params.items():
            if key.lower() == "boundary":
                boundary = value
                break
    if not boundary:
        raise HTTPError(400, "multipart boundary is missing from Content-Type")
    _check_boundary(boundary)
    return boundary


def _check_boundary(boundary: str) -> None:
    # The length check comes first, so a huge parameter is refused without being scanned.
    if (
        not 1 <= len(boundary) <= 70
        or boundary.endswith(" ")
        or not all(char in _BOUNDARY_CHARS for char in boundary)
    ):
        raise HTTPError(400, "multipart boundary is invalid (RFC 2046: 1-70 plain characters)")


def parse_multipart(
    read: Callable[[int], bytes],
    boundary: str,
    *,
    max_parts: int,
    max_field_memory: int,
    spool_size: int,
    chunk_size: int = READ_CHUNK_SIZE,
) -> list[tuple[str, str | UploadFile]]:
    """Parse a multipart/form-data body into (name, value) pairs, in the order sent.

    `read(n)` gives at most n bytes and b"" at the end of the body. Fields become str,
    parts with a `filename` parameter become UploadFile. Every limit has its own 413;
    malformed input is a 400. On any error the uploads made so far are closed.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    _check_boundary(boundary)
    reader = _MultipartReader(read, boundary.encode("ascii"), chunk_size)
    form: list[tuple[str, str | UploadFile]] = []
    try:
        more = reader.skip_preamble()
        while more:
            if len(form) >= max_parts:
                raise HTTPError(413, f"form has more than {max_parts} parts")
            headers = _parse_part_headers(reader.read_part_headers())
            name, filename = _form_data_names(headers)
            if filename is None:
                data, more = _read_field(reader, max_field_memory, name)
                form.append((name, _decode_field(name, data, headers)))
            else:
                content_type = headers.get("content-type") or "text/plain"  # RFC 7578 4.4
                upload = UploadFile(filename, content_type, headers, _spool_file(spool_size))
                # Listed before it is filled, so that an error while filling closes it too.
                form.append((name, upload))
                more = reader.read_part_body(upload._write)
    except BaseException:
        for _, value in form:
            if isinstance(value, UploadFile):
                value.close()
        raise
    # Whatever follows the closing delimiter (the epilogue) is left unread.
    return form


class _MultipartReader:
    """Walks a multipart body: the preamble, then each part's headers and content.

    Only unconsumed bytes are kept: a chunk plus a delimiter's length while content
    streams through, at most one header block while headers are read.
    """

    def __init__(self, read: Callable[[int], bytes], boundary: bytes, chunk_size: int) -> None:
        self._read = read
        self._chunk_size = chunk_size
        self._delimiter = b"\r\n--" + boundary
        # The first delimiter may open the body with no CRLF before it; pretending there
        # was one lets a single search find it at the start or after a preamble.
        self._data = bytearray(b"\r\n")
        self._pos = 0
        self._eof = False

    def _fill(self) -> bool:
        """Append one chunk of the body; False at its end."""
        if self._eof:
            return False
        # Drop the consumed bytes only once they are at least half of the buffer: each
        # byte is then moved a bounded number of times, on any Python implementation.
        if self._pos and self._pos * 2 >= len(self._data):
            del self._data[: self._pos]
            self._pos = 0
        chunk = self._read(self._chunk_size)
        if not chunk:
            self._eof = True
            return False
        self._data += chunk
        return True

    def _ensure(self, count: int) -> None:
        """Make `count` unconsumed bytes available, or fail: the body ended too early."""
        while len(self._data) - self._pos < count:
            if not self._fill():
                raise HTTPError(400, _TRUNCATED)

    def skip_preamble(self) -> bool:
        """Discard everything up to the first delimiter; True when a part follows it."""
        keep = len(self._delimiter) - 1
        while True:
            found = self._data.find(self._delimiter, self._pos)
            if found >= 0:
                self._pos = found
                return self._delimiter_line()
            # Only the last few bytes can still be the start of a delimiter.
            self._pos = max(self._pos, len(self._data) - keep)
            if not self._fill():
                raise HTTPError(400, "multipart body does not contain the boundary")

    def read_part_headers(self) -> bytes:
        """The raw header block of the part that starts here, without its blank line."""
        self._ensure(2)
        if self._data[self._pos : self._pos + 2] == b"\r\n":
            self._pos += 2  # a part with no headers at all
            return b""
        scanned = 0  # bytes already searched, so that no byte is searched twice
        while True:
            found = self._data.find(b"\r\n\r\n", self._pos + scanned)
            if found >= 0:
                if found - self._pos > MULTIPART_HEADER_LIMIT:
                    raise HTTPError(413, f"multipart part headers are larger than {MULTIPART_HEADER_LIMIT} bytes")
                block = bytes(self._data[self._pos : found])
                self._pos = found + 4
                return block
            available = len(self._data) - self._pos
            if available > MULTIPART_HEADER_LIMIT + 3:
                raise HTTPError(413, f"multipart part headers are larger than {MULTIPART_HEADER_LIMIT} bytes")
            scanned = max(0, available - 3)
            if not self._fill():
                raise HTTPError(400, _TRUNCATED)

    def read_part_body(self, write: Callable[[bytearray], None]) -> bool:
        """Pass the part's content to `write`, piece by piece; True when a part follows."""
        keep = len(self._delimiter) - 1
        while True:
            found = self._data.find(self._delimiter, self._pos)
            if found >= 0:
                if found > self._pos:
                    write(self._data[self._pos : found])
                    self._pos = found
                return self._delimiter_line()
            # All but the last few bytes is content; those few may be the start of a
            # delimiter cut in two by the chunk edge, so they wait for the next chunk.
            safe_end = len(self._data) - keep
            if safe_end > self._pos:
                write(self._data[self._pos : safe_end])
                self._pos = safe_end
            if not self._fill():
                raise HTTPError(400, _TRUNCATED)

    def _delimiter_line(self) -> bool:
        """Consume the delimiter line at the current position: True when a part follows,
        False for the closing delimiter.

        RFC 2046 5.1.1: a line that starts with the delimiter is one, whatever follows it,
        since a boundary must not occur in content. Only "--" (the end) or optional
        whitespace and CRLF may follow, so anything else is refused rather than taken for
        content. Each delimiter found thus ends a part or the parse: crafted content cannot
        make the parser stop and look at one candidate after another.
        """
        offset = len(self._delimiter)
        self._ensure(offset + 2)
        if self._data[self._pos + offset : self._pos + offset + 2] == b"--":
            self._pos += offset + 2
            return False
        padding_end = offset + MULTIPART_PADDING_LIMIT
        while True:
            self._ensure(offset + 2)
            # Transport padding, skipped a run at a time (not a byte per step), up to its limit.
            start = self._pos + offset
            run = _PADDING_RUN.match(self._data, start, min(len(self._data), self._pos + padding_end))
            assert run is not None  # a run of none matches too
            end = run.end()
            if end > start:
                offset = end - self._pos
                continue
            if self._data[start : start + 2] == b"\r\n":
                self._pos += offset + 2
                return True
            raise HTTPError(400, "malformed multipart boundary line")


_PART_HEADER_SPELLING = {"content-disposition": "Content-Disposition", "content-type": "Content-Type"}


def _parse_part_headers(block: bytes) -> dict[str, str]:
    """Header names (lower-cased) and values of one part."""
    if not block:
        return {}
    # Counted before the split: the work per line is done in Python, so it is bounded.
    if block.count(b"\r\n") >= MULTIPART_HEADER_LINES_LIMIT:
        raise HTTPError(413, f"multipart part has more than {MULTIPART_HEADER_LINES_LIMIT} header lines")
    collected: dict[str, list[str]] = {}
    for raw_line in block.split(b"\r\n"):
        # Browsers send non-ASCII file names as raw UTF-8. Line by line, so one
        # stray latin-1 byte in another header cannot change how the name reads.
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError:
            line = raw_line.decode("latin-1")
        name, colon, value = line.partition(":")
        # Folded lines (starting with whitespace), bare CR or LF and NUL are refused: a
        # lenient reading here is how two parsers come to disagree about one request.
        if not colon or not _PART_TOKEN.fullmatch(name) or _has_cr_lf_or_nul(value):
            raise HTTPError(400, "malformed multipart part header")
        key = name.lower()
        if key in collected and key in _PART_HEADER_SPELLING:
            raise HTTPError(400, f"multipart part has two {_PART_HEADER_SPELLING[key]} headers")
        collected.setdefault(key, []).append(value.strip(" \t"))
    return {key: ", ".join(values) for key, values in collected.items()}


def _form_data_names(headers: dict[str, str]) -> tuple[str, str | None]:
    """The field name and, for a file, its file name, from Content-Disposition."""
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise HTTPError(400, "multipart part has no Content-Disposition header")
    kind, params, extended = _part_header_params(disposition)
    if kind != "form-data":
        raise HTTPError(400, "multipart part is not form-data")
    name = params.get("name")
    if name is None:
        raise HTTPError(400, "multipart part has no name")
    filename = params.get("filename")
    # A name* or filename* value was percent-decoded already (RFC 8187), once:
    # decoding its "%22" again would change the name the client sent.
    if "name" not in extended:
        name = _form_data_unquote(name)
    if filename is not None and "filename" not in extended:
        filename = _form_data_unquote(filename)
    return name, filename


def _form_data_unquote(value: str) -> str:
    """Undo the escapes browsers write in a name or file name (the HTML
    standard's multipart/form-data encoding; ``_form_data_quote`` writes them)."""
    if "%" not in value:
        return value
    return value.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


_PART_HEADER = "multipart part header"  # what the client is told was wrong


def _part_header_params(value: str) -> tuple[str, dict[str, str], frozenset[str]]:
    """Split 'form-data; name="a b"; x=1' into ('form-data', {'name': 'a b', 'x': '1'})
    and the names whose value came from an RFC 5987 parameter.

    The main value and parameter names are lower-cased. Values may be quoted strings.
    An RFC 5987 `name*=UTF-8''...` parameter replaces `name` (RFC 7578 section 4.2).
    Malformed or repeated parameters are a 400.
    """
    # Linear, and more: text is only ever scanned in runs at C speed. The Python steps,
    # one per parameter and one per backslash, are capped, since each costs a hundred
    # times a byte scanned and crafted input could otherwise be made of nothing else.
    if _has_control_chars(value):
        raise HTTPError(400, f"{_PART_HEADER} has a control character")
    if value.count("\\") > HEADER_BACKSLASH_LIMIT:
        raise HTTPError(400, f"{_PART_HEADER} has more than {HEADER_BACKSLASH_LIMIT} backslashes")
    disposition, _, rest = value.partition(";")
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    count = 0
    pos, end = 0, len(rest)
    while True:
        pos = _run_end(_SEPARATOR_RUN, rest, pos)
        if pos >= end:
            break
        count += 1
        if count > HEADER_PARAMS_LIMIT:
            raise HTTPError(400, f"{_PART_HEADER} has more than {HEADER_PARAMS_LIMIT} parameters")
        name_end = _run_end(_PARAM_NAME_RUN, rest, pos)
        name = rest[pos:name_end].strip(" \t").lower()
        if name_end == end or rest[name_end] == ";":
            pos = name_end  # a bare word without "=" carries nothing: skipped
            continue
        if not _PART_TOKEN.fullmatch(name):
            raise HTTPError(400, f"malformed {_PART_HEADER} parameter")
        pos = _run_end(_SPACE_RUN, rest, name_end + 1)
        if pos < end and rest[pos] == '"':
            text, pos = _read_form_quoted_string(rest, pos + 1)
            pos = _run_end(_SPACE_RUN, rest, pos)
            if pos < end and rest[pos] != ";":
                raise HTTPError(400, f"malformed {_PART_HEADER} parameter")
        else:
            value_end = _run_end(_PARAM_VALUE_RUN, rest, pos)
            text = rest[pos:value_end].strip(" \t")
            pos = value_end
        target, key = (extended, name[:-1]) if name.endswith("*") else (params, name)
        if key in target:
            # Two readings of one request are how parsers get fooled: refuse the choice.
            raise HTTPError(400, f"{_PART_HEADER} gives parameter {_shown(key, 64)!r} twice")
        target[key] = text
    for key, text in extended.items():
        params[key] = _decode_extended_value(text)
    return disposition.strip(" \t").lower(), params, frozenset(extended)


def _has_control_chars(value: str) -> bool:
    # Deleting the control bytes and comparing lengths runs at C speed (several times
    # faster than a regex search); UTF-8 never uses these bytes inside other characters.
    raw = value.encode("utf-8", "surrogatepass")
    return len(raw.translate(None, _CONTROL_BYTES)) != len(raw)


def _read_form_quoted_string(text: str, pos: int) -> tuple[str, int]:
    """The quoted string whose opening quote is just before ``pos``, and the
    position after its closing quote, read as browsers write them (the HTML
    standard, and Fetch's parser in Next.js): no escapes, so a backslash is
    a backslash (a file named ``dir\\`` comes as ``"dir\\"``). Older clients
    wrote a quote as ``\\"``: a quote after a backslash where the string
    cannot end (no ``;`` or end of the header follows) is read as a quote."""
    start = pos
    while True:
        close = text.find('"', pos)
        if close == -1:
            raise HTTPError(400, f"unterminated quoted string in a {_PART_HEADER}")
        after = _run_end(_SPACE_RUN, text, close + 1)
        if text[close - 1] != "\\" or after >= len(text) or text[after] == ";":
            return text[start:close].replace('\\"', '"'), close + 1
        pos = close + 1  # one step per such quote: HEADER_BACKSLASH_LIMIT caps them


def _decode_extended_value(text: str) -> str:
    """Decode an RFC 5987 value: charset'language'percent-encoded-bytes."""
    charset, quote1, rest = text.partition("'")
    _language, quote2, encoded = rest.partition("'")
    charset = charset.strip(" \t").lower()
    if (
        not (quote1 and quote2)
        or charset not in ("utf-8", "iso-8859-1")
        or _BAD_ESCAPE.search(encoded)
    ):
        raise HTTPError(400, _BAD_EXTENDED)
    if len(encoded) > EXTENDED_VALUE_LIMIT:  # each escape costs a Python step
        raise HTTPError(400, f"filename* or name* parameter longer than {EXTENDED_VALUE_LIMIT} characters")
    try:
        decoded = unquote_to_bytes(encoded).decode(charset)
    except UnicodeDecodeError:
        raise HTTPError(400, _BAD_EXTENDED) from None
    if "\0" in decoded:  # as a raw NUL in a part header is: no file name holds one (open() raises)
        raise HTTPError(400, _BAD_EXTENDED)
    return decoded


def _read_field(reader: _MultipartReader, max_memory: int, name: str) -> tuple[bytes, bool]:
    """The content of a non-file part, refused once it grows past `max_memory`."""
    pieces: list[bytearray] = []
    size = 0

    def keep(piece: bytearray) -> None:
        nonlocal size
        size += len(piece)
        if size > max_memory:  # checked before keeping, so memory stays bounded
            raise HTTPError(413, f"form field {_shown(name, 40)!r} is larger than {max_memory} bytes")
        pieces.append(piece)  # a copy already: the reader slices its buffer

    more = reader.read_part_body(keep)
    return b"".join(pieces), more


def _decode_field(name: str, data: bytes, headers: dict[str, str]) -> str:
    """A field's text: UTF-8 unless the part's Content-Type names another charset.
    Bytes that do not decode are a 400, not U+FFFD: a part without a file name
    is text, and binary data sent that way (curl's ``-F 'f=<file'``) would be lost."""
    charset = "utf-8"
    content_type = headers.get("content-type")
    if content_type:
        charset = _part_header_params(content_type)[1].get("charset") or charset
    codec = _text_codec(charset)
    field = f"form field {_shown(name, 40)!r}"
    if codec is None:
        raise HTTPError(400, f"{field} names an unsupported charset {_shown(charset, 40)!r}")
    try:
        return _decode_text(data, codec, field)
    except HTTPError as exc:
        raise HTTPError(400, f"{exc.message}: send binary data as a file, with a filename") from None


def _text_codec(charset: str) -> Optional[str]:
    """The codec for a charset a client named, or None: unknown, no text
    encoding (base64, zlib, undefined...), or one of _REFUSED_CHARSETS."""
    if not _is_python_codec_name(charset):
        return None
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        return None
    # The flag bytes.decode() itself checks (and refuses base64, zlib... with).
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED_CHARSETS:
        return None
    return info.name


def _is_python_codec_name(charset: str) -> bool:
    """Whether ``charset`` names one of Python's own codecs, found without
    asking codecs.lookup(): the encodings package keeps every name it was
    asked for, found or not, for the life of the process, so client-chosen
    names would grow the server's memory without end."""
    if len(charset) > 64:
        return False
    import encodings

    name = encodings.normalize_encoding(charset.lower())
    names = _python_codec_names()
    return name in names or name.replace(".", "_") in names


@functools.lru_cache(maxsize=None)  # listed on first use, not at import: pkgutil reads a folder
def _python_codec_names() -> frozenset[str]:
    """The modules of the encodings package and their aliases (utf_8, latin1...)."""
    import encodings
    import encodings.aliases
    import pkgutil

    modules = {module.name for module in pkgutil.iter_modules(encodings.__path__)}
    return frozenset(modules | set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values()))


def _decode_text(data: bytes, codec: str, what: str) -> str:
    """``data`` decoded with ``codec`` (from _text_codec); 400 if invalid."""
    try:
        # (No codec _text_codec allows decodes to a lone surrogate: UTF-7 could.)
        return data.decode(codec)
    except ValueError:  # UnicodeDecodeError, and the UnicodeError some decoders raise
        raise HTTPError(400, f"{what} is not valid {codec.upper()}") from None


def _spool_file(spool_size: int) -> IO[bytes]:
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=spool_size, mode="w+b")
    if spool_size <= 0:
        # SpooledTemporaryFile reads max_size=0 as "never roll over"; here a zero limit
        # means that every file goes to disk.
        spool.rollover()  # type: ignore[attr-defined]
    return spool


# ---------------------------------------------------------------------------
# The request target: its path split on the raw '/' first, each segment decoded once
# as Next.js does (/files/a%2Fb is one segment "a/b"), and the host it names.
# ---------------------------------------------------------------------------


def _split_target(target: str) -> Optional[tuple[str, str]]:
    """(authority, path) of a raw request target, without query or fragment:
    ``("", "/a")`` in origin form, ``("host:8080", "/a")`` in absolute form
    (``http://host:8080/a``); None for anything else."""
    raw = target.partition("?")[0].partition("#")[0]
    if raw[:1] == "/":
        return "", raw
    scheme_end = raw.find("://")
    if scheme_end == -1 or raw[:scheme_end].lower() not in ("http", "https"):
        return None  # no URL of this server (RFC 9110 4.2: its resources are http or https)
    authority, slash, path = raw[scheme_end + 3 :].partition("/")
    if not authority:
        return None  # http:///a: an http(s) URI without a host is to be rejected (RFC 9110 4.2.1)
    return authority, (slash + path) or "/"


def _server_authority(environ: dict[str, Any], scheme: str) -> str:
    """``host[:port]`` from SERVER_NAME and SERVER_PORT, for a request without
    Host (and under force-static). An IPv6 address gets its brackets; a name
    that is no host (waitress's Unix socket path, or a client's Host that
    gunicorn on a Unix socket copied there) is ``localhost``."""
    host = environ.get("SERVER_NAME") or "localhost"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = str(environ.get("SERVER_PORT") or "")
    if port.isascii() and port.isdigit() and port != ("443" if scheme == "https" else "80"):
        host = f"{host}:{port}"
    return host if _VALID_HOST.match(host) else "localhost"


def _named_host(environ: dict[str, Any], trust_forwarded: bool) -> Optional[str]:
    """The ``host[:port]`` the request names, unchecked: the authority of a
    target in absolute form (RFC 9112 3.2.2: Host is then ignored), else
    ``Host``; behind a trusted proxy, ``X-Forwarded-Host`` when it is set.
    None without any (an HTTP/1.0 client)."""
    host = _target_authority(environ) or environ.get("HTTP_HOST")
    if trust_forwarded:
        forwarded_host = _last_list_element(environ.get("HTTP_X_FORWARDED_HOST", ""))
        if forwarded_host:
            host = forwarded_host
    return host


def _host_source(environ: dict[str, Any], trust_forwarded: bool) -> str:
    """Where _named_host found the host, for the 400 that refuses it."""
    if trust_forwarded and _last_list_element(environ.get("HTTP_X_FORWARDED_HOST", "")):
        return "X-Forwarded-Host header"
    return "host in the request target" if _target_authority(environ) else "Host header"


def _target_authority(environ: dict[str, Any]) -> Optional[str]:
    """The host of a request target in absolute form (``http://host/path``), or None."""
    target = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    split = _split_target(target) if target else None
    if split is None:
        return None
    return split[0] or None  # "" for an origin-form target (/path)


def _raw_target_path(target: str, script: str) -> Optional[str]:
    """The app's part of the raw request target the server passed
    (``REQUEST_URI``, ``RAW_URI``): the path only, without ``SCRIPT_NAME``."""
    split = _split_target(target)
    if split is None:
        return None
    raw = split[1]
    if script:
        rest = _after_mount_point(raw, script)
        if rest is None:
            return None  # not under the mount point: PATH_INFO decides
        raw = rest or "/"
    return raw


def _after_mount_point(raw: str, script: str) -> Optional[str]:
    """What follows ``SCRIPT_NAME`` in a raw path, or None if it is not there.
    ``SCRIPT_NAME`` is decoded, and the raw path may encode it (``/my%20app``
    for ``/my app``): the segments it spans are compared decoded."""
    rest = raw[len(script) :]
    if raw.startswith(script) and rest[:1] in ("", "/"):
        return rest  # the usual mount point, with nothing encoded
    depth = script.count("/")
    parts = raw.split("/", depth + 1)
    if len(parts) <= depth or percent_decode("/".join(parts[: depth + 1])) != _environ_bytes(script):
        return None
    return "/" + parts[depth + 1] if len(parts) > depth + 1 else ""


def _decode_segment(raw: str) -> str:
    if "%" in raw:
        if _BAD_ESCAPE.search(raw):
            raise HTTPError(400, "malformed percent-escape in the path")
        # Raw bytes arrive as latin-1 characters (PEP 3333): keep them bytes.
        data = unquote_to_bytes(_environ_bytes(raw))
    elif raw.isascii():
        return raw
    else:
        data = _environ_bytes(raw)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPError(400, "the path is not valid UTF-8") from None


def _last_list_element(value: str) -> str:
    """The last element of a comma-separated header (empty ones do not count,
    RFC 9110 5.6.1.2). Of ``X-Forwarded-Host: evil.example, site.example``,
    only the last was written by the proxy in front: a proxy that appends to
    the header keeps what the client itself sent before it."""
    for element in reversed(value.split(",")):
        element = element.strip(" \t")
        if element:
            return element
    return ""


def _request_path(environ: dict[str, Any]) -> tuple[str, str]:
    """(decoded path, raw path) for the app; 400 if malformed."""
    target: Optional[str] = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if target and target[0] == "/" and not environ.get("SCRIPT_NAME"):
        raw = target.partition("?")[0] if "?" in target else target
        if "%" not in raw and "#" not in raw and raw.isascii():
            return raw, raw  # the usual target: a path at the root with nothing to decode
    if target == "*" or (not target and environ.get("PATH_INFO") == "*"):
        _asterisk_target(environ.get("REQUEST_METHOD", "GET"))
    if target and target[0] != "/":
        _check_absolute_form(target)
    raw_path = _raw_target_path(target, _script_name(environ)) if target else None
    if raw_path is not None:
        return "/" + "/".join(_path_segments(raw_path)), raw_path
    # PATH_INFO is already decoded, as latin-1 (PEP 3333): recode it to UTF-8.
    path_info = environ.get("PATH_INFO", "") or "/"
    try:
        path = path_info.encode("latin-1").decode("utf-8")
    except UnicodeEncodeError:
        path = path_info
    except UnicodeDecodeError:
        raise HTTPError(400, "the path is not valid UTF-8") from None
    if not path.startswith("/"):
        path = "/" + path
    return path, quote(path, safe=_PATH_CHARS)


def _check_absolute_form(target: str) -> None:
    """A 400 unless a target that is not a path is an http(s) URL naming a host with a
    port TCP can have. waitress passes on `GET info/a` or `GET host:443` (RFC 9112 3.2
    allows neither), whose PATH_INFO routed would answer a request the client did not
    make; and an http URL without a host (`http:///a`, `http://user@/a`) is to be
    rejected (RFC 9110 4.2.1)."""
    split = _split_target(target)
    if split is None:
        raise HTTPError(400, "the request target must be a path starting with /, an http(s) URL with a host, "
                             "or * for OPTIONS")
    if not _VALID_HOST.match(split[0]):
        raise HTTPError(400, "invalid host in the request target")


def _asterisk_target(method: str) -> NoReturn:
    """``OPTIONS *`` asks about the server as a whole (RFC 9110 9.3.7): 204
    with every method the app may answer. Any other method may not use that
    target (RFC 9112 3.2.4). Either way there is no path to route, so the
    answer comes from here, as the other answers about the target do."""
    if method == "OPTIONS":
        raise HTTPError(204, "", {"Allow": ", ".join(sorted(HTTP_METHODS))})
    raise HTTPError(400, f"the request target * is only for OPTIONS, not {'GET' if method == 'HEAD' else method}")


def _path_segments(raw_path: str) -> list[str]:
    """The decoded segments of a raw path, for the trie; 400 if malformed."""
    if raw_path == "/":
        return []
    if "%" not in raw_path and raw_path.isascii():  # nothing to decode
        return raw_path[1:].split("/")
    return [_decode_segment(part) for part in raw_path[1:].split("/")]


def _without_empty_segments(raw_path: str) -> str:
    """``/comments//4/`` as ``/comments/4``: one ``/`` between segments, none at the end."""
    return "/" + "/".join(segment for segment in raw_path.split("/") if segment)


# ---------------------------------------------------------------------------
# Request: a lazy view of the WSGI environ. Nothing is parsed until asked:
# a handler that never reads the body or the cookies never pays for them.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Limits:
    """The body and form limits of an ``App`` (see ``App`` for each one)."""

    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    max_form_parts: int = DEFAULT_MAX_FORM_PARTS
    max_form_memory: int = DEFAULT_MAX_FORM_MEMORY
    spool_size: int = DEFAULT_SPOOL_SIZE


_DEFAULT_LIMITS = Limits()

# Calling a class costs CPython 3.11 a second run of its interpreter (the class's
# __init__ is called from C): some 700 machine instructions, 2-3% of a static
# request. The objects the app makes for every request (its Request, a handler's
# Context, the Response of a returned dict) are made the cheaper way: object.__new__,
# then each field set by hand, in the functions beside each class; a test checks
# that each gets the same fields as the class would give it.
_new_object = object.__new__


# Codecs (by their codecs.lookup() name) that remove a leading byte order mark themselves
# (request.text() drops the mark the others leave).
_CODECS_THAT_DROP_THE_BOM = frozenset({"utf-16", "utf-32", "utf-8-sig"})


# JSON as RFC 8259 has it: no NaN or Infinity (Python's json reads them), no
# number too large for a float.
def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {_shown(text, 20)} is too large")
    return value


# Turning digits into an int takes time quadratic in their number. CPython
# refuses more than 4,300 by default (3.11, 3.10.7, 3.9.14 on), in C; where
# that guard is missing or turned off, a JSON body is held to the same cap.
_MAX_JSON_INT_DIGITS = 4300


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_JSON_INT_DIGITS:
        raise ValueError(f"an integer has more than {_MAX_JSON_INT_DIGITS} digits")
    return int(text)


def _interpreter_caps_int_digits() -> bool:
    max_digits = getattr(sys, "get_int_max_str_digits", None)
    return max_digits is not None and max_digits() != 0


# Built once: json.loads()/dumps() with options build a new coder per call.
_JSON_DECODER = jsonlib.JSONDecoder(
    parse_constant=_json_constant,
    parse_float=_json_float,
    parse_int=None if _interpreter_caps_int_digits() else _json_int,
)
_JSON_WHITESPACE = " \t\n\r"  # RFC 8259's four; anything else around a value is an error
_JSON_ENCODER = jsonlib.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# application/<subtype>+json, the subtype an RFC 6838 name (Content-Type is lower-cased first).
_JSON_SUFFIX_TYPE = re.compile(r"application/[a-z0-9][a-z0-9!#$&^_.+-]{0,120}\+json")

# JSONEncoder.encode() builds a new C encoder on every call, which costs more
# than encoding a small dict; this one is built once, with the same options.
# It keeps no table of objects being encoded (that table would be shared by
# threads), so a circular structure ends in RecursionError, still a 500.
_c_make_encoder = getattr(jsonlib.encoder, "c_make_encoder", None)
_C_JSON_ENCODER = (
    _c_make_encoder(None, _JSON_ENCODER.default, jsonlib.encoder.encode_basestring, None, ":", ",", False, False, False)
    if _c_make_encoder is not None
    else None
)


def _json_text(data: Any) -> str:
    """``data`` as compact JSON text, non-ASCII kept, NaN and Infinity refused."""
    if _C_JSON_ENCODER is None:
        return _JSON_ENCODER.encode(data)
    return "".join(_C_JSON_ENCODER(data, 0))


class Request(_PortingHints):
    """One HTTP request, as the handler sees it.

    ``method`` and ``path`` (decoded) are known when it is made; ``url``
    (absolute), ``headers``, ``cookies`` and ``search_params`` are read on
    first use; ``body()``,
    ``text()``, ``json()``, ``form()`` and ``stream()`` read the body.
    """

    # State only some requests need starts as a class attribute, so building
    # a Request (once per request) sets only what every request has.
    _headers: Optional[RequestHeaders] = None
    _cookies: Optional[RequestCookies] = None
    _search_params: Optional[SearchParams] = None
    _body: Optional[bytes] = None
    _body_consumed = ""  # which method read the body from the server, once it has
    _body_error: Optional[tuple[int, str]] = None  # why it could not be read (413, 400): every later read's answer
    _form: Optional[FormData] = None
    # These two are set on every Request too, since the app reads them for every
    # request (see _request_for_app); the defaults are for a subclass that skips __init__.
    _uploads: Optional[list[UploadFile]] = None  # a multipart form's files, closed when the request ends
    _jar: Optional[CookieJar] = None  # cookies(), made on first use
    # Set when the handler reads headers, cookies, the body or the URL (its Host):
    # the route cache keys on the URL's path and query (and the scheme, server
    # name and port, and mount point), not on these, so such an answer is not cached
    # (as Next.js bails out of caching on dynamic data).
    _read_client_data = False
    # The context App.__call__ runs the request in, for its streamed body.
    _context: Optional[contextvars.Context] = None
    # A copy of it taken before the middleware ran, where a force-static handler runs:
    # a context variable the middleware set for this client (the user) must not reach
    # the one answer kept for every client.
    _context_before_middleware: Optional[contextvars.Context] = None

    _flask_hints = _FLASK_REQUEST_HINTS  # (and Next.js's, as every _PortingHints)

    def __init__(
        self,
        environ: dict[str, Any],
        path: Optional[str] = None,
        raw_path: Optional[str] = None,
        limits: Limits = _DEFAULT_LIMITS,
        trust_forwarded: bool = False,
    ) -> None:
        # The app makes its requests in _request_for_app, without calling this:
        # a field set here is set there too (tests/test_fast_paths.py checks).
        self.environ = environ
        self.method: str = environ.get("REQUEST_METHOD", "GET")
        if path is None:
            path, raw_path = _request_path(environ)
        self.path: str = path
        self._raw_path = raw_path if raw_path is not None else quote(path)
        self._limits = limits
        self._trust_forwarded = trust_forwarded
        self._jar = None
        self._uploads = None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path}>"

    # -- the URL ----------------------------------------------------------

    @property
    def url(self) -> str:
        """The absolute URL the client asked for: ``http://host/path?query``."""
        self._read_client_data = True
        environ = self.environ
        scheme = environ.get("wsgi.url_scheme", "http")
        host = _named_host(environ, self._trust_forwarded)
        if self._trust_forwarded:
            forwarded_proto = _last_list_element(environ.get("HTTP_X_FORWARDED_PROTO", "")).lower()
            if forwarded_proto in ("http", "https"):  # a scheme is case-insensitive (RFC 3986 3.1)
                scheme = forwarded_proto
        if host:
            if not _VALID_HOST.match(host):
                raise HTTPError(400, f"invalid {_host_source(environ, self._trust_forwarded)}")
            default_port = ":443" if scheme == "https" else ":80"
            if host[-1] == ":":
                host = host[:-1]  # an empty port is left out of a URL (RFC 3986 6.2.3)
            elif host.endswith(default_port):
                host = host[: -len(default_port)]  # and so is the scheme's own, as Next.js's URL leaves it out
        else:
            host = _server_authority(environ, scheme)
        query = _url_from_environ(environ.get("QUERY_STRING", ""))
        url = f"{scheme}://{host}{_base_path(environ)}{_url_from_environ(self._raw_path)}"
        return f"{url}?{query}" if query else url

    @property
    def base_path(self) -> str:
        """Where the app is mounted (``SCRIPT_NAME``, written as in a URL), ""
        at the root, as Next.js's ``nextUrl.basePath``: ``redirect()`` sends a
        path as given, so put this in front of a site-absolute one. Never
        ``//host``: see ``_base_path``."""
        return _base_path(self.environ)

    @property
    def headers(self) -> RequestHeaders:
        self._read_client_data = True
        if self._headers is None:
            self._headers = RequestHeaders.from_environ(self.environ)
        return self._headers

    @property
    def cookies(self) -> RequestCookies:
        self._read_client_data = True
        if self._cookies is None:
            self._cookies = RequestCookies(parse_cookie_header(self.environ.get("HTTP_COOKIE", "")))
        return self._cookies

    @property
    def search_params(self) -> SearchParams:
        if self._search_params is None:
            self._search_params = SearchParams(parse_query(self.environ.get("QUERY_STRING", "")))
        return self._search_params

    @property
    def content_type(self) -> str:
        """The media type of the body, lower case, without parameters."""
        self._read_client_data = True  # a header: an answer built from it is this client's
        value: str = self.environ.get("CONTENT_TYPE", "")
        if ";" not in value and value.islower():
            return value.strip(" \t")  # nothing to parse (application/json, say)
        # The parameters are not read here: a malformed one is the 400 of whatever reads it.
        return value.partition(";")[0].strip(" \t").lower()

    # -- the body ---------------------------------------------------------

    def content_length(self) -> Optional[int]:
        """The declared body size; ``None`` without one; 400 when malformed."""
        self._read_client_data = True  # a header, as content_type is
        raw = self.environ.get("CONTENT_LENGTH")
        if not raw:
            return None
        if not raw.isascii() or not raw.isdigit():
            raise HTTPError(400, "Content-Length must be a whole number of bytes")
        if len(raw) > 18:
            raw = raw.lstrip("0") or "0"
            if len(raw) > 18:  # larger than any body anyone will send
                raise HTTPError(413, self._too_large_message())
        return int(raw)

    def _too_large_message(self) -> str:
        return f"request body is larger than the limit of {self._limits.max_body_size} bytes"

    def _check_body_size(self) -> None:
        """Refuse a declared body over ``max_body_size`` before reading it."""
        length = self.content_length()
        if length is not None and length > self._limits.max_body_size:
            raise HTTPError(413, self._too_large_message())

    def _body_failed(self, error: HTTPError) -> HTTPError:
        """Keep why the body could not be read: a handler that catches the
        error and tries another reader gets the same answer, not a 500. Only
        the status and message are kept: the error's traceback holds the
        reading frame, and with it the request and the partial body, in a
        cycle that would keep up to max_body_size alive until the collector runs."""
        self._body_error = (error.status, error.message)
        return error

    def _read_body_chunks(self, chunk_size: int, reader: str) -> Iterator[bytes]:
        if self._body_error is not None:
            raise HTTPError(*self._body_error)
        if self._body_consumed:
            raise RuntimeError(
                f"the request body was already read by {self._body_consumed}, which does not keep it; "
                f"{reader} cannot read it again"
            )
        self._body_consumed = reader
        stream = self.environ.get("wsgi.input")
        length = self.content_length()
        limit = self._limits.max_body_size
        if stream is None:
            return
        if length is None:
            coding = self.environ.get("HTTP_TRANSFER_ENCODING")
            if coding and _unsupported_coding(coding):
                # gunicorn undoes the chunking of `gzip, chunked` and passes the
                # gzip bytes on: read as the body, they would be taken for it.
                raise self._body_failed(HTTPError(
                    501, f"Transfer-Encoding {_shown(coding, 64)} is not supported: send the body without it"))
            # Without Content-Length the body is empty, unless the server says
            # the input ends by itself (chunked requests); then read to the limit.
            if not self.environ.get("wsgi.input_terminated"):
                if coding:
                    # A body is coming, but the server hands it on undecoded
                    # (wsgiref): read as empty, an upload would vanish with a 200.
                    raise self._body_failed(HTTPError(
                        411, "this server cannot read a chunked request body: send a Content-Length"))
                return
            total = 0
            while True:
                # Never more than one byte past the limit: that byte is enough to refuse the body.
                chunk = _read_input(stream, min(chunk_size, limit - total + 1))
                if not chunk:
                    return
                total += len(chunk)
                if total > limit:
                    raise self._body_failed(HTTPError(413, self._too_large_message()))
                yield chunk
        if length > limit:
            raise self._body_failed(HTTPError(413, self._too_large_message()))
        remaining = length
        while remaining > 0:
            chunk = _read_input(stream, min(chunk_size, remaining))
            if not chunk:
                raise self._body_failed(_body_cut_short())
            remaining -= len(chunk)
            yield chunk

    def stream(self, chunk_size: int = READ_CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the body in chunks without holding it whole (for piping)."""
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive number of bytes, not {chunk_size!r}")
        self._read_client_data = True
        if self._body is not None:
            if self._body:
                yield self._body
            return
        yield from self._read_body_chunks(chunk_size, "request.stream()")

    def body(self) -> bytes:
        """The whole body as bytes (read once, then kept)."""
        return self._whole_body("request.body()")

    def _whole_body(self, reader: str) -> bytes:
        """The body, read once and kept, for ``reader`` (the method the handler
        called, which an error about a body already streamed away names)."""
        self._read_client_data = True
        if self._body is None:
            length = self.content_length()
            if length is None or self._body_consumed:
                self._body = b"".join(self._read_body_chunks(READ_CHUNK_SIZE, reader))
            else:
                self._body = self._read_declared_body(length, reader)
        return self._body

    def _read_declared_body(self, length: int, reader: str) -> bytes:
        """A body of declared size in one read: ``body()`` holds it whole anyway."""
        if length > self._limits.max_body_size:
            raise HTTPError(413, self._too_large_message())
        self._body_consumed = reader
        stream = self.environ.get("wsgi.input")
        if stream is None or length == 0:
            return b""
        data = _read_input(stream, length)
        if len(data) < length:  # a server may hand it over in pieces: grown in place, in linear time
            pieces = bytearray(data)
            while len(pieces) < length:
                more = _read_input(stream, length - len(pieces))
                if not more:
                    raise self._body_failed(_body_cut_short())
                pieces += more
            data = bytes(pieces)
        return bytes(data)

    def text(self) -> str:
        """The body decoded with its ``charset``; UTF-8 when it names none, or
        none that decodes text safely (see ``_text_codec``); 400 if invalid."""
        charset = parse_header_params(self.environ.get("CONTENT_TYPE", ""))[1].get("charset", "utf-8")
        codec = _text_codec(charset) or "utf-8"
        text = _decode_text(self._whole_body("request.text()"), codec, "request body")
        # A leading byte order mark is not text: Fetch's text() drops it, as json() does here,
        # whichever Unicode encoding it marks (utf-16-le, utf-32...). The utf-16, utf-32 and
        # utf-8-sig codecs drop it themselves; a second one is the text's own first character.
        if text[:1] == "\ufeff" and codec.startswith("utf") and codec not in _CODECS_THAT_DROP_THE_BOM:
            return text[1:]
        return text

    def json(self) -> Any:
        """The body parsed as JSON.

        415 unless the Content-Type is ``application/json`` or
        ``application/*+json``; 400 for an empty body, bad UTF-8 (whatever the
        charset says, RFC 8259), malformed JSON or nesting too deep.
        """
        media_type = self.content_type
        if not (media_type == "application/json" or _JSON_SUFFIX_TYPE.fullmatch(media_type)):
            shown = _shown(media_type) if media_type else "none"
            raise HTTPError(415, f"send JSON with Content-Type: application/json (got {shown})")
        text = _decode_text(self._whole_body("request.json()"), "utf-8", "request body")
        if text.startswith("\ufeff"):
            text = text[1:]
        if not text.strip(_JSON_WHITESPACE):
            raise HTTPError(400, "request body is empty; expected JSON")
        try:
            if text[0] in _JSON_WHITESPACE:
                value = _JSON_DECODER.decode(text)  # it skips the whitespace first
            else:  # the usual body: one call less than decode(), same errors
                value, end = _JSON_DECODER.raw_decode(text)
                rest = text[end:].lstrip(_JSON_WHITESPACE) if end != len(text) else ""
                if rest:
                    raise jsonlib.JSONDecodeError("Extra data", text, len(text) - len(rest))
        except RecursionError:
            raise HTTPError(400, "malformed JSON: nested too deeply") from None
        except ValueError as exc:
            reason = str(exc)
            if "set_int_max_str_digits" in reason:  # CPython's digit cap names a call the client cannot make
                reason = "an integer has too many digits"
            raise HTTPError(400, f"malformed JSON: {reason}") from None
        if "\\u" in text and _SURROGATE_ESCAPE.search(text):
            # An escaped half of a surrogate pair decodes to a string that no
            # UTF-8 store or response can hold: refuse it here, not later.
            try:
                _json_text(value).encode("utf-8")
            except UnicodeEncodeError:
                raise HTTPError(400, "malformed JSON: a string holds a lone surrogate escape") from None
        return value

    def form(self) -> FormData:
        """The body parsed as a form (urlencoded or multipart); 415 otherwise."""
        self._read_client_data = True
        if self._form is None:
            media_type, params = parse_header_params(self.environ.get("CONTENT_TYPE", ""))
            if media_type == "application/x-www-form-urlencoded":
                self._form = self._urlencoded_form()
            elif media_type == "multipart/form-data":
                self._form = self._multipart_form(params)
            else:
                shown = _shown(media_type) if media_type else "none"
                raise HTTPError(415, "send the form with Content-Type: application/x-www-form-urlencoded "
                                     f"or multipart/form-data (got {shown})")
        return self._form

    def _urlencoded_form(self) -> FormData:
        text = self._whole_body("request.form()").decode("latin-1")  # bytes kept as-is; %XX decoded as UTF-8
        pairs = parse_query(text, self._limits.max_form_parts)
        limit = self._limits.max_form_memory
        for name, value in pairs:
            # The limit counts bytes; a character takes at most 4 in UTF-8.
            for field_text in (name, value):
                if len(field_text) > limit // 4 and len(field_text.encode("utf-8", "replace")) > limit:
                    raise HTTPError(413, f"form field {_shown(name, 40)!r} is larger than {limit} bytes")
        return FormData(pairs)

    def _multipart_form(self, params: dict[str, str]) -> FormData:
        boundary = multipart_boundary(params)
        body = self._body
        if body is not None:  # already read whole (body(), text()): parse what is kept
            chunks: Iterator[bytes] = (body[i : i + READ_CHUNK_SIZE] for i in range(0, len(body), READ_CHUNK_SIZE))
        else:  # parsed as it streams in, so large files never sit in memory
            chunks = self._read_body_chunks(READ_CHUNK_SIZE, "request.form()")
        reader = _ChunkReader(chunks)
        pairs = parse_multipart(
            reader.read,
            boundary,
            max_parts=self._limits.max_form_parts,
            max_field_memory=self._limits.max_form_memory,
            # Past max_form_memory a file goes to disk too, where that is the smaller:
            # no part is ever held whole in memory beyond it.
            spool_size=min(self._limits.spool_size, self._limits.max_form_memory),
        )
        # Added to those of a form read before (by the middleware, under another
        # Content-Type): every one is closed when the request ends.
        self._uploads = [*(self._uploads or ()), *(value for _, value in pairs if isinstance(value, UploadFile))]
        # Read the epilogue too: a body shorter than its Content-Length is a
        # 400 here, not a connection left waiting for bytes that never come.
        try:
            for _ in chunks:
                pass
        except HTTPError:
            self.close()
            raise
        return FormData(pairs)

    def close(self) -> None:
        """Remove the temporary files of uploads; called when the request ends."""
        uploads, self._uploads = self._uploads, None
        for upload in uploads or ():
            try:
                upload.close()
            except Exception:  # noqa: BLE001 - cleanup must not mask the response
                logger.exception("could not close an uploaded file")


def _unsupported_coding(transfer_encoding: str) -> bool:
    """Whether a Transfer-Encoding lists a coding besides chunked (gzip,
    deflate...), which no server here decodes (RFC 9112 6.1: 501)."""
    return any(part.strip(" \t").lower() not in ("chunked", "") for part in transfer_encoding.split(","))


def _read_input(stream: Any, size: int) -> bytes:
    """``wsgi.input.read(size)``; 400 when the server cannot deliver the body:
    gunicorn, for one, raises on a malformed chunked body or a client gone."""
    try:
        data: bytes = stream.read(size)
    except Exception as exc:  # noqa: BLE001 - each server has its own errors
        raise _UnreadableBody(400, f"request body could not be read ({type(exc).__name__})") from exc
    return data


class _ChunkReader:
    """Adapts an iterator of chunks to ``read(n)``, for the multipart parser."""

    __slots__ = ("_chunks", "_buffer")

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int) -> bytes:
        if not self._buffer:
            self._buffer = next(self._chunks, b"")
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


class Context:
    """The second handler argument: ``context.params`` holds the URL params."""

    __slots__ = ("params",)

    def __init__(self, params: Optional[dict[str, Any]] = None) -> None:
        self.params: dict[str, Any] = params if params is not None else {}

    def __repr__(self) -> str:
        return f"Context(params={self.params!r})"


def _request_for_app(
    environ: dict[str, Any],
    method: str,
    path: str,
    raw_path: str,
    limits: Limits,
    trust_forwarded: bool,
    context: contextvars.Context,
) -> Request:
    """``Request(environ, path, raw_path, limits, trust_forwarded)``, made
    without calling the class (see _new_object), in its request's context."""
    request: Request = _new_object(Request)
    request.environ = environ
    request.method = method
    request.path = path
    request._raw_path = raw_path
    request._limits = limits
    request._trust_forwarded = trust_forwarded
    # The app reads these two for every request, and CPython 3.11 reads an
    # object's own attribute much faster than its class's default.
    request._jar = None
    request._uploads = None
    request._context = context
    return request


def _context_for(params: Optional[dict[str, Any]]) -> Context:
    """``Context(params)``, made without calling the class (see _new_object)."""
    context: Context = _new_object(Context)
    context.params = params if params is not None else {}
    return context


# ---------------------------------------------------------------------------
# Response: what a handler returns. Headers are checked when they are set,
# so a bad value fails in the handler that set it, never on the wire.
# ---------------------------------------------------------------------------

# RFC 6265 cookie-octet, minus '%' so that every value round-trips through the
# percent-decoding that reading a cookie applies.
_COOKIE_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"
_COOKIE_PATH = re.compile(r"[\x20-\x3a\x3c-\x7e]*\Z")  # printable ASCII but ';'

_COOKIE_DOMAIN = re.compile(r"\.?[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,252})\Z")
_SAME_SITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
_PRIORITY = {"low": "Low", "medium": "Medium", "high": "High"}
# What browsers store at most (RFC 6265bis 5.6): a longer cookie is dropped
# without a word, so set() refuses it instead.
_COOKIE_MAX_PAIR_BYTES = 4096
_COOKIE_MAX_ATTRIBUTE_BYTES = 1024


_NO_VALUE: Any = object()
_COOKIE_OPTION_NAMES = {"httpOnly": "http_only", "maxAge": "max_age", "sameSite": "same_site"}
_FLASK_COOKIE_OPTION_NAMES = {"httponly": "http_only", "samesite": "same_site"}


def _check_cookie_call(name: Any, value: Any, options: tuple[Any, ...], attributes: dict[str, Any]) -> None:
    """Refuse Next.js's call forms with a TypeError that says what to write."""
    if isinstance(name, Mapping):
        raise TypeError("set() takes the name and value, then keywords: "
                        "set('name', 'lee', http_only=True), not Next.js's object form set({name, value, ...})")
    if options or isinstance(value, Mapping):
        raise TypeError("cookie options are keywords: set('name', 'lee', secure=True), not an options dict")
    if value is _NO_VALUE:
        raise TypeError("set() needs a value: set('name', 'lee')")
    for option in attributes:
        if option in _COOKIE_OPTION_NAMES:
            raise TypeError(f"write {_COOKIE_OPTION_NAMES[option]}=, not Next.js's {option}=")
        if option in _FLASK_COOKIE_OPTION_NAMES:
            raise TypeError(f"write {_FLASK_COOKIE_OPTION_NAMES[option]}=, not Flask's {option}=")


def _check_cookie_name(name: str) -> None:
    if not isinstance(name, str) or not _is_token(name):
        raise ValueError(f"invalid cookie name {name!r}: use letters, digits and !#$%&'*+-.^_`|~")


# The last second an HTTP date can write (9999-12-31 23:59:59 UTC).
_LAST_HTTP_DATE = 253402300799.0


def _expiry_timestamp(expires: Union[datetime.datetime, float, int]) -> float:
    """Epoch seconds for ``Expires``, kept within the dates HTTP can write:
    before 1970 is 1970 (expired either way), after 9999 is 9999."""
    if isinstance(expires, datetime.datetime):
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=datetime.timezone.utc)
        timestamp = expires.timestamp()
    elif isinstance(expires, (int, float)) and not isinstance(expires, bool):
        if expires != expires or expires in (float("inf"), float("-inf")):
            raise ValueError(f"expires must be a finite time, not {expires!r}")
        if expires > _LAST_HTTP_DATE:  # JavaScript's Date counts milliseconds: a likely slip
            raise ValueError(f"expires {expires!r} is after the year 9999: give epoch seconds, not milliseconds")
        timestamp = expires  # an int is compared exactly below, so a huge one never becomes a float
    else:
        raise TypeError("expires takes a datetime or epoch seconds")
    return float(min(max(timestamp, 0.0), _LAST_HTTP_DATE))


def format_set_cookie(
    name: str,
    value: str,
    *,
    max_age: Union[int, datetime.timedelta, None] = None,
    expires: Union[datetime.datetime, float, int, None] = None,
    path: Optional[str] = "/",
    domain: Optional[str] = None,
    secure: bool = False,
    http_only: bool = False,
    same_site: Optional[str] = None,
    partitioned: bool = False,
    priority: Optional[str] = None,
) -> str:
    """One ``Set-Cookie`` value, in the attribute order Next.js writes. A
    cookie that browsers would drop on arrival is a ``ValueError`` here."""
    name, path, domain = _exact_str(name), _exact_str(path), _exact_str(domain)
    parts = [_cookie_pair(name, _exact_str(value))]
    _check_cookie_rules(name, path, domain, secure)
    if path is not None:
        parts.append(f"Path={path}")
    if isinstance(max_age, datetime.timedelta):  # as Flask takes it
        seconds = max_age.total_seconds()
        # Whole seconds, but never 0 for a positive time: Max-Age=0 would delete the cookie.
        max_age = 1 if 0 < seconds < 1 else int(seconds)
    expiry = _cookie_expiry(max_age, expires)
    if expiry is not None:
        parts.append(f"Expires={http_date(expiry)}")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if domain is not None:
        parts.append(f"Domain={domain}")
    if secure:
        parts.append("Secure")
    if http_only:
        parts.append("HttpOnly")
    if same_site is not None:
        parts.append(f"SameSite={_spelled(same_site, _SAME_SITE, 'same_site')}")
    if partitioned:
        parts.append("Partitioned")
    if priority is not None:
        parts.append(f"Priority={_spelled(priority, _PRIORITY, 'priority')}")
    return "; ".join(parts)


def _cookie_pair(name: str, value: str) -> str:
    """``name=value``, the value percent-encoded where a cookie may not hold it."""
    _check_cookie_name(name)
    if not isinstance(value, str):
        raise TypeError(f"cookie {name} value must be a str, not {type(value).__name__}")
    if _has_cr_lf_or_nul(value):
        raise ValueError(f"cookie {name} value contains CR, LF or NUL")
    pair = f"{name}={quote(value, safe=_COOKIE_SAFE)}"
    if len(pair) - 1 > _COOKIE_MAX_PAIR_BYTES:
        raise ValueError(f"cookie {name} is {len(pair) - 1} bytes percent-encoded: browsers keep at most "
                         f"{_COOKIE_MAX_PAIR_BYTES} (name and value)")
    return pair


def _cookie_expiry(max_age: Optional[int], expires: Union[datetime.datetime, float, int, None]) -> Optional[float]:
    """The ``Expires`` time: ``expires``, or now plus a non-zero ``max_age``
    (which wins, as in Next.js); ``expires`` is checked either way."""
    expiry = None if expires is None else _expiry_timestamp(expires)
    if max_age is None:
        return expiry
    if isinstance(max_age, bool) or not isinstance(max_age, int):
        raise TypeError(f"max_age takes whole seconds (an int) or a timedelta, not {type(max_age).__name__}")
    if max_age or expiry is None:
        # Clamped first: a float overflows on a huge int.
        seconds = min(max(max_age, -_LAST_HTTP_DATE), _LAST_HTTP_DATE)
        expiry = min(max(time.time() + seconds, 0.0), _LAST_HTTP_DATE)
    return expiry


def _spelled(given: Any, spellings: dict[str, str], option: str) -> str:
    """``same_site="LAX"`` as ``Lax``: the spelling browsers expect, or ValueError."""
    spelled = spellings.get(str(_exact_str(given)).lower())  # a (str, Enum) member as its text
    if spelled is None:
        raise ValueError(f"{option} must be one of {', '.join(map(repr, spellings))}, not {given!r}")
    return spelled


def _check_cookie_rules(name: str, path: Optional[str], domain: Optional[str], secure: bool) -> None:
    """Refuse the attributes browsers ignore, or for which they drop the whole
    cookie (RFC 6265bis 5.6 and 5.7, CHIPS): better an error in the handler
    than a cookie that silently never arrives."""
    if path is not None:
        if not _COOKIE_PATH.match(path):
            raise ValueError(f"cookie {name} path {path!r}: RFC 6265 allows printable ASCII other than ';'")
        if not path.startswith("/") or len(path) > _COOKIE_MAX_ATTRIBUTE_BYTES:
            raise ValueError(f"cookie {name} path {path!r} must start with '/' and be at most "
                             f"{_COOKIE_MAX_ATTRIBUTE_BYTES} bytes")
    if domain is not None and (not _COOKIE_DOMAIN.match(domain) or domain.endswith(".") or ".." in domain):
        raise ValueError(f"cookie {name} domain {domain!r} is not a host name")
    # SameSite=None and Partitioned without Secure are dropped by browsers too,
    # but written as asked: design.md gives their spelling, and a cookie for
    # plain-HTTP development on localhost may want them.
    prefix = name[:9].lower()
    if prefix.startswith("__host-"):
        if domain is not None or path != "/" or not secure:
            raise ValueError(f"cookie {name}: a __Host- cookie takes secure=True, path='/' and no domain, "
                             "or browsers drop it")
    elif prefix == "__secure-" and not secure:
        raise ValueError(f"cookie {name}: a __Secure- cookie takes secure=True, or browsers drop it")


def format_delete_cookie(
    name: str,
    *,
    path: Optional[str] = "/",
    domain: Optional[str] = None,
    secure: bool = False,
    partitioned: bool = False,
) -> str:
    """A ``Set-Cookie`` value that removes the cookie: empty, expired in 1970.
    A browser applies it only when it carries what that cookie requires:
    ``Partitioned`` for a partitioned one, ``Secure`` for that and for a
    ``__Secure-`` or ``__Host-`` one (RFC 6265bis 4.1.3, in any case), so
    ``Secure`` is added there."""
    secure = secure or partitioned or (isinstance(name, str) and name.lower().startswith(("__secure-", "__host-")))
    return format_set_cookie(name, "", expires=0, path=path, domain=domain, secure=secure, partitioned=partitioned)


def _set_cookie_pair(line: str) -> tuple[str, str]:
    """The (name, raw value) a ``Set-Cookie`` line sets, attributes left out."""
    name, _, value = line.partition(";")[0].partition("=")
    return name.strip(" \t"), value.strip(" \t")


def _set_cookie_name(line: str) -> str:
    return _set_cookie_pair(line)[0]


def _set_cookie_expired(attributes: str) -> bool:
    """Whether ``Set-Cookie`` attributes remove the cookie: ``Max-Age`` of 0 or
    less, else an ``Expires`` in the past (Max-Age wins, RFC 6265 5.3)."""
    expires = None
    for attribute in attributes.split(";"):
        key, _, value = attribute.partition("=")
        key, value = key.strip().lower(), value.strip()
        if key == "max-age":
            seconds = value.lstrip("-")
            if seconds.isascii() and seconds.isdigit():
                return value.startswith("-") or not seconds.strip("0")
        elif key == "expires":
            expires = _parse_cookie_date(value)
    return expires is not None and expires <= time.time()


def _parse_cookie_date(value: str) -> Optional[float]:
    """A Set-Cookie Expires, read leniently as RFC 6265 5.1.1 asks."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


class ResponseCookies:
    """``response.cookies``: ``set`` and ``delete`` write ``Set-Cookie`` headers."""

    __slots__ = ("_headers",)

    def __init__(self, headers: Headers) -> None:
        self._headers = headers

    def set(
        self,
        name: str,
        value: str,
        *,
        max_age: Union[int, datetime.timedelta, None] = None,
        expires: Union[datetime.datetime, float, int, None] = None,
        path: Optional[str] = "/",
        domain: Optional[str] = None,
        secure: bool = False,
        http_only: bool = False,
        same_site: Optional[str] = None,
        partitioned: bool = False,
        priority: Optional[str] = None,
    ) -> None:
        """Set a cookie (one ``Set-Cookie`` per name); ``max_age`` also sets
        ``Expires``; ``same_site`` is "lax", "strict" or "none" and
        ``priority`` "low", "medium" or "high", in any case."""
        line = format_set_cookie(
            name, value, max_age=max_age, expires=expires, path=path, domain=domain,
            secure=secure, http_only=http_only, same_site=same_site, partitioned=partitioned, priority=priority,
        )
        self._replace(name, line)

    def delete(
        self,
        name: str,
        *,
        path: Optional[str] = "/",
        domain: Optional[str] = None,
        secure: bool = False,
        partitioned: bool = False,
    ) -> None:
        """Tell the browser to drop the cookie (empty value, expired in 1970);
        give ``secure``/``partitioned`` as the cookie was set with them."""
        line = format_delete_cookie(name, path=path, domain=domain, secure=secure, partitioned=partitioned)
        self._replace(name, line)

    def get(self, name: str) -> Optional[str]:
        """The value this response sets for ``name``, decoded, or ``None``."""
        for line in self._headers.get_all("set-cookie"):
            line_name, value = _set_cookie_pair(line)
            if line_name == name:
                return _decode_cookie_value(value)
        return None

    def has(self, name: str) -> bool:
        return any(_set_cookie_name(line) == name for line in self._headers.get_all("set-cookie"))

    __contains__ = has

    def _replace(self, name: str, line: str) -> None:
        kept = [
            (n, v)
            for n, v in self._headers.raw()
            # ("name in v" first: a C-speed scan that spares most lines the parse)
            if not (n.lower() == "set-cookie" and name in v and _set_cookie_name(v) == name)
        ]
        self._headers._items[:] = kept
        self._headers.append("Set-Cookie", line)


_REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# What a redirect's or a rewrite's URL keeps as it is when the rest is percent-encoded.
_LOCATION_SAFE = "!#$%&'()*+,-./:;=?@[]_~"
_LOCATION_AS_IS = re.compile(r"[A-Za-z0-9!#$%&'()*+,\-./:;=?@\[\]_~]*\Z")


_TEXT_TYPE_HEADER = ("Content-Type", "text/plain; charset=utf-8")
_BINARY_TYPE_HEADER = ("Content-Type", "application/octet-stream")
_JSON_TYPE_HEADER = ("Content-Type", "application/json")
# Response.json()'s fallback for data holding a lone surrogate, which UTF-8 cannot
# encode: ASCII JSON writes it as a \udXXX escape.
_JSON_ASCII_ENCODER = jsonlib.JSONEncoder(separators=(",", ":"), allow_nan=False)


class Response(_PortingHints):
    """What a handler returns: a body, a status and headers.

    ``body`` is ``str`` (sent as ``text/plain; charset=utf-8``), ``bytes``
    (``application/octet-stream``), ``None``, or an iterable of bytes/str,
    sync or async, sent as it is produced without ``Content-Length``.
    """

    # Set for a few responses only, so class attributes until then.
    _stream: Any = None
    _file: Optional[tuple[IO[bytes], int, int]] = None
    # Not None only for Response.next()/rewrite(): (action, rewrite path, request
    # header changes). Kept out of the headers so nothing of it is ever sent.
    # Set on every Response too, since the app reads it for every answer a handler
    # returns (see _new_object); the default is for a subclass that skips __init__.
    _middleware: Optional[tuple[str, Optional[str], dict[str, Optional[str]]]] = None
    # Headers the framework set as a default (a file's Cache-Control), lower-case
    # name to value: while the value is still that, the middleware's replaces it.
    _default_headers: Mapping[str, str] = types.MappingProxyType({})
    _nextjs_hints = _NO_HINTS
    _flask_hints = _FLASK_RESPONSE_HINTS

    def __init__(self, body: ResponseBody = None, status: int = 200, headers: HeaderInput = None) -> None:
        # Response.json() makes its commonest answers in _response_with_body, without
        # calling this: a field set here is set there too (tests/test_fast_paths.py checks).
        self.status = status
        self._middleware = None
        if type(body) is str and not headers:  # the commonest response, built in two steps
            self._body: Optional[bytes] = body.encode()  # UTF-8, the default (no argument to read)
            self._header_items: list[tuple[str, str]] = [_TEXT_TYPE_HEADER]
            return
        # The pairs themselves; ``headers`` is a Headers view over them, made
        # when asked for, since most responses are sent without one.
        self._header_items = Headers(headers)._items if headers else []
        if body is None:
            self._body = b""
        elif isinstance(body, str):
            self._body = body.encode("utf-8")
            self._default_type(_TEXT_TYPE_HEADER)
        elif isinstance(body, (bytes, bytearray, memoryview)):
            self._body = bytes(body)
            self._default_type(_BINARY_TYPE_HEADER)
        elif isinstance(body, Mapping):  # iterating it would send its keys
            raise TypeError("Response body must not be a dict: use Response.json(data), or return the dict")
        elif hasattr(body, "__iter__") or hasattr(body, "__aiter__"):
            self._body = None
            self._stream = body
            self._default_type(_BINARY_TYPE_HEADER)
        else:
            raise TypeError(
                f"Response body must be str, bytes or an iterable of bytes, not {type(body).__name__}"
            )

    def _default_type(self, header: tuple[str, str]) -> None:
        items = self._header_items
        if not items or not self.headers.has("content-type"):
            items.append(header)  # a known-good value

    @property
    def headers(self) -> Headers:
        """The response headers; changes made through it are sent."""
        return Headers._view(self._header_items)

    @headers.setter
    def headers(self, headers: Headers) -> None:
        self._header_items = Headers(headers)._items

    def __repr__(self) -> str:
        return f"<Response {self.status}>"

    @property
    def body(self) -> Optional[bytes]:
        """The body held in memory, or ``None`` for a streamed body."""
        return self._body

    @property
    def cookies(self) -> ResponseCookies:
        return ResponseCookies(self.headers)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: HeaderInput = None) -> Response:
        """``data`` serialised as JSON (compact, UTF-8), ``application/json``."""
        text = _json_text(data)
        try:
            body = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: send it escaped, as \udXXX
            body = _JSON_ASCII_ENCODER.encode(data).encode("ascii")
        if cls is Response and headers is None:  # a returned dict's, for one: made the cheaper way
            return _response_with_body(body, _JSON_TYPE_HEADER, status)
        response = cls(None, status, headers)
        response._body = body
        response._default_type(_JSON_TYPE_HEADER)
        return response

    @classmethod
    def redirect(cls, url: str, status: int = 307) -> Response:
        """A redirect to ``url`` (relative or absolute, as given), empty body."""
        if not _valid_status(status) or status not in _REDIRECT_STATUSES:  # 307.0 == 307, but is no status
            raise ValueError(f"redirect status must be one of {', '.join(map(str, _REDIRECT_STATUSES))}, "
                             f"not {status!r}")
        return cls(None, status, {"Location": _location(url)})

    @classmethod
    def next(
        cls,
        headers: HeaderInput = None,
        request_headers: Optional[Mapping[str, Optional[str]]] = None,
    ) -> Response:
        """In middleware: go on to the route. ``request_headers`` adds or
        replaces headers the route sees (``None`` removes one); ``headers``
        and cookies set on this response land on the final response."""
        if isinstance(headers, Mapping) and isinstance(headers.get("request"), Mapping):
            raise TypeError("write Response.next(request_headers={...}), not Next.js's next({request: {headers}})")
        response = cls(None, 200, headers)
        response._middleware = ("next", None, _request_header_changes(request_headers))
        return response

    @classmethod
    def rewrite(
        cls,
        path: str,
        headers: HeaderInput = None,
        request_headers: Optional[Mapping[str, Optional[str]]] = None,
    ) -> Response:
        """In middleware: serve the route at ``path`` (``/other?a=1``: its query
        replaces the client's) while ``request.url`` stays the client's URL.
        ``headers`` and ``request_headers`` work as in ``Response.next``."""
        if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
            raise ValueError(f"rewrite takes a path on this app that starts with '/', not {path!r}")
        if any(c in path for c in "\r\n\0#"):
            raise ValueError(f"rewrite path {path!r} contains CR, LF, NUL or '#'")
        if not path.isascii() or " " in path:
            # The route is found from the path as a client sends it: UTF-8, percent-encoded.
            path = quote(path, safe=_LOCATION_SAFE)
        response = cls(None, 200, headers)
        response._middleware = ("rewrite", path, _request_header_changes(request_headers))
        return response


def _response_with_body(body: bytes, content_type: tuple[str, str], status: int) -> Response:
    """A Response with ``body`` and only a Content-Type, made without calling
    the class (see _new_object)."""
    response: Response = _new_object(Response)
    response.status = status
    response._middleware = None
    response._body = body
    response._header_items = [content_type]
    return response


def _request_header_changes(changes: Optional[Mapping[str, Optional[str]]]) -> dict[str, Optional[str]]:
    """Check ``request_headers`` at once, so a bad one fails in the middleware."""
    checked: dict[str, Optional[str]] = {}
    for name, value in (changes or {}).items():
        if value is None:
            if not isinstance(name, str) or not _is_token(name):
                raise ValueError(f"invalid header name {name!r}")
        else:
            name, value = _check_header(name, value, sent=False)
        checked[name.lower()] = value
    return checked


def _location(url: str) -> str:
    """A ``Location`` value: the URL as given, with what a URL may not hold
    percent-encoded (non-ASCII, spaces, a backslash, a ``%`` that starts no
    escape); the escapes already there stay as they are."""
    if not isinstance(url, str):
        raise TypeError("redirect URL must be a str")
    if _CONTROL_CHAR.search(url):  # refused here, in the handler, not later as a header
        raise ValueError("redirect URL contains CR, LF, NUL or another control character")
    has_percent = "%" in url
    if _LOCATION_AS_IS.match(url) and not (has_percent and _BAD_ESCAPE.search(url)):
        return url  # the usual redirect (/comments/4?page=2): nothing to encode
    if has_percent:
        url = _BAD_ESCAPE.sub("%25", url)
    return quote(url, safe=_LOCATION_SAFE)


# ---------------------------------------------------------------------------
# Errors and the request context: HTTPError and the helpers that raise it,
# and headers()/cookies(), which find the current request in a ContextVar.
# ---------------------------------------------------------------------------


def _await_hint() -> str:
    """For ``await context.params`` or ``await request.json()``, written as in Next.js 15."""
    exc = sys.exc_info()[1]
    text = str(exc)
    # Python 3.9-3.13: "object dict can't be used in 'await' expression"; 3.14: "'dict' object can't be awaited".
    if isinstance(exc, TypeError) and ("can't be used in 'await' expression" in text
                                       or text.endswith("object can't be awaited")):
        return (" (context.params and request.json(), text(), form() and body() are plain values here: "
                "drop the await)")
    return ""


def _error_message(message: Any, status: int) -> Any:
    """What ``{"error": ...}`` holds: the reason phrase for no message, a
    string as its text (a StrEnum member too), a value JSON holds as given,
    and anything else (an exception, a Path) as its text: checked here, not
    when the answer is written, where it would be a 500."""
    if message is None or message == "":
        return _reason(status).lower()
    if isinstance(message, str):
        return _exact_str(message)
    try:
        _json_text(message)
    except (TypeError, ValueError, RecursionError):
        return str(message) or _reason(status).lower()  # ValueError() has no text
    return message


class HTTPError(_PortingHints, Exception):
    """Raise it from a handler to answer ``status`` with ``{"error": message}``."""

    _nextjs_hints = _NO_HINTS
    _flask_hints = _FLASK_ERROR_HINTS

    def __init__(self, status: int, message: Any = "", headers: HeaderInput = None) -> None:
        if not _valid_status(status):
            raise ValueError(f"HTTP status must be an int from 200 to 599, not {status!r}")
        self.status = status
        self.message = _error_message(message, status)
        # Checked now, so a bad header fails where it is raised, as a response's would.
        self.headers = Headers(headers) if headers else None
        super().__init__(status, self.message)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"

    def to_response(self) -> Response:
        return _error_response(self.status, self.message, self.headers)


class MissingRequestValue(HTTPError, KeyError):
    """A header, query parameter, form field or cookie read with ``[name]``
    that the request does not have: a ``KeyError``, and a 400 saying what is
    missing when the handler lets it go: the client left it out, not the
    handler. ``get(name)`` gives ``None`` instead."""

    def __init__(self, what: str, name: Any) -> None:
        super().__init__(400, f"missing {what} {name!r}")
        self.args = (name,)  # as a KeyError's: the name asked for
        self.what = what

    def __reduce__(self) -> Any:  # args holds the name only: pickle and copy need both
        return (type(self), (self.what, self.args[0]), self.__dict__)


class _UnreadableBody(HTTPError):
    """wsgi.input raised, or ended early: its cause is the server's error (a gone client's ConnectionError)."""


def _body_cut_short() -> HTTPError:
    """The body ended before its Content-Length: the client closed its side of
    the connection. Its cause says so: once the answer has started, the
    connection is cut as for any gone client (see _StreamedBody)."""
    error = _UnreadableBody(400, "request body ended before Content-Length bytes arrived")
    error.__cause__ = ConnectionResetError(errno.ECONNRESET, "the client's body ended before its Content-Length")
    return error


class RedirectError(HTTPError):
    """Raised by ``redirect()`` and ``permanent_redirect()``; becomes a redirect."""

    def __init__(self, url: str, status: int = 307) -> None:
        super().__init__(status, f"redirect to {url}")
        self.url = _location(url)  # a bad URL fails here, in the handler

    def to_response(self) -> Response:
        return Response.redirect(self.url, self.status)


def redirect(url: str) -> NoReturn:
    """Stop the handler and answer ``307 Temporary Redirect`` to ``url``."""
    raise RedirectError(url, 307)


def permanent_redirect(url: str) -> NoReturn:
    """Stop the handler and answer ``308 Permanent Redirect`` to ``url``."""
    raise RedirectError(url, 308)


def not_found(message: str = "not found") -> NoReturn:
    """Stop the handler and answer 404 ``{"error": message}``."""
    raise HTTPError(404, message)


# RFC 9110's reason phrases, the same on every Python (3.13 renamed these).
_RFC_9110_PHRASES = {
    413: "Content Too Large", 414: "URI Too Long", 416: "Range Not Satisfiable", 422: "Unprocessable Content",
}


def _reason(status: int) -> str:
    if status in _RFC_9110_PHRASES:
        return _RFC_9110_PHRASES[status]
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _valid_status(status: Any) -> bool:
    """A final status. A 1xx is only ever interim (RFC 9110 15.2): sent as the
    answer, the client would wait for the one that follows, and WSGI cannot
    send two. Fetch's Response refuses it too (200-599), so Next.js does."""
    return not isinstance(status, bool) and isinstance(status, int) and 200 <= status <= 599


def _shown(text: str, limit: int = 100) -> str:
    """Client input quoted in an error message: at most ``limit`` characters."""
    return text if len(text) <= limit else text[:limit] + "..."


def _error_response(status: int, message: Any, headers: HeaderInput = None) -> Response:
    """Every error the framework writes: JSON ``{"error": reason}``."""
    return Response.json({"error": message}, status, headers)


class CookieJar(_PortingHints, Mapping):  # type: ignore[type-arg]
    """``cookies()``: the request's cookies, plus ``set``/``delete`` that land
    on the response, visible to ``get`` for the rest of the request."""

    __slots__ = ("_request_cookies", "_changes", "_outgoing", "_sealed")

    def __init__(self, request_cookies: Mapping[str, str]) -> None:
        self._request_cookies = request_cookies
        self._sealed = False  # True once merged into the answer: a later set() would be lost
        self._changes: dict[str, Optional[str]] = {}  # None: deleted
        # Written exactly as response.cookies writes them, merged later.
        self._outgoing = ResponseCookies(Headers())

    @property
    def _pending(self) -> dict[str, str]:
        """Cookie name -> the ``Set-Cookie`` value to merge into the response."""
        return {_set_cookie_name(line): line for line in self._outgoing._headers.get_all("set-cookie")}

    def _current(self) -> dict[str, str]:
        merged = dict(self._request_cookies)
        for name, value in self._changes.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        return merged

    def __getitem__(self, name: str) -> str:
        if name in self._changes:
            value = self._changes[name]
            if value is None:
                # The handler's own delete(): its mistake (a 500), not the client's (a 400).
                raise KeyError(f"cookie {name!r} was deleted by this request's cookies().delete() or set expired")
            return value
        return self._request_cookies[name]

    def get(self, name: str, default: Any = None) -> Any:
        if name in self._changes:
            value = self._changes[name]
            return default if value is None else value
        return self._request_cookies.get(name, default)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str) and name in self._changes:
            return self._changes[name] is not None
        return name in self._request_cookies

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    def has(self, name: str) -> bool:
        return name in self

    def __await__(self) -> Generator[Any, None, CookieJar]:
        """``await cookies()``, as Next.js 15 writes it, is the jar itself."""
        return _itself(self).__await__()

    def set(self, name: str, value: str = _NO_VALUE, *options: Any, **attributes: Any) -> None:
        """Set a cookie on the response; the attributes are those of
        ``response.cookies.set``. ``get(name)`` sees it from now on, unless
        it is set already expired (``max_age=0``), which removes it. Next.js's
        forms (an object, an options dict, ``httpOnly=``) say what to write."""
        _check_cookie_call(name, value, options, attributes)
        self._set(name, value, **attributes)

    def _set(self, name: str, value: str, **attributes: Any) -> None:
        self._check_open("set")
        self._outgoing.set(name, value, **attributes)
        line = self._outgoing._headers._items[-1][1]  # the line just written: _replace appends it
        self._changes[name] = None if _set_cookie_expired(line.partition(";")[2]) else value

    def delete(self, name: str, **attributes: Any) -> None:
        """Remove a cookie (the attributes are those of ``response.cookies.delete``):
        ``get(name)`` is ``None`` from now on."""
        if isinstance(name, Mapping):
            raise TypeError("delete() takes the name, then keywords: delete('name', path='/x'), "
                            "not Next.js's object form delete({name, path})")
        self._check_open("delete")
        self._outgoing.delete(name, **attributes)
        self._changes[name] = None

    def _seal(self) -> None:
        """Called once the jar's cookies are merged into the answer's headers."""
        self._sealed = True

    def _check_open(self, what: str) -> None:
        if self._sealed:
            raise RuntimeError(f"cookies().{what}() after the answer's headers were made: the cookie would be "
                               "lost (set it in the handler, or in a streamed body before its first piece)")


# Which request this thread/task is serving: the global state design.md allows.
# (The only other is _event_loops, one reused event loop per server thread.)
_current_request: contextvars.ContextVar[Optional[Request]] = contextvars.ContextVar(
    "minirouter_request", default=None
)


def _request_in_scope(caller: str) -> Request:
    request = _current_request.get()
    if request is None:
        raise RuntimeError(f"{caller}() works only inside a route handler or middleware")
    return request


_Value = TypeVar("_Value")


async def _itself(value: _Value) -> _Value:
    return value


def headers() -> RequestHeaders:
    """The current request's headers, read-only (Next.js ``headers()``)."""
    return _request_in_scope("headers").headers


def cookies() -> CookieJar:
    """The current request's cookies, with ``set``/``delete`` (Next.js ``cookies()``)."""
    request = _request_in_scope("cookies")
    if request._jar is None:
        request._jar = CookieJar(request.cookies)
    return request._jar


# ---------------------------------------------------------------------------
# Middleware: app/middleware.py runs before the route lookup on the paths its
# matchers select, and goes on, rewrites, or answers (as Next.js middleware).
# ---------------------------------------------------------------------------

# Matcher tokens, one per path segment. A parameter never takes an empty segment.
_LITERAL = "literal"
_ONE = "one"  # :name    exactly one segment
_MAYBE = "maybe"  # :name?   zero or one
_REPEAT = "repeat"  # :name*   zero or more; :name+ is a _ONE then a _REPEAT
# Characters with a meaning in path-to-regexp (which Next.js matchers use): in
# a literal they mean a regex or modifier that is not supported, so refuse them.
_MATCHER_RESERVED = frozenset("()[]{}*+?:\\")
_MATCHER_NAME = re.compile(r"[A-Za-z0-9_]+\Z")


class PathMatcher:
    """One compiled ``config["matcher"]`` pattern, such as ``/api/:path*``.

    Matching walks the pattern as a small NFA over the path segments, so the
    cost is segments x tokens whatever the pattern; no regex, no backtracking.
    """

    __slots__ = ("pattern", "tokens")

    def __init__(self, pattern: str, tokens: Iterable[tuple[str, str]]) -> None:
        self.pattern = pattern
        self.tokens = tuple(tokens)

    def __repr__(self) -> str:
        return f"PathMatcher({self.pattern!r})"

    def match(self, segments: list[str]) -> bool:
        """Whether decoded path segments (``/a/b`` -> ``["a", "b"]``) match."""
        states = self._skip_empty({0})
        for segment in segments:
            states = self._skip_empty(self._step(states, segment))
            if not states:
                return False
        return len(self.tokens) in states

    def _step(self, states: set[int], segment: str) -> set[int]:
        moved = set()
        for index in states:
            if index == len(self.tokens):
                continue
            kind, text = self.tokens[index]
            if kind == _LITERAL:
                if segment == text:
                    moved.add(index + 1)
            elif segment:
                moved.add(index if kind == _REPEAT else index + 1)
        return moved

    def _skip_empty(self, states: set[int]) -> set[int]:
        # :name? and :name* may also take nothing. Tokens only move forward,
        # so one pass in ascending order reaches every such position.
        result = set(states)
        for index in range(min(states, default=len(self.tokens)), len(self.tokens)):
            if index in result and self.tokens[index][0] in (_MAYBE, _REPEAT):
                result.add(index + 1)
        return result


def compile_matcher(pattern: str) -> PathMatcher:
    """Compile a Next.js matcher pattern; ``ValueError`` names a bad one.

    Supported, each a whole segment: literal text, ``:name``, ``:name?``,
    ``:name*``, ``:name+``, and ``(.*)`` (the docs' other spelling of
    ``:path*``). Regex groups and mixed segments (``/a-:id``) are refused.
    """
    if not isinstance(pattern, str) or not pattern.startswith("/"):
        raise ValueError(f"middleware matcher {pattern!r}: a pattern is a string starting with '/'")
    if pattern == "/":
        return PathMatcher(pattern, ())
    # One trailing '/' is optional in Next.js ("/about/" matches /about), and
    # a request path never ends in one here: /about/ is redirected first.
    body = pattern[1:-1] if pattern.endswith("/") else pattern[1:]
    tokens: list[tuple[str, str]] = []
    for segment in body.split("/"):
        tokens.extend(_matcher_tokens(pattern, segment))
    return PathMatcher(pattern, tokens)


def _matcher_tokens(pattern: str, segment: str) -> list[tuple[str, str]]:
    if segment == "":
        raise ValueError(f"middleware matcher {pattern!r}: empty segment ('//')")
    if segment == "(.*)":
        return [(_REPEAT, "")]
    if segment.startswith(":"):
        modifier = segment[-1] if segment[-1] in "?*+" else ""
        name = segment[1 : len(segment) - len(modifier)]
        if not _MATCHER_NAME.match(name):
            raise ValueError(
                f"middleware matcher {pattern!r}: bad parameter {segment!r}; "
                "write :name, :name?, :name* or :name+ (letters, digits, _)"
            )
        if modifier == "+":
            return [(_ONE, name), (_REPEAT, name)]
        return [({"": _ONE, "?": _MAYBE, "*": _REPEAT}[modifier], name)]
    if any(char in _MATCHER_RESERVED for char in segment):
        raise ValueError(
            f"middleware matcher {pattern!r}: segment {segment!r} mixes text with parameter "
            "or regular-expression syntax; only whole-segment parameters are supported (for a "
            "negative lookahead such as /((?!api|static).*), leave matcher out and test "
            "request.path in middleware())"
        )
    try:
        # Paths are matched decoded (and in NFC), so a literal written escaped is decoded too.
        return [(_LITERAL, unicodedata.normalize("NFC", unquote_to_bytes(segment).decode("utf-8")))]
    except UnicodeDecodeError:
        raise ValueError(f"middleware matcher {pattern!r}: {segment!r} is not UTF-8 once decoded") from None


def compile_matchers(config: Any) -> Optional[list[PathMatcher]]:
    """A middleware module's ``config``; ``None`` means every request.

    ``matcher`` is a pattern, a list of them, or ``{"source": pattern}``
    objects; Next.js conditions (``has``, ``missing``) are refused, not ignored.
    """
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a dict, not {type(config).__name__}")
    unknown = sorted(str(key) for key in config if key != "matcher")
    if unknown:  # a misspelt "matchers" would otherwise run the middleware everywhere
        raise ValueError(f"config has {', '.join(map(repr, unknown))}: only 'matcher' is read")
    if "matcher" not in config:
        return None
    matcher = config["matcher"]
    entries = [matcher] if isinstance(matcher, (str, Mapping)) else matcher
    if not isinstance(entries, (list, tuple)) or not entries:
        raise ValueError(f"middleware matcher {matcher!r}: give a pattern or a non-empty list of them")
    compiled = []
    for entry in entries:
        if isinstance(entry, Mapping):
            if set(entry) != {"source"}:
                raise ValueError(f"middleware matcher {entry!r}: only {{'source': pattern}} is supported")
            entry = entry["source"]
        compiled.append(compile_matcher(entry))
    return compiled


@dataclasses.dataclass(frozen=True)
class Middleware:
    """``app/middleware.py``, loaded once when the ``App`` is created."""

    file: str
    function: Callable[..., Any]
    takes_request: bool
    matchers: Optional[tuple[PathMatcher, ...]]  # None: every request

    def applies(self, segments: list[str]) -> bool:
        if self.matchers is None:
            return True
        # Compared in NFC, as the literals are: a filesystem that ignores the
        # Unicode form (macOS) serves /cafe%CC%81.txt from café.txt, which the
        # matcher /café.txt must cover too.
        if not all(segment.isascii() for segment in segments):
            segments = [unicodedata.normalize("NFC", segment) for segment in segments]
        return any(matcher.match(segments) for matcher in self.matchers)

    def call(self, request: Request) -> Any:
        result = self.function(request) if self.takes_request else self.function()
        if inspect.isawaitable(result):
            result = _run_awaitable(result)
        return result


def _load_middleware(app_dir: str, loader: _ModuleLoader) -> Optional[Middleware]:
    """The app's middleware, or None without ``middleware.py``; every mistake
    in it (import error, no function, bad matcher) is a start-up error."""
    file = os.path.join(app_dir, "middleware.py")
    if not os.path.isfile(file):
        _warn_of_misplaced_middleware(app_dir)
        return None
    module = loader.load_module("middleware", file)
    function = getattr(module, "middleware", None)
    if not callable(function):
        also = " (Next.js 16 calls it proxy; here it is middleware)" if callable(getattr(module, "proxy", None)) else ""
        raise StartupError(f"{file} must define a function middleware(request){also}")
    try:
        matchers = compile_matchers(getattr(module, "config", None))
    except ValueError as exc:
        raise StartupError(f"{file}: {exc}") from None
    return Middleware(
        file=file,
        function=function,
        takes_request=_middleware_takes_request(function, file),
        matchers=None if matchers is None else tuple(matchers),
    )


def _warn_of_matchers_that_miss_the_routes_below(middleware: Middleware, tree: RouteTree) -> None:
    """``/api/admin`` in a matcher is that path only, as in Next.js's code (its docs
    call it a prefix), not a prefix as a Flask blueprint's ``url_prefix`` is: the
    routes below it that no other matcher covers are not guarded, silently."""
    for matcher in middleware.matchers or ():
        literals = [value for kind, value in matcher.tokens if kind == _LITERAL]
        if not literals or len(literals) != len(matcher.tokens):
            continue
        below = [endpoint.url for endpoint in tree.endpoints if len(endpoint.segments) > len(literals) and all(
            segment.kind == STATIC and segment.value == literal
            for segment, literal in zip(endpoint.segments, literals)
        ) and not middleware.applies(_sample_path(endpoint.segments))]
        if below:
            logger.warning("%s: the matcher %r matches that one path, not %s below it (Next.js's docs call "
                           "such a matcher a prefix; it is not, there either): write %r to run the middleware "
                           "on the paths below it too", middleware.file, matcher.pattern, min(below),
                           "/" + "/".join(literals) + "/:path*")


def _sample_path(segments: tuple[Segment, ...]) -> list[str]:
    """A path a route serves, as segments: each param filled with one segment."""
    sample: list[str] = []
    for segment in segments:
        if segment.kind == STATIC:
            sample.append(segment.value)
        else:
            sample.append("x")  # an optional catch-all too: the path must lie below the matcher's
    return sample


def _warn_of_misplaced_middleware(app_dir: str) -> None:
    """A middleware where Next.js keeps it (beside app/, or as Next.js 16's
    proxy) never runs here: the routes it was to guard would be open, silently."""
    parent = os.path.dirname(os.path.abspath(app_dir))
    python_files = [os.path.join(parent, "middleware.py"), os.path.join(parent, "proxy.py"),
                    os.path.join(app_dir, "proxy.py")]
    # A .py file there is a middleware only if it defines one (a project may keep
    # WSGI middleware classes in a middleware.py of its own); a .ts or .js always is.
    candidates = [file for file in python_files if _defines_a_middleware_function(file)]
    candidates += [os.path.join(folder, f"{name}.{ext}") for folder in (app_dir, parent)
                   for name in ("middleware", "proxy") for ext in ("ts", "js")]
    for candidate in candidates:
        if os.path.isfile(candidate):
            logger.warning("%s is not run: minirouter runs only %s (the app folder's middleware.py, with a "
                           "function middleware(request)), so the paths it guards are open",
                           candidate, os.path.join(app_dir, "middleware.py"))


def _warn_of_nested_middleware(file: str, app_dir: str) -> None:
    """A middleware.py in a folder below the app's (Flask's before_request of one
    blueprint, or Next.js 12's nested _middleware) never runs: the paths it was
    to guard would be open, silently."""
    if _defines_a_middleware_function(file):
        logger.warning("%s is not run: minirouter runs only %s, on the paths its config[\"matcher\"] selects, "
                       "so the paths this one guards are open", file, os.path.join(app_dir, "middleware.py"))


def _defines_a_middleware_function(file: str) -> bool:
    """Whether a Python file defines ``middleware`` or ``proxy`` at top level, read without importing it."""
    import ast

    # Only a regular file of a sensible size (a FIFO would block, a huge file stall the start).
    if not os.path.isfile(file) or os.path.getsize(file) > 1024 * 1024:
        return False
    try:
        with open(file, "rb") as source:
            tree = ast.parse(source.read())
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    names = set()
    for node in tree.body:  # def middleware, middleware = ..., from .auth import middleware
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(alias.asname or alias.name for alias in node.names)
    return bool(names & {"middleware", "proxy"})


@dataclasses.dataclass(frozen=True)
class _CallShape:
    """What a handler's or middleware's parameters ask of the call."""

    positional: int  # parameters that may be passed by position
    required: int  # of those, the ones without a default
    any_number: bool  # a *args
    required_keyword: bool  # a keyword-only parameter without a default: no call can pass it

    @staticmethod
    def of(function: Callable[..., Any]) -> Optional[_CallShape]:
        """None for a callable whose signature cannot be read (some built-ins)."""
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            return None
        positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        return _CallShape(
            positional=len(positional),
            required=sum(1 for p in positional if p.default is p.empty),
            any_number=any(p.kind == p.VAR_POSITIONAL for p in parameters),
            required_keyword=any(p.kind == p.KEYWORD_ONLY and p.default is p.empty for p in parameters),
        )


def _middleware_takes_request(function: Callable[..., Any], file: str) -> bool:
    shape = _CallShape.of(function)
    if shape is None:
        return True
    if shape.required > 1 or shape.required_keyword:
        raise StartupError(f"{file}: middleware() must take (request) or ()")
    return shape.positional > 0 or shape.any_number


def _change_request_headers(request: Request, changes: Mapping[str, Optional[str]]) -> None:
    """Apply ``request_headers={...}`` to what the route will read: a new
    ``request.headers`` (``headers()`` reads the same), and the cookies when
    the ``cookie`` header changed, and the body's type when ``content-type``
    did (in a copy of the environ: the server's own is left as it sent it)."""
    data = dict(request.headers.items())
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    request._headers = RequestHeaders(data)
    if "cookie" in changes:
        request._cookies = RequestCookies(parse_cookie_header(data.get("cookie", "")))
    if "content-type" in changes:  # json(), text() and form() read it from the environ: a copy of it
        request.environ = {**request.environ, "CONTENT_TYPE": data.get("content-type", "")}
        # A form the middleware parsed was read by the old type: read afresh, where
        # the body can still be read (a multipart form streamed it, keeping nothing).
        if request._body is not None or not request._body_consumed:
            request._form = None


def _cookie_header_after(cookie_header: str, set_cookies: list[str]) -> str:
    """The ``Cookie`` header a browser would send once it had these
    ``Set-Cookie`` lines: set cookies replaced or added, expired ones gone."""
    pairs: dict[str, str] = {}
    unread: list[str] = []  # pairs parse_cookie_header skips: kept as sent, claiming no name
    for pair in cookie_header.split(";"):
        text = pair.strip(" \t")
        read = _read_cookie_pair(pair)
        if read is None:
            if text:
                unread.append(text)
        elif read[0] not in pairs:  # the first of two same names is the one read
            pairs[read[0]] = text
    for line in set_cookies:
        if "=" not in line.partition(";")[0]:
            continue  # a nameless cookie (RFC 6265bis 5.7): it replaces no named one
        name, value = _set_cookie_pair(line)
        pairs.pop(name, None)
        if not _set_cookie_expired(line.partition(";")[2]):
            pairs[name] = f"{name}={value}"
    return "; ".join([*unread, *pairs.values()])


def _with_middleware_headers(response: Response, extra: Headers) -> Response:
    """The final response plus the headers of the middleware's ``next()``.

    The route's own headers win (in Next.js the middleware's do), but not a default the
    framework set (a file's Cache-Control); a cookie the route sets
    itself wins too; ``Vary`` values are merged, since a response that
    varies for either reason must say so. A ``Content-Length`` is left out:
    the middleware cannot know the length of the route's body (a stream
    keeps whatever length it carries, and a HEAD would say the wrong one).
    Works on a copy, like ``_with_cookies``.
    """
    merged = _copy_of(response)
    merged._middleware = None
    own_cookies = {_set_cookie_name(line) for line in response.headers.get_all("set-cookie")}
    # A default the route has since replaced with its own value is the route's.
    defaults = {key for key, value in response._default_headers.items() if response.headers.get(key) == value}
    own_names = {name.lower() for name, _ in response._header_items} - defaults
    for name, value in extra.raw():
        key = name.lower()
        if key == "content-length":
            continue
        if key == "set-cookie":
            if _set_cookie_name(value) not in own_cookies:
                merged.headers.append(name, value)
        elif key == "vary":
            merged.headers.set("Vary", _merge_vary(merged.headers.get_all("vary") + [value]))
        elif key in defaults:  # the framework's default gives way (the first value replaces it)
            merged.headers.delete(key)
            defaults = defaults - {key}
            merged.headers.append(name, value)
        elif key not in own_names:  # every value of it: Link, say, may come several times
            merged.headers.append(name, value)
    return merged


def _merge_vary(values: list[str]) -> str:
    """``Vary: Origin`` and ``Vary: Accept, origin`` -> ``Origin, Accept``."""
    merged: dict[str, str] = {}
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name:
                merged.setdefault(name.lower(), name)
    return ", ".join(merged.values())


# ---------------------------------------------------------------------------
# The route tree: the app folder is scanned once, route modules imported, and
# a trie of nodes built. A request never touches the filesystem to route.
# ---------------------------------------------------------------------------


class StartupError(Exception):
    """The app folder cannot be served as it is; the message names the files."""


# Segment kinds, in matching order at each level of the trie.
STATIC, SINGLE, CATCHALL, OPTIONAL = "static", "single", "catchall", "optional"
_PARAM_NAME = re.compile(r"[^\[\]./\\]+\Z")


@dataclasses.dataclass(frozen=True)
class Segment:
    kind: str  # STATIC, SINGLE, CATCHALL or OPTIONAL
    value: str  # the URL text for STATIC, the parameter name otherwise

    def pattern(self) -> str:
        """How the segment is written in a folder name (and in route tables)."""
        if self.kind == SINGLE:
            return f"[{self.value}]"
        if self.kind == CATCHALL:
            return f"[...{self.value}]"
        if self.kind == OPTIONAL:
            return f"[[...{self.value}]]"
        return self.value


def parse_segment(folder_name: str, folder: str) -> Segment:
    """Read a folder name: ``name``, ``[id]``, ``[...slug]`` or ``[[...slug]]``."""
    kind, name = STATIC, folder_name
    if folder_name.startswith("[[...") and folder_name.endswith("]]"):
        kind, name = OPTIONAL, folder_name[5:-2]
    elif folder_name.startswith("[...") and folder_name.endswith("]"):
        kind, name = CATCHALL, folder_name[4:-1]
    elif folder_name.startswith("[") and folder_name.endswith("]"):
        kind, name = SINGLE, folder_name[1:-1]
    elif "[" in folder_name or "]" in folder_name:
        raise StartupError(f"{folder}: malformed dynamic segment {folder_name!r}")
    if kind == STATIC:
        if folder_name[:3].upper() == "%5F":  # the escape for a leading underscore
            name = "_" + folder_name[3:]
        return Segment(STATIC, name)
    if not _PARAM_NAME.match(name):
        raise StartupError(f"{folder}: invalid parameter name in {folder_name!r}")
    return Segment(kind, name)


class Endpoint:
    """One URL of the app: a route module or a ``page.html``."""

    # Slots: every request reads an endpoint, and an app may have thousands.
    # The fields a request reads come first, and the GET handler has its own
    # (most requests are GETs): in a large app each object a request touches
    # is likely a trip to main memory.
    __slots__ = ("get_handler", "handlers", "arity", "dynamic", "last_param", "kind", "allow", "file", "url",
                 "segments", "module", "revalidate", "said_answers_depend_on_client")

    def __init__(
        self,
        *,
        url: str,
        file: str,
        kind: str,  # "route" or "page"
        segments: tuple[Segment, ...],
        handlers: dict[str, Callable[..., Any]],
        arity: dict[str, int],
        allow: str,
        module: Optional[types.ModuleType] = None,
        dynamic: str = "force-dynamic",  # route caching (see _cache_policy): this never caches
        revalidate: Optional[float] = None,
    ) -> None:
        self.url = url
        self.file = file
        self.kind = kind
        self.segments = segments
        # The name of a final [param] segment, for _Level.param.
        self.last_param = segments[-1].value if segments and segments[-1].kind == SINGLE else ""
        self.handlers = handlers
        self.get_handler = handlers.get("GET")
        self.arity = arity
        self.allow = allow
        self.module = module
        self.dynamic = dynamic
        self.revalidate = revalidate
        self.said_answers_depend_on_client = False  # logged once: see App._call_cached

    def __repr__(self) -> str:
        return f"Endpoint({self.url!r}, {self.file!r})"


@dataclasses.dataclass(frozen=True)
class RouteInfo:
    """A line of the route table (``App.route_table()``), for tools."""

    url: str
    file: str
    kind: str
    methods: tuple[str, ...]
    handlers: Mapping[str, Callable[..., Any]]
    params: list[tuple[str, str]]
    module: Optional[types.ModuleType]
    revalidate: Optional[float] = None
    dynamic: str = "force-dynamic"


_NO_CHILDREN: dict[str, Any] = {}


class _Node:
    """A trie node: children by kind, and the endpoint ending here, if any."""

    # Slots, the fields a request reads first, and the [param] child in its
    # own fields rather than a tuple: a request walks one node per segment,
    # and fewer, smaller objects per route keep a large app's hot path in
    # the CPU cache. For the same reason a node without static children
    # shares one empty dict (_NO_CHILDREN), which _insert never writes to.
    __slots__ = ("static", "single", "single_name", "endpoint", "single_file", "catchall", "optional")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = _NO_CHILDREN
        self.single: Optional[_Node] = None  # the [param] child
        self.single_name = ""  # its parameter name
        self.single_file = ""  # the first file that declared it, for errors
        self.catchall: Optional[tuple[str, Endpoint]] = None
        self.optional: Optional[tuple[str, Endpoint]] = None
        self.endpoint: Optional[Endpoint] = None


class _Level:
    """What one dict lookup finds for a path whose folders before the last
    segment are all static (``/comments`` for ``/comments/new`` and
    ``/comments/42``): the static routes by that last segment, and the route
    of a [param] that takes any other. Most requests are one of these, and
    in a large app every object a request touches may be a trip to main
    memory, where a walk down the trie makes one per segment."""

    __slots__ = ("static", "param")

    def __init__(self, static: dict[str, Endpoint], param: Optional[Endpoint]) -> None:
        self.static = static or _NO_CHILDREN
        self.param = param


def _allow_header(methods: Iterable[str]) -> str:
    """The methods a URL answers: its handlers, HEAD with GET, and OPTIONS."""
    allowed = set(methods) | {"OPTIONS"}
    if "GET" in allowed:
        allowed.add("HEAD")
    return ", ".join(sorted(allowed))


def _handler_arity(function: Callable[..., Any], method: str, file: str) -> int:
    """How many of (request, context) the handler takes: 0, 1 or 2."""
    shape = _CallShape.of(function)
    if shape is None:
        return 2
    if shape.required_keyword:
        raise StartupError(f"{file}: {method}() has a required keyword-only parameter")
    if shape.required > 2:
        raise StartupError(f"{file}: {method}() must take (request, context), (request) or ()")
    return 2 if shape.any_number else min(shape.positional, 2)


def _drop_stale_bytecode(source: str) -> None:
    """Remove the compiled copy of a .py file written before its last edit.
    Python trusts it while the source keeps its size and modification
    second, so an App built after an edit saved within that second (in this
    process or a later one) would run the old code."""
    try:
        cached = importlib.util.cache_from_source(source)
        edited = os.stat(source).st_mtime_ns
        # A source dated in the future (clock skew, an unpacked archive) cannot be judged.
        if os.stat(cached).st_mtime_ns < edited <= time.time_ns():
            os.remove(cached)
    except (OSError, NotImplementedError):
        pass  # none written, or no cache on this Python


def _drop_stale_bytecode_below(folder: str) -> None:
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [name for name in dirs if name != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                _drop_stale_bytecode(os.path.join(parent, name))


def _is_standard_module(name: str) -> bool:
    """Whether ``name`` is a top-level module of the standard library."""
    names: Optional[frozenset[str]] = getattr(sys, "stdlib_module_names", None)  # Python 3.10+
    if names is not None:
        return name in names
    # Python 3.9: look where the standard library lives, and nowhere else.
    if name in sys.builtin_module_names:
        return True
    import sysconfig

    stdlib = sysconfig.get_paths()["stdlib"]
    folders = [stdlib, os.path.join(stdlib, "lib-dynload"), sysconfig.get_paths()["platstdlib"]]
    return importlib.machinery.PathFinder.find_spec(name, folders) is not None


class _ModuleLoader:
    """Imports the app folder as a package, and each route as its member.

    Each ``App`` loads the folder afresh, so route modules and the modules
    they share (``from app.comments.data import store``) are new objects
    that all routes of this ``App`` see alike.
    """

    def __init__(self, app_dir: str) -> None:
        self.app_dir = app_dir
        self.package = os.path.basename(app_dir)
        parent = os.path.dirname(app_dir)
        if parent not in sys.path:
            sys.path.append(parent)
        self._forget_previous_package()
        self._package_module(self.package, app_dir, None)

    def _forget_previous_package(self) -> None:
        existing = sys.modules.get(self.package)
        if existing is None:
            if _is_standard_module(self.package):
                # Not imported yet, it would be the app from now on, for every module
                # of the process: `import csv` in a route would give the app folder.
                raise StartupError(
                    f"{self.app_dir}: the folder name {self.package!r} is the name of a module of "
                    "Python's standard library; rename the app folder"
                )
            return
        paths = [os.path.realpath(p) for p in getattr(existing, "__path__", None) or []]
        ours = getattr(existing, "__minirouter_app__", False)
        if not ours and os.path.realpath(self.app_dir) not in paths:
            script = getattr(existing, "__file__", None) or ""
            hint = "" if _is_standard_module(self.package) or not script.endswith(f"{self.package}.py") else (
                f", or that module (a server script named {self.package}.py: call it run.py)")
            raise StartupError(
                f"{self.app_dir}: the folder name {self.package!r} is already the name of "
                f"an imported module ({existing!r}); rename the app folder{hint}"
            )
        prefix = self.package + "."
        for name in [n for n in sys.modules if n == self.package or n.startswith(prefix)]:
            del sys.modules[name]

    def _package_module(self, name: str, folder: str, parent: Optional[str]) -> types.ModuleType:
        existing = sys.modules.get(name)
        if existing is not None:
            folders = list(getattr(existing, "__path__", None) or [])
            if not any(_same_file(other, folder) for other in folders):
                # a.b/ and a%2Eb/ both become the package a%2Eb
                raise StartupError(
                    f"{folder}: its package name {name} is already that of {folders[0] if folders else existing!r}; "
                    "rename one of the folders"
                )
            return existing
        init = os.path.join(folder, "__init__.py")
        spec: Optional[importlib.machinery.ModuleSpec]
        if os.path.isfile(init):
            spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[folder])
        else:
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [folder]
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        module.__minirouter_app__ = True  # type: ignore[attr-defined]
        sys.modules[name] = module
        if parent is not None:
            setattr(sys.modules[parent], name.rpartition(".")[2], module)
        if spec.loader is not None and os.path.isfile(init):
            self._execute(spec, module, init)
        return module

    @staticmethod
    def _module_part(folder_name: str) -> str:
        # A dot would split the dotted name; route folders like robots.txt need one.
        return folder_name.replace(".", "%2E")

    def load_route(self, file: str) -> types.ModuleType:
        relative = os.path.relpath(os.path.dirname(file), self.app_dir)
        parts = [] if relative == "." else relative.split(os.sep)
        name, folder = self.package, self.app_dir
        for part in parts:
            parent = name
            name = f"{name}.{self._module_part(part)}"
            folder = os.path.join(folder, part)
            self._package_module(name, folder, parent)
        return self._load(f"{name}.route", file)

    def load_module(self, name: str, file: str) -> types.ModuleType:
        """A module at the top of the app folder, such as ``app/middleware.py``."""
        return self._load(f"{self.package}.{name}", file)

    def _load(self, module_name: str, file: str) -> types.ModuleType:
        existing = sys.modules.get(module_name)
        if existing is not None and _same_file(getattr(existing, "__file__", None), file):
            return existing  # a route imported earlier in this build imported it: one module, run once
        spec = importlib.util.spec_from_file_location(module_name, file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        self._execute(spec, module, file)
        return module

    @staticmethod
    def _execute(spec: importlib.machinery.ModuleSpec, module: types.ModuleType, file: str) -> None:
        try:
            assert spec.loader is not None
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # exit() in a route file is a broken route, not a stop
            sys.modules.pop(spec.name, None)
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            raise StartupError(f"{file}: failed to import: {detail}") from exc


def _same_file(path: Optional[str], other: str) -> bool:
    # The strings first: realpath() costs a stat per folder, and start-up asks once per route.
    return path is not None and (path == other or os.path.realpath(path) == os.path.realpath(other))


def _route_handlers(module: types.ModuleType, file: str) -> tuple[dict[str, Callable[..., Any]], dict[str, int]]:
    handlers: dict[str, Callable[..., Any]] = {}
    arity: dict[str, int] = {}
    for method in HTTP_METHODS:
        function = getattr(module, method, None)
        if function is None:
            continue
        if not callable(function) or inspect.isclass(function):  # a class would answer with an instance
            raise StartupError(f"{file}: {method} must be a function")
        handlers[method] = function
        arity[method] = _handler_arity(function, method, file)
    misnamed = [method for method in HTTP_METHODS if _defines_function(module, method.lower())]
    for method in misnamed:
        logger.warning(
            "%s defines %s(); handlers are named in upper case: did you mean %s()?",
            file, method.lower(), method,
        )
    if not handlers:
        hint = f" (it defines {', '.join(m.lower() + '()' for m in misnamed)}: handlers are named in upper case)"
        raise StartupError(f"{file} defines no handler: define one of {', '.join(HTTP_METHODS)}"
                           f"{hint if misnamed else ''}")
    _warn_of_unused_segment_options(module, file)
    return handlers, arity


def _defines_function(module: types.ModuleType, name: str) -> bool:
    """Whether the module's own code defines a function of that name (not one it imported)."""
    function = getattr(module, name, None)
    return inspect.isfunction(function) and getattr(function, "__module__", None) == module.__name__


def _warn_of_params_as_arguments(
    file: str, handlers: Mapping[str, Callable[..., Any]], segments: tuple[Segment, ...]
) -> None:
    # Flask hands a handler its URL values as arguments; here the first argument
    # is the Request and the second the Context, so `def GET(request, id)` gets no
    # id, nor does `def GET(id)`.
    names = {segment.value for segment in segments if segment.kind != STATIC}
    if not names:
        return  # (most routes: no signature read, which start-up pays for per handler)
    for method, function in handlers.items():
        try:
            parameters = list(inspect.signature(function).parameters)
        except (TypeError, ValueError):
            continue
        if len(parameters) == 1 and parameters[0] in names and parameters[0] != "request":
            logger.warning("%s: %s(%s) is handed the request, not the %s: write %s(request, context) "
                           "and read context.params[%r]", file, method, parameters[0], parameters[0], method,
                           parameters[0])
        elif len(parameters) >= 2 and parameters[1] in names and parameters[1] != "context":
            logger.warning("%s: %s(request, %s) is handed the context, not the %s: write %s(request, context) "
                           "and read context.params[%r]", file, method, parameters[1], parameters[1], method,
                           parameters[1])


# Next.js route segment config that minirouter does not act on (it reads
# `dynamic` and `revalidate`): set in a route, a warning says it does nothing.
_UNUSED_SEGMENT_OPTIONS = ("dynamicParams", "fetchCache", "runtime", "preferredRegion", "maxDuration")


def _warn_of_unused_segment_options(module: types.ModuleType, file: str) -> None:
    for option in _UNUSED_SEGMENT_OPTIONS:
        if option in vars(module):
            logger.warning("%s sets %s, a Next.js option minirouter does not use: it has no effect "
                           "(only dynamic and revalidate do)", file, option)
    if "generateStaticParams" in vars(module):
        logger.warning("%s defines generateStaticParams, which minirouter does not call: every parameter "
                       "value is served when it is asked for", file)


def _warn_of_cached_reads_beside_writes(file: str, handlers: Mapping[str, Any]) -> None:
    # Next.js makes a route that exports another method than GET and HEAD dynamic, whatever
    # it sets (its hasNonStaticMethods); here its GET stays cached, so a read right after
    # the route's own POST is stale. (An OPTIONS changes nothing: no warning for it.)
    writes = [method for method in ("POST", "PUT", "PATCH", "DELETE") if method in handlers]
    if writes and "GET" in handlers:
        logger.warning("%s caches its GET answers and also exports %s: a GET after a change is served the "
                       "cached answer until it expires or the server restarts (Next.js would not cache this "
                       "route; put the writes in a route of their own, or set dynamic = \"force-dynamic\")",
                       file, ", ".join(writes))


# What a route or page file gets named by mistake (or kept from a Next.js
# project): never routed, so a warning says which name is.
_ROUTE_FILE_LOOKALIKES = {
    "routes.py": "route.py", "route.ts": "route.py", "route.js": "route.py", "route.tsx": "route.py",
    "page.htm": "page.html", "page.tsx": "page.html", "page.jsx": "page.html", "page.js": "page.html",
}


def _lookalike_of(name: str) -> Optional[str]:
    """``route.py`` for ``routes.py`` or ``Route.py``; None for any other name."""
    lower = name.lower()
    if lower in ("route.py", "page.html"):
        return lower if name != lower else None
    return _ROUTE_FILE_LOOKALIKES.get(lower)


class RouteTree:
    """Scans an app folder and answers which endpoint serves a path."""

    def __init__(self, app_dir: str) -> None:
        self.app_dir = app_dir
        self.root = _Node()
        self._arity_tables: dict[tuple[tuple[str, int], ...], dict[str, int]] = {}
        self.endpoints: list[Endpoint] = []
        self._loader = _ModuleLoader(app_dir)
        # Importing route files makes objects that nearly all stay alive;
        # CPython's collector would walk every one of them again each time
        # the heap grows by a quarter (a quarter of a 30,000-route start-up,
        # measured) to find little garbage, so it waits for the scan to end.
        collector_was_on = gc.isenabled()
        gc.disable()
        try:
            self._scan(app_dir, ())
        finally:
            if collector_was_on:
                gc.enable()
        # The routes found before the path is split, by the raw path of their static folders.
        self.levels = self._find_levels()

    # -- scanning ---------------------------------------------------------

    def _scan(self, folder: str, segments: tuple[Segment, ...]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as exc:
            raise StartupError(f"{folder}: cannot read the folder: {exc}") from exc
        names = {entry.name for entry in entries}
        route_file = os.path.join(folder, "route.py")
        page_file = os.path.join(folder, "page.html")
        if "page.html" in names and not os.path.isfile(page_file):
            names.discard("page.html")  # a folder named page.html is no page
        for entry in entries:
            if entry.name.endswith(".py"):
                _drop_stale_bytecode(entry.path)
            elif entry.name.startswith("_") and entry.name != "__pycache__":
                _drop_stale_bytecode_below(entry.path)  # _lib/ helpers the routes import
            meant = _lookalike_of(entry.name)
            if meant is not None and meant not in names:
                logger.warning("%s is not routed: only files named %s are", entry.path, meant)
            if entry.name in ("middleware.py", "proxy.py") and folder != self.app_dir:
                _warn_of_nested_middleware(entry.path, self.app_dir)
        if "route.py" in names:
            if "page.html" in names:
                logger.warning(
                    "%s and %s are in the same folder: the route handles the request",
                    route_file, page_file,
                )
            self._add_route(route_file, segments)
        elif "page.html" in names:
            self._add_page(page_file, segments)
        for entry in entries:
            if entry.name.startswith(("_", ".")):
                continue  # _private folders, __pycache__ and hidden folders
            try:
                if not entry.is_dir():
                    continue
            except OSError as exc:  # a symlink to itself, say
                raise StartupError(f"{entry.path}: cannot read the folder: {exc}") from exc
            if entry.is_symlink() and _links_to_an_ancestor(entry.path, folder, self.app_dir):
                raise StartupError(f"{entry.path}: a symlink to a folder above it would make URLs without end")
            name = entry.name
            if name + ".py" in names:
                # The folder is imported as a package of that name, and which
                # of the two an import then gets would depend on the order.
                raise StartupError(
                    f"{entry.path} and {entry.path}.py would both be the module {name!r}: rename one"
                )
            if name.startswith("(") and name.endswith(")"):
                self._scan(entry.path, segments)  # a route group adds no segment
            else:
                _warn_of_page_only_folder(entry.path, name)
                self._scan(entry.path, segments + (parse_segment(name, entry.path),))

    def _add_route(self, file: str, segments: tuple[Segment, ...]) -> None:
        self._check_segments(file, segments)
        module = self._loader.load_route(file)
        handlers, arity = _route_handlers(module, file)
        _warn_of_params_as_arguments(file, handlers, segments)
        # Routes whose handlers take the same arguments share one table: an
        # object fewer per route for a request to bring into the CPU cache.
        arity = self._arity_tables.setdefault(tuple(arity.items()), arity)
        dynamic, revalidate = _cache_policy(module, file)
        if dynamic != "force-dynamic":
            _warn_of_cached_reads_beside_writes(file, handlers)
        endpoint = Endpoint(
            url=_url_pattern(segments),
            file=file,
            kind="route",
            segments=segments,
            handlers=handlers,
            arity=arity,
            allow=_allow_header(handlers),
            module=module,
            dynamic=dynamic,
            revalidate=revalidate,
        )
        self._insert(endpoint)

    def _add_page(self, file: str, segments: tuple[Segment, ...]) -> None:
        self._check_segments(file, segments)
        endpoint = Endpoint(
            url=_url_pattern(segments),
            file=file,
            kind="page",
            segments=segments,
            handlers={},
            arity={},
            allow=_PAGE_METHODS,
        )
        self._insert(endpoint)

    @staticmethod
    def _check_segments(file: str, segments: tuple[Segment, ...]) -> None:
        seen: set[str] = set()
        for index, segment in enumerate(segments):
            if segment.kind == STATIC:
                continue
            if segment.value in seen:
                raise StartupError(f"{file}: the parameter {segment.value!r} appears twice in its path")
            seen.add(segment.value)
            if segment.kind in (CATCHALL, OPTIONAL) and index != len(segments) - 1:
                raise StartupError(
                    f"{file}: the catch-all {segment.pattern()} must be the last segment of the path"
                )

    # -- the trie ---------------------------------------------------------

    def _insert(self, endpoint: Endpoint) -> None:
        file = endpoint.file
        node = self.root
        for segment in endpoint.segments:
            if segment.kind == STATIC:
                if node.static is _NO_CHILDREN:
                    node.static = {}
                node = node.static.setdefault(segment.value, _Node())
            elif segment.kind == SINGLE:
                if node.single is None:
                    node.single, node.single_name, node.single_file = _Node(), segment.value, file
                elif node.single_name != segment.value:
                    raise StartupError(
                        f"{file}: [{segment.value}] and [{node.single_name}] ({node.single_file}) "
                        "are two names for the same parameter at the same level"
                    )
                node = node.single
            else:
                self._insert_catchall(node, segment, endpoint)
                return
        if node.endpoint is not None:
            raise StartupError(f"{file} and {node.endpoint.file} resolve to the same URL {endpoint.url}")
        if node.optional is not None:
            raise StartupError(
                f"{file} and {node.optional[1].file} both match {endpoint.url or '/'}: "
                "an optional catch-all already serves the folder's own URL"
            )
        node.endpoint = endpoint
        self.endpoints.append(endpoint)

    def _insert_catchall(self, node: _Node, segment: Segment, endpoint: Endpoint) -> None:
        file = endpoint.file
        same_kind = node.catchall if segment.kind == CATCHALL else node.optional
        other_kind = node.optional if segment.kind == CATCHALL else node.catchall
        if same_kind is not None:
            if same_kind[0] == segment.value:
                raise StartupError(f"{file} and {same_kind[1].file} resolve to the same URL {endpoint.url}")
            raise StartupError(
                f"{file}: {segment.pattern()} and {same_kind[1].url} ({same_kind[1].file}) "
                "are two names for the same parameter at the same level"
            )
        if other_kind is not None:
            raise StartupError(
                f"{file}: {segment.pattern()} beside {other_kind[1].url} ({other_kind[1].file}): "
                "a catch-all and an optional catch-all cannot share a level"
            )
        if segment.kind == OPTIONAL and node.endpoint is not None:
            raise StartupError(
                f"{file} and {node.endpoint.file} both match {node.endpoint.url}: "
                f"{segment.pattern()} also matches its parent folder"
            )
        if segment.kind == CATCHALL:
            node.catchall = (segment.value, endpoint)
        else:
            node.optional = (segment.value, endpoint)
        self.endpoints.append(endpoint)

    def _find_levels(self) -> dict[str, _Level]:
        """For ``levels``: under each path of static folders, the routes a
        lookup may take on sight of the last segment, when the path as a
        client sends it needs no decoding (ASCII, no '%'). A [param] route
        only where no static sibling has an optional catch-all: ``/d/x`` may
        be ``d/x/[[...rest]]``'s. The root route is the root's "" (``/``
        splits into "" and "")."""
        levels: dict[str, _Level] = {}
        pending = [("", self.root)]
        while pending:
            prefix, node = pending.pop()
            if not prefix.isascii() or "%" in prefix:
                continue  # a client sends it encoded: the trie decodes it
            static = {
                name: child.endpoint
                for name, child in node.static.items()
                if child.endpoint is not None and name.isascii() and "%" not in name
            }
            if node is self.root and node.endpoint is not None:
                static[""] = node.endpoint
            param = node.single.endpoint if node.single is not None else None
            if any(child.optional is not None for child in node.static.values()):
                param = None
            if static or param is not None:
                levels[prefix] = _Level(static, param)
            pending.extend((f"{prefix}/{name}", child) for name, child in node.static.items())
        return levels

    # -- lookup -----------------------------------------------------------

    def match(self, segments: list[str]) -> Optional[tuple[Endpoint, dict[str, Any]]]:
        """The endpoint for decoded path segments and its params, or None.

        Static beats ``[param]`` beats ``[...catchall]`` beats
        ``[[...optional]]`` at each level, backtracking on a dead end; each
        trie node is visited at most once, so the cost is bounded by the tree.
        """
        if "" in segments or "." in segments or ".." in segments:
            # An empty segment (a//b) is never a parameter value, nor is a dot segment,
            # raw or encoded: Next.js answers 404 there too, and a handler that opened
            # params["name"] as a file would have been handed "..".
            return None
        # First, without recursion, the path the search below tries first: at
        # each level the static child, else the [param]. It usually succeeds.
        node = self.root
        params: dict[str, Any] = {}
        for segment in segments:
            child = node.static.get(segment)
            if child is None:
                child = node.single
                if child is None:
                    break
                params[node.single_name] = segment
            node = child
        else:
            if node.endpoint is not None:
                return node.endpoint, params
        params = {}
        endpoint = _lookup(self.root, segments, 0, params)
        if endpoint is None:
            return None
        return endpoint, params


_INTERCEPTING_FOLDER = re.compile(r"\((?:\.{1,3}|\.\.\)\(\.\.)\)")


def _warn_of_page_only_folder(path: str, name: str) -> None:
    """Next.js's parallel-route slots (``@modal``) and intercepting routes
    (``(.)photo``) are page features, left out of its URLs: here such a folder
    is a URL segment like any other, which a Next.js developer would not guess."""
    if name.startswith("@"):
        feature = "a parallel-route slot, which Next.js leaves out of the URL"
    elif _INTERCEPTING_FOLDER.match(name):
        feature = "an intercepting route, a Next.js page feature"
    else:
        return
    logger.warning("%s: in Next.js this is %s; here the folder name is the URL segment %r", path, feature, name)


def _links_to_an_ancestor(link: str, folder: str, top: str) -> bool:
    """Whether the folder symlink ``link`` inside ``folder`` points back at it
    or above it, or at any folder on the way down from ``top``: through
    other symlinks, two links can lead into each other."""
    target = os.path.realpath(link)
    inside = target.rstrip(os.sep) + os.sep
    while True:
        here = os.path.realpath(folder)
        if here == target or here.startswith(inside):
            return True
        if len(folder) <= len(top):
            return False
        folder = os.path.dirname(folder)


def _lookup(node: _Node, segments: list[str], index: int, params: dict[str, Any]) -> Optional[Endpoint]:
    if index == len(segments):
        if node.endpoint is not None:
            return node.endpoint
        if node.optional is not None:
            params[node.optional[0]] = []
            return node.optional[1]
        return None
    segment = segments[index]
    child = node.static.get(segment)
    if child is not None:
        found = _lookup(child, segments, index + 1, params)
        if found is not None:
            return found
    if node.single is not None:
        found = _lookup(node.single, segments, index + 1, params)
        if found is not None:
            params[node.single_name] = segment
            return found
    rest = node.catchall or node.optional
    if rest is not None:
        params[rest[0]] = segments[index:]
        return rest[1]
    return None


def _url_pattern(segments: Iterable[Segment]) -> str:
    return "/" + "/".join(segment.pattern() for segment in segments)


# ---------------------------------------------------------------------------
# Files: page.html and the public/ folder, with validators and one Range.
# Nothing outside the folder is reachable: every segment is checked first.
# ---------------------------------------------------------------------------

FILE_CHUNK_SIZE = 64 * 1024
_PAGE_METHODS = "GET, HEAD, OPTIONS"


def _method_not_allowed(method: str, allow: str) -> Response:
    """The framework's 405, with the methods the URL answers. A HEAD's Content-Length
    must be GET's (RFC 9110 8.6), so its message names GET."""
    shown = "GET" if method == "HEAD" else method
    return _error_response(405, f"method {shown} is not allowed here", {"Allow": allow})


def _answer_to_a_page_method(method: str) -> Optional[Response]:
    """What a page, a file or the OpenAPI document answers to a method other
    than GET and HEAD (204 with Allow to OPTIONS, else 405); None for those two."""
    if method == "OPTIONS":
        return Response(None, 204, {"Allow": _PAGE_METHODS})
    if method not in ("GET", "HEAD"):
        return _method_not_allowed(method, _PAGE_METHODS)
    return None


def _public_path(public_dir: str, segments: list[str], exact_names: bool) -> Optional[str]:
    """The file in ``public_dir`` for these decoded segments, or None.

    Refused: empty, '.' and '..' segments and dotfiles, backslashes, NUL,
    colons (drive letters), anything whose real path leaves the folder, and
    symlinks that lead to a dotfile. With ``exact_names`` (a filesystem that
    ignores case), a name that is not on disk as written, case included.
    """
    if not segments or "" in segments:
        return None
    relative = "/".join(segments)  # checked whole: a path may have thousands of segments
    if relative.count("/") != len(segments) - 1:  # a '/' inside a segment (%2F)
        return None
    if "/." in "/" + relative or any(c in relative for c in "\\\0:"):
        return None
    joined = os.path.join(public_dir, relative)
    if not os.path.isfile(joined):
        return None  # one stat: realpath() would look at every folder of a long path first
    if exact_names and not _names_on_disk(public_dir, segments):
        return None
    candidate = os.path.realpath(joined)
    if not candidate.startswith(public_dir + os.sep):
        return None
    if any(part[0] == "." for part in candidate[len(public_dir) + 1 :].split(os.sep)):
        return None  # a symlink inside the folder that leads to a dotfile
    return candidate


def _names_on_disk(folder: str, segments: list[str]) -> bool:
    """Whether each segment is the name of an entry of its folder as written,
    case included. Where the filesystem ignores case (macOS, Windows), the
    middleware's matcher and the files would disagree: a matcher that guards
    /admin would not see /ADMIN/notes.txt, which finds public/admin/notes.txt."""
    for segment in segments:
        try:
            names = os.listdir(folder)
        except OSError:
            return False
        if segment not in names:
            # HFS+ keeps names decomposed (NFD), browsers send them composed (NFC):
            # the same name, case included, in two spellings of its accents.
            if segment.isascii() or unicodedata.normalize("NFC", segment) not in {
                    unicodedata.normalize("NFC", name) for name in names}:
                return False
        folder = os.path.join(folder, segment)
    return True


def _ignores_case(folder: str) -> bool:
    """Whether the filesystem of ``folder`` finds a name written in another case."""
    head, name = os.path.split(os.path.abspath(folder))
    while name and name.lower() == name.upper():  # no letter to change: ask about the parent
        head, name = os.path.split(head)
    if not name:
        return False
    try:
        return os.path.samefile(os.path.join(head, name), os.path.join(head, name.swapcase()))
    except OSError:
        return False


# The web's own types, fixed: the mimetypes module reads the host's
# /etc/mime.types (absent in slim containers) and, on Windows, the registry,
# so .js, .woff2 or .webp would be typed differently from host to host, and a
# browser refuses a module script that is not JavaScript.
_WEB_TYPES = {
    ".html": "text/html", ".htm": "text/html", ".css": "text/css", ".js": "text/javascript",
    ".mjs": "text/javascript", ".json": "application/json", ".map": "application/json",
    ".webmanifest": "application/manifest+json", ".svg": "image/svg+xml", ".wasm": "application/wasm",
    ".woff": "font/woff", ".woff2": "font/woff2", ".png": "image/png", ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp", ".avif": "image/avif",
    ".ico": "image/vnd.microsoft.icon", ".ttf": "font/ttf", ".otf": "font/otf", ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg", ".m4a": "audio/mp4", ".wav": "audio/wav", ".mp4": "video/mp4", ".webm": "video/webm",
    ".txt": "text/plain", ".md": "text/markdown",
    ".xml": "application/xml", ".pdf": "application/pdf",
}


def _content_type_for(path: str) -> str:
    guessed = _WEB_TYPES.get(os.path.splitext(path)[1].lower())
    encoding = None
    if guessed is None:
        guessed, encoding = mimetypes.guess_type(path)
    if guessed is None or encoding is not None:
        return "application/octet-stream"
    # (JSON has no charset parameter, RFC 8259 11: it is UTF-8.)
    if guessed.startswith("text/") or guessed in ("application/javascript", "image/svg+xml", "application/xml"):
        return f"{guessed}; charset=utf-8"
    return guessed


def _etag_matches(header: str, etag: str, strong: bool = False) -> bool:
    """Whether ``etag`` (a file's, always strong) is in an If-None-Match list
    (weak comparison) or, with ``strong``, an If-Match list (strong comparison:
    a W/ tag never matches); ``*`` matches any (RFC 9110 8.8.3.2, 13.1.1-2)."""
    if header.strip(" \t") == "*":
        return True
    for candidate in header.split(","):
        candidate = candidate.strip(" \t")
        if strong and candidate.startswith("W/"):
            continue
        if candidate.removeprefix("W/") == etag:
            return True
    return False


def _byte_range(header: str, size: int) -> Union[None, str, tuple[int, int]]:
    """One ``bytes=`` range as (first, last); "unsatisfiable"; or None to
    send the whole file (no, malformed or several ranges: RFC 9110 14.2)."""
    unit, _, spec = header.partition("=")
    # A list may hold empty elements, which do not count (RFC 9110 5.6.1.2):
    # "0-4," is one range. A comma left means several, which are never walked.
    spec = spec.strip(" \t,")
    if unit.strip(" \t").lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.partition("-")
    if not dash:
        return None
    if first_text == "":
        suffix = _ascii_int(last_text)
        if suffix is None:
            if not last_text or last_text.strip("0123456789"):
                return None
            suffix = size + 1  # too many digits to read, so longer than the file: the whole of it
        if suffix == 0:
            return "unsatisfiable"
        if size == 0:
            return None  # satisfiable (RFC 9110 14.1.1), but no byte to send: the whole, empty file
        return max(0, size - suffix), size - 1
    first = _ascii_int(first_text)
    if first is None:
        if first_text.strip("0123456789") or last_text.strip("0123456789"):
            return None  # malformed
        if last_text and (len(last_text.lstrip("0")), last_text.lstrip("0")) < (
                len(first_text.lstrip("0")), first_text.lstrip("0")):
            return None  # a last-pos below this first-pos: invalid (RFC 9110 14.1.1), as digits compare
        return "unsatisfiable"
    last = size - 1
    if last_text:
        parsed = _ascii_int(last_text)
        if parsed is None:
            if last_text.strip("0123456789"):
                return None
        else:
            last = min(parsed, size - 1)
            if parsed < first:
                return None
    if first >= size:
        return "unsatisfiable"
    return first, last


# The header of a file's answer that middleware may replace (see _file_response).
_FILE_CACHE_CONTROL = "public, max-age=0"
_FILE_DEFAULT_HEADERS: Mapping[str, str] = types.MappingProxyType({"cache-control": _FILE_CACHE_CONTROL})


def serve_file(environ: dict[str, Any], path: str, content_type: Optional[str] = None) -> Response:
    """A file answer with ETag, Last-Modified, 304 and a single Range."""
    try:
        # Opened first, and its validators taken from the open file: a deploy
        # replacing it meanwhile cannot pair the old ETag with the new bytes.
        file = open(path, "rb")
    except OSError:
        return _error_response(404, "not found")
    try:
        response = _file_answer(environ, path, content_type, file)
    except BaseException:
        file.close()
        raise
    if response._file is None:  # a 304, 412 or 416
        file.close()
    return response


def _file_answer(environ: dict[str, Any], path: str, content_type: Optional[str], file: IO[bytes]) -> Response:
    stat = os.fstat(file.fileno())
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    # RFC 9110 8.8.2.1: never a Last-Modified after now (a file from a host
    # whose clock ran ahead); nor a date HTTP cannot write.
    modified = min(max(stat.st_mtime, 0.0), time.time())
    file_headers = {
        "ETag": etag,
        "Last-Modified": http_date(modified),
        "Cache-Control": _FILE_CACHE_CONTROL,
    }
    precondition_answer = _precondition_answer(environ, etag, modified, file_headers)
    if precondition_answer is not None:
        return precondition_answer
    headers = Headers(file_headers)
    headers.set("Content-Type", content_type or _content_type_for(path))
    headers.set("Accept-Ranges", "bytes")
    size = stat.st_size
    first, last, status = 0, size - 1, 200
    # RFC 9110 14.2: Range is defined for GET only; a HEAD answers as the full GET would.
    range_header = environ.get("HTTP_RANGE") if environ.get("REQUEST_METHOD") == "GET" else None
    if_range = environ.get("HTTP_IF_RANGE")
    if range_header and (if_range is None or if_range.strip(" \t") in (etag, file_headers["Last-Modified"])):
        wanted = _byte_range(range_header, size)
        if wanted == "unsatisfiable":
            return _error_response(416, "range not satisfiable", {"Content-Range": f"bytes */{size}"})
        if isinstance(wanted, tuple):
            first, last = wanted
            status = 206
            headers.set("Content-Range", f"bytes {first}-{last}/{size}")
    response = _file_response(status, headers)
    response._body = None
    response._file = (file, first, max(0, last - first + 1))
    return response


def _precondition_answer(
    environ: dict[str, Any], etag: str, modified: float, file_headers: dict[str, str]
) -> Optional[Response]:
    """The 412 or 304 a file's conditional request gets, or None to send the file.
    RFC 9110 13.2.2: If-Match, else If-Unmodified-Since, then If-None-Match, else If-Modified-Since."""
    if_match = environ.get("HTTP_IF_MATCH")
    if if_match is not None:
        if not _etag_matches(if_match, etag, strong=True):
            return _error_response(412, "If-Match: the file's ETag is not among those given")
    else:
        unmodified_since = _parse_http_date(environ.get("HTTP_IF_UNMODIFIED_SINCE", "") or "")
        if unmodified_since is not None and int(modified) > unmodified_since:
            return _error_response(412, "If-Unmodified-Since: the file has changed since that date")
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    # RFC 9110 13.1.2-3: a 304 answers GET and HEAD only; another method gets
    # 412 for a matching If-None-Match, and If-Modified-Since is ignored.
    read_only = environ.get("REQUEST_METHOD", "GET") in ("GET", "HEAD")
    if if_none_match is not None:
        if _etag_matches(if_none_match, etag):
            if not read_only:
                return _error_response(412, "If-None-Match: the file's ETag is among those given")
            return _file_response(304, file_headers)
    elif read_only:
        since = _parse_http_date(environ.get("HTTP_IF_MODIFIED_SINCE", "") or "")
        if since is not None and int(modified) <= since:
            return _file_response(304, file_headers)
    return None


def _file_response(status: int, headers: HeaderInput) -> Response:
    """A file's answer, or its 304. Its ``Cache-Control: public, max-age=0``
    (what Next.js sends for public/) is only a default: middleware that guards
    the file may say ``private`` instead, and its value replaces this one
    (unless a route sending the file through serve_file() set its own)."""
    response = Response(None, status, headers)
    response._default_headers = _FILE_DEFAULT_HEADERS
    return response


class _FileBody:
    """``length`` bytes of ``file`` from ``offset``, where the server offers no
    ``wsgi.file_wrapper`` (or for a Range). A class, not a generator: the
    server's ``close()`` closes the file even when it never began to iterate."""

    __slots__ = ("_file", "_offset", "_length")

    def __init__(self, file: IO[bytes], offset: int, length: int) -> None:
        self._file, self._offset, self._length = file, offset, length

    def __iter__(self) -> Iterator[bytes]:
        file = self._file
        file.seek(self._offset)
        remaining = self._length
        while remaining > 0:
            chunk = file.read(min(FILE_CHUNK_SIZE, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
        file.close()

    def close(self) -> None:
        self._file.close()


# ---------------------------------------------------------------------------
# Route caching: `revalidate = N` and `dynamic = "force-static"` keep finished
# GET responses in memory per URL, so a hit never calls the handler.
# ---------------------------------------------------------------------------

_DYNAMIC_VALUES = ("auto", "force-dynamic", "force-static")


def _cache_policy(module: types.ModuleType, file: str) -> tuple[str, Optional[float]]:
    """(dynamic, seconds to keep or None for no expiry) from a route module.

    As in Next.js route segment config: ``force-dynamic`` never caches and
    wins over ``revalidate``; ``revalidate = 0`` never caches either;
    ``force-static`` caches until restart, or for ``revalidate`` seconds when
    both are set; ``revalidate = N`` alone caches for N seconds, and
    ``revalidate = False`` until restart. Anything else is a start-up error.
    """
    dynamic = getattr(module, "dynamic", "auto")
    if dynamic not in _DYNAMIC_VALUES:
        raise StartupError(f"{file}: dynamic must be one of {', '.join(_DYNAMIC_VALUES)}, not {dynamic!r}")
    revalidate = getattr(module, "revalidate", None)
    seconds: Optional[float] = None  # None: no expiry
    # bool is an int in Python (False == 0), so False is told apart first.
    if revalidate is not None and revalidate is not False:
        if isinstance(revalidate, bool) or not isinstance(revalidate, (int, float)) or not (
            0 <= revalidate < float("inf")
        ):
            raise StartupError(
                f"{file}: revalidate must be a number of seconds >= 0 or False, not {revalidate!r}"
            )
        seconds = float(revalidate)
    if dynamic == "force-static" and seconds == 0:
        # One keeps answers, with the request stripped; the other keeps none: which was meant?
        raise StartupError(f"{file}: dynamic = \"force-static\" keeps answers and revalidate = 0 keeps none; "
                           "remove one of them")
    if dynamic == "force-dynamic" or seconds == 0:
        return "force-dynamic", None
    if dynamic == "force-static":
        return "force-static", seconds
    if revalidate is None:
        return "force-dynamic", None
    if revalidate is False and (vars(module).get("dynamic") == "auto"
                                or any(option in vars(module) for option in _UNUSED_SEGMENT_OPTIONS)):
        # Beside the block's other defaults, it was most likely copied from Next.js's route segment
        # config block, whose docs list false as the default, as if it changed nothing. Written out,
        # it makes the GET static in Next.js too (its isStaticGenEnabled): here it keeps the
        # answers until restart. Set on its own, it is meant.
        logger.warning("%s sets revalidate = False: its GET answers are kept until restart (Next.js's docs "
                       "list false as the default, but written out it makes the GET static there too): delete "
                       "the line to leave them uncached", file)
    return "auto", seconds


@dataclasses.dataclass(frozen=True)
class CachedResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stored_at: float
    expires_at: Optional[float]  # None: kept until evicted or restart
    size: int = 0  # bytes it holds, body, headers and key, counted against CACHE_MAX_BYTES


# What the route cache keys on: the scheme, the server's name and port, the mount
# point (SCRIPT_NAME), the client's raw path, the route's, the query.
CacheKey = tuple[str, str, str, str, str, str, str]

# The bytes the route cache may hold in all. Its entries are counted too
# (App(cache_size=...)), but one entry may be as big as a URL and a body allow.
CACHE_MAX_BYTES = 64 * 1024 * 1024
# What an entry costs beyond its text: the entry, the key and header tuples,
# the string objects and the dict slot (about 500 bytes, measured on CPython).
_CACHE_ENTRY_OVERHEAD = 512


class ResponseCache:
    """A thread-safe LRU map from a URL (see ``CacheKey``) to a finished response.

    Bounded by entry count (``App(cache_size=...)``) and by the bytes held
    (``max_bytes``); expiry uses a monotonic clock, so a change of the wall
    clock neither expires nor revives entries.
    """

    def __init__(
        self, max_entries: int, clock: Callable[[], float] = time.monotonic, max_bytes: Optional[int] = None
    ) -> None:
        self.max_entries = max_entries
        # App(cache_max_bytes=...) sets it; CACHE_MAX_BYTES is the default.
        self.max_bytes = CACHE_MAX_BYTES if max_bytes is None else max_bytes
        self._bytes = 0
        self._clock = clock
        # A dict keeps insertion order: the first key is the least recently
        # used. One lock around every access, since a hit reorders the dict.
        self._entries: dict[Hashable, CachedResponse] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: Hashable) -> Optional[CachedResponse]:
        """The live entry for ``key``, now the most recently used; None on a miss."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.expires_at is not None and now >= entry.expires_at:
                self._remove(key)  # stale: the caller computes it afresh
                return None
            self._entries[key] = self._entries.pop(key)
            return entry

    def now(self) -> float:
        """The cache's clock: pass its reading from before the handler ran to ``put``."""
        return self._clock()

    def put(
        self, key: Hashable, response: Response, seconds: Optional[float], made_at: Optional[float] = None
    ) -> None:
        """Keep a response (its body must be in memory) for ``seconds``, or
        until evicted when None; the least recently used entry makes room.
        A live entry stays: of requests that missed together, each ran the
        handler, and the first answer to be kept is the one every later
        request gets (``force-static`` keeps the first answer).
        ``made_at``: when the handler was called. The answer's age counts
        from then (RFC 9111 4.2.3), so a handler slower than ``seconds``
        leaves nothing kept, rather than an answer older than it says."""
        assert response._body is not None
        now = self._clock()
        made_at = now if made_at is None else min(made_at, now)
        if seconds is not None and now >= made_at + seconds:
            return  # stale already: it would replace a newer answer, and say Age: 0
        headers = tuple(response.headers.raw())
        size = (len(response._body) + sum(len(name) + len(value) for name, value in headers) + _key_size(key)
                + _CACHE_ENTRY_OVERHEAD)
        if size > self.max_bytes // 8:
            return  # one answer may not crowd out most of the others
        entry = CachedResponse(
            status=response.status,
            headers=headers,
            body=response._body,
            stored_at=made_at,
            expires_at=None if seconds is None else made_at + seconds,
            size=size,
        )
        with self._lock:
            kept = self._entries.get(key)
            if kept is not None:
                if kept.expires_at is None or now < kept.expires_at:
                    return
                self._remove(key)
            self._entries[key] = entry
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._remove(next(iter(self._entries)))  # the least recently used

    def _remove(self, key: Hashable) -> None:
        self._bytes -= self._entries.pop(key).size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def response(self, entry: CachedResponse) -> Response:
        """A new Response for a hit, with ``Age``: seconds since it was made."""
        response = Response(None, entry.status, entry.headers)
        response._body = entry.body
        response.headers.set("Age", str(max(0, int(self._clock() - entry.stored_at))))
        return response


def _key_size(key: Hashable) -> int:
    # The app's keys are tuples of strings (CacheKey); other keys count as nothing.
    return sum(len(part) for part in key if isinstance(part, str)) if isinstance(key, tuple) else 0


def _cache_key(environ: dict[str, Any], client_path: str, route_path: str, query: str) -> CacheKey:
    """The raw paths, as sent (a decoded '/' or '?' would collide with the
    separators): the client's, which the handler may read as request.path,
    and the route's, which a middleware rewrite may have changed; the query;
    and the scheme, server name and port and mount point, which request.url holds: one
    client's must not reach another (gunicorn takes SCRIPT_NAME from a request
    header, and SERVER_NAME from Host when it listens on a Unix socket)."""
    return (environ.get("wsgi.url_scheme", "http"), environ.get("SERVER_NAME", ""), environ.get("SERVER_PORT", ""),
            environ.get("SCRIPT_NAME", ""), client_path, route_path, query)


def _is_cacheable(response: Response) -> bool:
    """Only a 200 with its body in memory, and never one that sets a cookie
    (one client's session must not reach another) or says not to store it."""
    if response.status != 200 or response._body is None or response._middleware is not None:
        return False
    if response.headers.has("set-cookie"):
        return False
    cache_control = response.headers.get("cache-control") or ""
    directives = {part.strip().split("=", 1)[0].lower() for part in cache_control.split(",")}
    return not directives & {"no-store", "private"}


_STATIC_ENVIRON_KEYS = frozenset({
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_URI", "RAW_URI",
    "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "SERVER_SOFTWARE",
})


def _handed_no_client_data(endpoint: Endpoint, method: str) -> bool:
    """Whether the handler was handed _static_request's request: a force-static
    route's GET (its other methods get the request itself)."""
    return method == "GET" and endpoint.dynamic == "force-static"


def _static_request(request: Request) -> Request:
    """The request a ``force-static`` handler sees: the same path, with no
    query, headers, cookies or body, as Next.js does, since its one answer
    is served to every client."""
    # Only what says which server and path this is: no HTTP_* header, and none
    # of what a server or a WSGI layer adds about the client (REMOTE_USER,
    # REMOTE_ADDR, SSL_CLIENT_*...).
    environ = {
        key: value
        for key, value in request.environ.items()
        if key in _STATIC_ENVIRON_KEYS or key.startswith("wsgi.")
    }
    environ["QUERY_STRING"] = ""
    environ["wsgi.input"] = io.BytesIO(b"")
    for key in ("REQUEST_URI", "RAW_URI"):
        if key in environ:
            # The path only: an absolute-form target (GET http://evil.example/s)
            # would name its host in request.url, as the Host header would.
            split = _split_target(environ[key])
            environ[key] = split[1] if split else environ[key].split("?", 1)[0]
    # request.url names the server's own host (SERVER_NAME), never the
    # client's: the one answer is served to every client.
    static = Request(environ, path=request.path, raw_path=request._raw_path, limits=request._limits)
    before_middleware = request._context_before_middleware
    # Without what the middleware set in the request's context (see Request._context_before_middleware).
    static._context = before_middleware.copy() if before_middleware is not None else request._context
    return static


# ---------------------------------------------------------------------------
# Access log: one line per request on "minirouter.access", silent until the
# program configures logging (the module attaches no handler and prints nothing).
# ---------------------------------------------------------------------------

access_logger = logging.getLogger("minirouter.access")


class _AccessLoggedBody:
    """A response body that counts its bytes and logs the request when the server closes it."""

    def __init__(self, body: Iterable[bytes], environ: dict[str, Any], status: list[str], started: float) -> None:
        self._body = body
        self._environ = environ
        self._status = status
        self._started = started
        self._sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        # The request ends when the server closes the body (PEP 3333), streamed bodies included.
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._log()

    def _log(self) -> None:
        _log_access(self._environ, self._status, self._sent, self._started)


def _log_access(environ: dict[str, Any], status_line: list[str], sent: int, started: float) -> None:
    method = str(environ.get("REQUEST_METHOD", "-"))
    if not (method.isascii() and method.isprintable()):  # servers refuse such methods; a WSGI layer may not
        method = quote(_environ_bytes(method), safe="")
    path = _loggable_path(environ)
    status = int(status_line[0].split(" ", 1)[0]) if status_line else 0
    elapsed_ms = (time.perf_counter() - started) * 1000
    access_logger.info(
        "%s %s %d %d %.1fms", method, path, status, sent, elapsed_ms,
        extra={"method": method, "path": path, "status": status, "bytes": sent, "duration_ms": elapsed_ms},
    )


def _loggable_path(environ: dict[str, Any]) -> str:
    # The path as the client sent it (still percent-encoded), so a %0A in a URL cannot forge a log line.
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    split = _split_target(raw) if isinstance(raw, str) and raw.isprintable() else None
    if split is not None:
        # The path alone, also of an absolute-form target (http://host/path); raw
        # non-ASCII (a wsgiref target) percent-encoded, as PATH_INFO's is below.
        return split[1] if split[1].isascii() else quote(_environ_bytes(split[1]), safe=_PATH_CHARS + "%")
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    return quote(_environ_bytes(path), safe=_PATH_CHARS)


def _call_with_access_log(
    app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]],
    environ: dict[str, Any],
    start_response: StartResponse,
) -> Iterable[bytes]:
    started = time.perf_counter()
    status: list[str] = []
    length: list[str] = []

    def recording_start_response(status_line: str, header_list: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status[:] = [status_line]  # a second call (with exc_info) replaces the first
        length[:] = [value for name, value in header_list if name.lower() == "content-length"]
        if exc_info is None:
            return start_response(status_line, header_list)
        return start_response(status_line, header_list, exc_info)

    body = app(environ, recording_start_response)
    file_wrapper = environ.get("wsgi.file_wrapper")
    if isinstance(file_wrapper, type) and type(body) is file_wrapper and length:
        # Wrapped, the server would no longer know it as its own file (waitress
        # checks the exact class) and would not send it the fast way; logged
        # now, with the length the server will send.
        _log_access(environ, status, int(length[0]), started)
        return body
    return _AccessLoggedBody(body, environ, status, started)


# ---------------------------------------------------------------------------
# The App: the WSGI callable. One pass per request: environ -> Request ->
# middleware -> route lookup -> handler -> Response -> start_response.
# ---------------------------------------------------------------------------


_METHOD_SET = frozenset(HTTP_METHODS)


class _ThreadLoop:
    """This thread's event loop, closed when the thread ends (and its
    thread-local storage, which holds the only reference, goes away)."""

    __slots__ = ("loop",)

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        if not self.loop.is_closed():
            self.loop.close()


# Thread-local, so no two threads share a loop; kept between requests, since
# making a loop per request costs more than most handlers (see _run_awaitable).
_event_loops = threading.local()


def _close_main_thread_loop() -> None:
    # The main thread's loop (TestClient, a script) would otherwise be closed by
    # _ThreadLoop.__del__ during interpreter finalization, where 3.13's asyncio
    # debug mode (python -X dev) fails with "sys.meta_path is None".
    holder = getattr(_event_loops, "holder", None)
    if holder is not None and not holder.loop.is_closed():
        holder.loop.close()


atexit.register(_close_main_thread_loop)


def _thread_loop() -> asyncio.AbstractEventLoop:
    holder = getattr(_event_loops, "holder", None)
    if holder is None or holder.loop.is_closed():
        holder = _event_loops.holder = _ThreadLoop()
    return holder.loop


def _run_awaitable(awaitable: Any, loop: Optional[asyncio.AbstractEventLoop] = None) -> Any:
    """Run an ``async def`` handler to completion on this thread's event loop
    (or on ``loop``, the one an async body's task belongs to).

    One loop per server thread, reused, because creating a loop per request
    costs more than most handlers. The task copies the current context, so
    ``headers()`` and ``cookies()`` work inside it.
    """
    if loop is None:
        loop = _thread_loop()
    try:
        if _loop_running_here():
            return _run_beside_running_loop(loop, awaitable)
        return loop.run_until_complete(awaitable)
    except asyncio.CancelledError as exc:
        # A BaseException since Python 3.8, which would pass every handler of
        # errors and leave the client without an answer: as a RuntimeError it
        # is the logged 500 that any other failure of a handler is.
        raise RuntimeError("the awaited task was cancelled") from exc
    except Exception as exc:
        only = _only_http_error(exc)
        if only is None:
            raise
        raise only from exc


# BaseExceptionGroup is Python 3.11+; before it there is no group to look into
# (isinstance(x, ()) is False).
_EXCEPTION_GROUP: Any = getattr(builtins, "BaseExceptionGroup", ())


def _only_http_error(error: BaseException) -> Optional[HTTPError]:
    """The one HTTPError inside an exception group (Python 3.11's TaskGroup wraps
    a not_found() or redirect() raised in a child task), else None."""
    while isinstance(error, _EXCEPTION_GROUP) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error if isinstance(error, HTTPError) else None


def _loop_running_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run_beside_running_loop(loop: asyncio.AbstractEventLoop, awaitable: Any) -> Any:
    """``loop.run_until_complete(awaitable)`` on a helper thread while this one
    waits, in this context: a thread whose own event loop is running (an
    ``async def`` test calling ``TestClient``, a notebook) cannot run another.
    The loop still serves one thread at a time. When the running loop is that
    very loop (an async handler calling the app in-process), the helper runs
    the awaitable on a loop of its own."""
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            runner = _thread_loop() if loop.is_running() else loop
            outcome.append((True, runner.run_until_complete(awaitable)))
        except BaseException as exc:  # raised again below, in the thread that asked
            outcome.append((False, exc))

    helper = threading.Thread(target=contextvars.copy_context().run, args=(run,), name="minirouter-await")
    helper.start()
    helper.join()
    completed, value = outcome[0]
    if not completed:
        raise value
    return value


_STATUS_LINES = {
    status.value: f"{status.value} {_RFC_9110_PHRASES.get(status.value, status.phrase)}"
    for status in http.HTTPStatus
}


# The final statuses a handler's Response may have, checked without a call.
_FINAL_STATUSES = frozenset(status for status in _STATUS_LINES if status >= 200)

# The statuses whose responses carry a body: the fast path of App._send.
_BODY_STATUS_LINES = {
    status: line for status, line in _STATUS_LINES.items() if status >= 200 and status not in (204, 205, 304)
}


def _status_line(status: int) -> str:
    line = _STATUS_LINES.get(status)
    return line if line is not None else f"{status} {_reason(status)}"


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive whole number, not {value!r}")
    return int(value)  # an int subclass becomes a plain int


def _bool_option(name: str, value: Any) -> bool:
    # Checked: a string such as "false" would otherwise turn the option on.
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, not {value!r}")
    return value


def _host_name(authority: str) -> str:
    """The name in ``host[:port]``, lower-case, without its port or a final
    dot: ``Example.COM.:8000`` is ``example.com``, ``[::1]:80`` is ``[::1]``."""
    if authority.startswith("["):  # an IPv6 address, whose own colons are no port
        end = authority.find("]")
        return (authority[: end + 1] if end != -1 else authority).lower()
    return authority.partition(":")[0].lower().rstrip(".")


# How many refused host names are logged, each once: a scan sending a new name
# with each request would otherwise write a line per request.
REFUSED_HOSTS_LOGGED = 32


class _AllowedHosts:
    """``App(allowed_hosts=[...])``: names as given (``example.com``,
    ``[::1]``), and ``.example.com`` for that name and every name under it."""

    def __init__(self, hosts: Iterable[str], trust_forwarded: bool = False) -> None:
        self.trust_forwarded = trust_forwarded  # X-Forwarded-Host is checked, and Host is the proxy's
        if isinstance(hosts, (str, bytes)):
            raise ValueError(f"allowed_hosts must be a list of host names, not one string: [{hosts!r}]")
        self.names: set[str] = set()
        suffixes = []
        for host in hosts:
            name = host.lower().rstrip(".") if isinstance(host, str) else ""
            bare = name[1:] if name.startswith(".") else name
            if not _VALID_HOST.match(bare) or _host_name(bare) != bare:  # empty, a port, not a host
                hint = ("; to serve any host, leave allowed_hosts out (None)" if host == "*" else
                        "; for a name and its subdomains write '.example.com'"
                        if isinstance(host, str) and host.startswith("*.") else "")
                raise ValueError(f"allowed_hosts holds {host!r}, which is no host name: give names without "
                                 f"scheme, port or '*' ('example.com', '.example.com' for it and its "
                                 f"subdomains, '[::1]'){hint}")
            self.names.add(bare)
            if name.startswith("."):
                suffixes.append(name)
        self.suffixes = tuple(suffixes)
        self.logged_refusals: set[str] = set()

    def check(self, environ: dict[str, Any]) -> None:
        """400 unless the request names one of these hosts (or none: an HTTP/1.0
        client, whose answer names the server's own SERVER_NAME)."""
        host = _named_host(environ, self.trust_forwarded)
        if host:
            self._check_host(host, environ)
        sent = environ.get("HTTP_HOST")
        if sent and sent != host and not self.trust_forwarded:
            # An absolute-form target names the host request.url uses; Host is still
            # what headers() hands the handler (a reset link built from it, say).
            self._check_host(sent)

    def _check_host(self, host: str, named_in: Optional[dict[str, Any]] = None) -> None:
        """``named_in``: the environ, when ``host`` is the one it names (which header
        or target it came from is then worked out for the 400); else it is ``Host``."""
        name = _host_name(host)
        if not _VALID_HOST.match(host) or name.startswith(".") or ".." in name:
            # "localhost:@evil.com" would pass as localhost
            source = _host_source(named_in, self.trust_forwarded) if named_in is not None else "Host header"
            raise HTTPError(400, f"invalid {source}")
        if name not in self.names and not (self.suffixes and name.endswith(self.suffixes)):
            self._log_refusal(_shown(name))
            raise HTTPError(400, f"the host {_shown(name)} is not one this app serves (allowed_hosts)")

    def _log_refusal(self, name: str) -> None:
        # Said in the server's log too: whoever chose the name (an /etc/hosts entry, a
        # container's, a tunnel's) may never have set allowed_hosts: `serve` did.
        logged = self.logged_refusals
        if name in logged or len(logged) > REFUSED_HOSTS_LOGGED:
            return
        logged.add(name)
        if len(logged) > REFUSED_HOSTS_LOGGED:
            logger.warning("refused requests for %d host names; further ones are not logged", REFUSED_HOSTS_LOGGED)
            return
        logger.warning("refused a request for the host %s: to serve it, add it to allowed_hosts "
                       "(--allowed-host %s on the command line; said once per name)", name, name)


def _overlaps(folder: str, other: str) -> bool:
    """Whether two real paths are the same folder, or one holds the other."""
    return folder == other or other.startswith(folder.rstrip(os.sep) + os.sep) or folder.startswith(
        other.rstrip(os.sep) + os.sep)


def _openapi_url(url: Optional[str]) -> Optional[str]:
    # Compared with the decoded request path, which never ends in "/" (that is a 308 first).
    if url is not None and (
        not isinstance(url, str) or not url.startswith("/") or (len(url) > 1 and url.endswith("/")) or "%" in url
        or "//" in url
    ):
        raise ValueError(
            f"openapi_url must be a path like '/openapi.json', without %-escapes or empty segments, not {url!r}"
        )
    return url


class App:
    """A WSGI application serving the ``route.py`` tree under ``app_dir``.

    Limits, each with its own 413 message:

    - ``max_body_size``: the whole request body (checked against
      Content-Length before the handler runs);
    - ``max_form_parts``: fields plus files in one form;
    - ``max_form_memory``: one non-file form field, held in memory.

    ``spool_size`` refuses nothing: a file part above it (or above
    ``max_form_memory``, if smaller) goes to a temporary file.

    ``public_dir`` defaults to ``public/`` beside the app folder.
    ``trust_forwarded`` makes ``request.url`` use ``X-Forwarded-Proto`` and
    ``X-Forwarded-Host``: turn it on only behind a proxy that sets them.
    ``cache_size`` and ``cache_max_bytes`` bound the route cache's answers
    and the bytes they hold (``CACHE_MAX_BYTES`` by default).
    ``openapi_url`` (e.g. ``"/openapi.json"``) serves the OpenAPI document
    of the routes at that path; off by default. ``allowed_hosts`` (e.g.
    ``["example.com", ".example.com"]``) answers 400 to a request for any
    other host: a DNS-rebinding page, a forged ``Host`` in ``request.url``.
    """

    def __init__(
        self,
        app_dir: Union[str, os.PathLike] = "app",  # type: ignore[type-arg]
        *,
        debug: bool = False,
        public_dir: Union[str, os.PathLike, None] = None,  # type: ignore[type-arg]
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_form_parts: int = DEFAULT_MAX_FORM_PARTS,
        max_form_memory: int = DEFAULT_MAX_FORM_MEMORY,
        spool_size: int = DEFAULT_SPOOL_SIZE,
        cache_size: int = DEFAULT_CACHE_SIZE,
        cache_max_bytes: Optional[int] = None,
        trust_forwarded: bool = False,
        openapi_url: Optional[str] = None,
        allowed_hosts: Optional[Iterable[str]] = None,
    ) -> None:
        self.app_dir = os.path.abspath(os.fspath(app_dir))
        if not os.path.isdir(self.app_dir):
            raise StartupError(f"{self.app_dir}: the app folder does not exist")
        self.debug = _bool_option("debug", debug)
        self.trust_forwarded = _bool_option("trust_forwarded", trust_forwarded)
        self.allowed_hosts = None if allowed_hosts is None else _AllowedHosts(allowed_hosts, self.trust_forwarded)
        self.limits = Limits(
            max_body_size=_positive_int("max_body_size", max_body_size),
            max_form_parts=_positive_int("max_form_parts", max_form_parts),
            max_form_memory=_positive_int("max_form_memory", max_form_memory),
            spool_size=_positive_int("spool_size", spool_size),
        )
        self.cache_size = _positive_int("cache_size", cache_size)
        if cache_max_bytes is not None:  # None: minirouter.CACHE_MAX_BYTES, read when the cache is made
            cache_max_bytes = _positive_int("cache_max_bytes", cache_max_bytes)
        self.public_dir = self._find_public_dir(public_dir)
        # Asked once: there, each file's name is checked as written (see _names_on_disk).
        self._public_ignores_case = self.public_dir is not None and _ignores_case(self.public_dir)
        self.tree = RouteTree(self.app_dir)
        if not self.tree.endpoints:  # a wrong folder, most likely: say so before every request is a 404
            logger.warning("%s has no route.py or page.html: only public/ files are served", self.app_dir)
        self.middleware = _load_middleware(self.app_dir, self.tree._loader)
        if self.middleware is not None:
            _warn_of_matchers_that_miss_the_routes_below(self.middleware, self.tree)
        self.cache = ResponseCache(self.cache_size, max_bytes=cache_max_bytes)
        self._serve_openapi_at(_openapi_url(openapi_url))
        if debug:
            for line in format_route_table(self.route_table()):
                logger.info("route %s", line)

    def _serve_openapi_at(self, url: Optional[str]) -> None:
        """Build the OpenAPI document once, for ``openapi_url``: the tree cannot
        change while the app runs, so neither can the document."""
        self.openapi_url = url
        # Compared with the decoded segments of the path being routed, as the
        # middleware's matcher sees them: /a%2Fopenapi.json is one segment.
        self._openapi_segments = url[1:].split("/") if url is not None and url != "/" else []
        self._openapi_json: Optional[bytes] = None
        if url is None:
            return
        # Its segments as they are: it is written decoded (a raw path would be percent-decoded).
        shadowed = self.tree.match(self._openapi_segments)
        if shadowed is not None:
            raise StartupError(f"openapi_url {url} is also the URL of {shadowed[0].file}")
        self._openapi_json = jsonlib.dumps(openapi_document(self), ensure_ascii=False).encode("utf-8")

    def _find_public_dir(self, public_dir: Union[str, os.PathLike, None]) -> Optional[str]:  # type: ignore[type-arg]
        """The folder of static files: ``public_dir``, else ``public/`` beside the app
        folder. Never one that holds the app folder or lies inside it, which would
        serve the route files' source."""
        if public_dir is None:
            default = os.path.join(os.path.dirname(self.app_dir), "public")
            if not os.path.isdir(default):
                return None
            path = os.path.realpath(default)
            if _overlaps(path, os.path.realpath(self.app_dir)):  # an app folder itself named public/
                logger.warning("%s holds the app folder: its files are not served as public/ files (the "
                               "routes' source would be)", path)
                return None
            return path
        if not isinstance(public_dir, (str, os.PathLike)) or not os.fspath(public_dir):
            raise ValueError(f"public_dir must be the path of a folder, not {public_dir!r}")
        path = os.path.realpath(os.fspath(public_dir))
        if not os.path.isdir(path):
            raise StartupError(f"{path}: the public folder does not exist")
        if _overlaps(path, os.path.realpath(self.app_dir)):
            raise StartupError(f"{path}: the public folder holds the app folder or lies inside it, "
                               "whose source it would serve")
        return path

    def route_table(self) -> list[RouteInfo]:
        """Every URL the app serves, in URL order (for ``routes`` and tools)."""
        table = []
        for endpoint in sorted(self.tree.endpoints, key=lambda e: e.url):
            methods = tuple(endpoint.allow.split(", "))
            params = [(s.value, s.kind) for s in endpoint.segments if s.kind != STATIC]
            table.append(
                RouteInfo(
                    url=endpoint.url,
                    file=endpoint.file,
                    kind=endpoint.kind,
                    methods=methods,
                    handlers=dict(endpoint.handlers),
                    params=params,
                    module=endpoint.module,
                    revalidate=endpoint.revalidate,
                    dynamic=endpoint.dynamic,
                )
            )
        return table

    # -- the WSGI entry point ---------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # Each request in a context of its own, as Next.js gives each one its own
        # AsyncLocalStorage: a context variable that the middleware or a handler
        # sets (the user it found) is never still set for the server thread's next request.
        # Its streamed body, read after the app has returned, runs in it again (see _StreamedBody).
        request_context = contextvars.copy_context()
        # Checked per request so logging can be turned on after the app is built.
        if access_logger.isEnabledFor(logging.INFO):
            return request_context.run(self._handle_with_access_log, environ, start_response, request_context)
        # App._handle, not self._handle: a bound method made per request costs more.
        return request_context.run(App._handle, self, environ, start_response, request_context)

    def _handle_with_access_log(
        self, environ: dict[str, Any], start_response: StartResponse, request_context: contextvars.Context
    ) -> Iterable[bytes]:
        # Its own method: a closure in __call__ would turn its variables into cells on every call.
        return _call_with_access_log(lambda env, respond: App._handle(self, env, respond, request_context),
                                     environ, start_response)

    def _handle(
        self, environ: dict[str, Any], start_response: StartResponse, request_context: contextvars.Context
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        request: Optional[Request] = None
        try:
            if method not in _METHOD_SET:
                raise HTTPError(501, f"method {_shown(method, 32)} is not implemented")
            path, raw_path = _request_path(environ)
            request = _request_for_app(environ, method, path, raw_path, self.limits, self.trust_forwarded,
                                       request_context)
            if self.allowed_hosts is not None:
                self.allowed_hosts.check(environ)
            if environ.get("CONTENT_LENGTH"):  # before any answer: a redirect, the middleware's, a 404
                request._check_body_size()
            if raw_path[-1] == "/" and raw_path != "/":
                response = self._redirect_to_clean_path(environ, raw_path)
            elif self.middleware is None:
                response = self._route(request, raw_path)
            else:
                response = self._run_middleware(self.middleware, request)
        except HTTPError as exc:  # a malformed path or Content-Length, an unknown method, a body too
            # large, a host not in allowed_hosts, a request target of *
            response = exc.to_response()
        except Exception:
            logger.exception("error while serving %s %s", method, _loggable_path(environ))
            response = self._internal_error()
        return self._send(environ, start_response, method, request, response)

    @staticmethod
    def _redirect_to_clean_path(environ: dict[str, Any], raw_path: str) -> Response:
        """``/comments/`` answers 308 to ``/comments``, and ``/comments//4``
        to ``/comments/4`` (as Next.js and Flask do), keeping the query."""
        # Never //host (nor /\host, which browsers read as //host): that Location would leave the site.
        # Nor through SCRIPT_NAME: _base_path sees to that.
        path = "/" + _without_empty_segments(raw_path).lstrip("/\\")
        location = _base_path(environ) + _url_from_environ(path)
        query = _url_from_environ(environ.get("QUERY_STRING", ""))
        return Response.redirect(f"{location}?{query}" if query else location, 308)

    # -- middleware, then the route -----------------------------------------

    def _run_middleware(self, middleware: Middleware, request: Request) -> Response:
        """Run ``app/middleware.py`` where its matcher applies, then the route
        (the same path, or the one it rewrote to) unless it answered itself."""
        raw_path = request._raw_path
        segments = _path_segments(raw_path)
        if not middleware.applies(segments):
            return self._route(request, raw_path, segments)
        request._context_before_middleware = contextvars.copy_context()
        outcome = self._call_middleware(middleware, request)
        if outcome._middleware is None:  # a redirect, a 401...: the route never runs
            if outcome.status == 405 and not outcome.headers.has("allow"):
                refused = "GET" if request.method == "HEAD" else request.method  # as a GET's refusal
                return _with_allow(outcome, self._methods_served(segments), refused)
            return outcome
        action, rewrite_path, header_changes = outcome._middleware
        if header_changes:
            _change_request_headers(request, header_changes)
        set_cookies = outcome.headers.get_all("set-cookie")
        if set_cookies:  # the route reads the cookies the middleware set, as the browser will send them
            cookie_header = _cookie_header_after(request.headers.get("cookie", ""), set_cookies)
            _change_request_headers(request, {"cookie": cookie_header or None})  # none left: no header
        if action == "rewrite":
            assert rewrite_path is not None
            raw_path, _, query = rewrite_path.partition("?")
            raw_path = raw_path.rstrip("/") or "/"  # /b/ is /b, as a client's /b/ is redirected there
            segments = _path_segments(raw_path)
            if query:
                request._search_params = SearchParams(parse_query(query))
        response = self._route(request, raw_path, segments)
        return _with_middleware_headers(response, outcome.headers)

    def _call_middleware(self, middleware: Middleware, request: Request) -> Response:
        """The middleware's answer as a Response; ``None`` is ``Response.next()``.
        Errors are handled as a route's are: HTTPError's status, else a 500."""
        raised = False
        token = _current_request.set(request)
        try:
            result = middleware.call(request)
            if result is None:
                result = Response.next()
            elif isinstance(result, (dict, list)):
                result = Response.json(result)
            elif not isinstance(result, Response):
                problem = (f"middleware returned {type(result).__name__}; return None, a dict or list, Response.next(), "
                           "Response.rewrite(path) or a Response")
                logger.error("%s: %s", middleware.file, problem)
                result, raised = self._internal_error(problem), True
            elif not _valid_status(result.status):
                _close_body(result)  # never sent: a file or stream is let go now
                problem = f"middleware returned status {result.status!r} (must be an int from 200 to 599)"
                logger.error("%s: %s", middleware.file, problem)
                result, raised = self._internal_error(problem), True
        except HTTPError as exc:
            result, raised = self._raised_answer(exc, f"{middleware.file}: middleware")
        except (Exception, SystemExit, GeneratorExit):
            logger.exception("%s: middleware raised", middleware.file)
            result = self._internal_error()
            raised = True
        finally:
            _current_request.reset(token)
        if result._stream is not None and not raised:
            # Started out of the request's context, as a route's stream is: a body
            # runs after the middleware has returned, where headers() and cookies() raise.
            result, raised = self._start_stream(result, request, f"{middleware.file}: middleware")
        jar, request._jar = request._jar, None  # the route starts with its own
        if jar is not None:
            result = _with_jar_cookies(result, jar, raised)
        return result

    # -- the route ------------------------------------------------------------

    def _route(self, request: Request, raw_path: str, segments: Optional[list[str]] = None) -> Response:
        """The route's answer for ``raw_path``, the path as the client sent it
        (or as the middleware rewrote it); ``segments`` when already decoded."""
        if self._openapi_json is not None and self._is_openapi_url(raw_path, segments):
            return self._serve_openapi(request)
        tree = self.tree
        params: Optional[dict[str, Any]] = None  # made only for a route that has some
        endpoint: Optional[Endpoint] = None
        prefix, _, last = raw_path.rpartition("/")
        level = tree.levels.get(prefix)
        if level is not None:
            endpoint = level.static.get(last)
            if (endpoint is None and level.param is not None and last and "%" not in last and last.isascii()
                    and last != "." and last != ".."):
                endpoint = level.param  # a final segment with nothing to decode
                params = {endpoint.last_param: last}
        if endpoint is None:
            if segments is None:
                segments = _path_segments(raw_path)
            match = tree.match(segments)
            if match is None:
                # No route takes an empty segment: /comments//4 is redirected to
                # /comments/4 where that is served (as werkzeug does), else a 404.
                # Only the client's own path: a rewrite's is the app's business.
                if "//" in raw_path and raw_path == request._raw_path and self._serves(raw_path):
                    return self._redirect_to_clean_path(request.environ, raw_path)
                if self.public_dir is not None:
                    file = _public_path(self.public_dir, segments, self._public_ignores_case)
                    if file is not None:  # typed by the name asked for: a symlink's target may differ
                        return self._serve_file(request, file, _content_type_for(segments[-1]))
                return _error_response(404, f"no route matches {_shown(_url_from_environ(request._raw_path), 200)}")
            endpoint, params = match
        method = request.method
        handler = endpoint.get_handler if method == "GET" else endpoint.handlers.get(method)
        if handler is None:
            if endpoint.kind == "page":  # a page.html has no handlers
                return self._serve_file(request, endpoint.file, "text/html; charset=utf-8")
            if method == "HEAD" and "GET" in endpoint.handlers:
                method = "GET"
                handler = endpoint.handlers["GET"]
            elif method == "OPTIONS":
                return Response(None, 204, {"Allow": endpoint.allow})
            else:
                return _method_not_allowed(method, endpoint.allow)
        if method == "GET" and endpoint.dynamic != "force-dynamic":
            return self._call_cached(endpoint, handler, request, params, raw_path)
        return self._call_handler(endpoint, method, handler, request, params)

    def _is_openapi_url(self, raw_path: str, segments: Optional[list[str]]) -> bool:
        """Whether the path routed (the client's, or the middleware's rewrite) is openapi_url."""
        if segments is None and "%" not in raw_path:
            return raw_path == self.openapi_url  # nothing to decode: no work for every request
        return (segments if segments is not None else _path_segments(raw_path)) == self._openapi_segments

    def _methods_served(self, segments: list[str]) -> str:
        """The Allow of what answers ``segments``: a route's methods, or a page's,
        a public/ file's or the OpenAPI document's; empty where nothing does."""
        match = self.tree.match(segments)
        if match is not None:
            return match[0].allow
        if self._openapi_json is not None and segments == self._openapi_segments:
            return _PAGE_METHODS
        if self.public_dir is not None and _public_path(self.public_dir, segments, self._public_ignores_case):
            return _PAGE_METHODS
        return ""

    def _serves(self, raw_path: str) -> bool:
        """Whether a route, page, public/ file or the OpenAPI document answers
        ``raw_path`` without its empty segments."""
        return bool(self._methods_served(_path_segments(_without_empty_segments(raw_path))))

    def _call_cached(
        self,
        endpoint: Endpoint,
        handler: Callable[..., Any],
        request: Request,
        params: Optional[dict[str, Any]],
        raw_path: str,
    ) -> Response:
        """GET through the route cache: a hit is served without the handler.
        A HEAD without its own handler is served a GET entry, but never
        makes one: its handler may have left the body out."""
        static = endpoint.dynamic == "force-static"
        query = "" if static else request.environ.get("QUERY_STRING", "")
        if request._search_params is not None and not static:
            # Already parsed (by the middleware, or set by a rewrite to a path
            # with a query): key on the query the route will actually see.
            query = urlencode(request.search_params.items())
        key = _cache_key(request.environ, request._raw_path, raw_path, query)
        entry = self.cache.get(key)
        if entry is not None:
            return self.cache.response(entry)
        seen = _static_request(request) if static else request
        seen._read_client_data = False  # what the middleware read does not count
        asked_at = self.cache.now()
        if seen is request or request._context_before_middleware is None:
            response = self._call_handler(endpoint, "GET", handler, seen, params)
        else:  # force-static, after the middleware: in the context as it was before it ran
            assert seen._context is not None
            response = seen._context.run(self._call_handler, endpoint, "GET", handler, seen, params)
        if request.method == "GET" and _is_cacheable(response):
            if static or not seen._read_client_data:
                self.cache.put(key, response, endpoint.revalidate, asked_at)
            elif not endpoint.said_answers_depend_on_client:
                # Otherwise a route's revalidate seems to do nothing, and nothing says why.
                endpoint.said_answers_depend_on_client = True
                logger.warning("%s: its GET handler read the request's headers, cookies, body or URL, so its "
                               "answer is not cached: it may differ from one client to another (as in "
                               "Next.js; said once)", endpoint.file)
        return response

    def _serve_openapi(self, request: Request) -> Response:
        # Answers like a page.html: GET and HEAD, OPTIONS lists them, anything else is a 405.
        not_a_read = _answer_to_a_page_method(request.method)
        if not_a_read is not None:
            return not_a_read
        document = self._openapi_json
        if request.base_path and document is not None:
            # Mounted: without "servers" a client calls the paths from "/" (OpenAPI 3.1 4.8.1).
            # Made per request, never kept: gunicorn takes SCRIPT_NAME from a request header.
            # Spliced in front, not parsed and written again: the document is a JSON object.
            servers = jsonlib.dumps([{"url": request.base_path}]).encode("ascii")
            document = b'{"servers":' + servers + b"," + document[1:]
        return Response(document, 200, {"Content-Type": "application/json"})

    @staticmethod
    def _serve_file(request: Request, file: str, content_type: Optional[str]) -> Response:
        not_a_read = _answer_to_a_page_method(request.method)
        if not_a_read is not None:
            return not_a_read
        return serve_file(request.environ, file, content_type)

    # -- calling the handler ----------------------------------------------

    def _call_handler(
        self,
        endpoint: Endpoint,
        method: str,
        handler: Callable[..., Any],
        request: Request,
        params: Optional[dict[str, Any]],  # None for a route without any: Context makes its own {}
    ) -> Response:
        response: Response
        raised = False  # an error the handler raised, which gets no cookies (a redirect() does)
        token = _current_request.set(request)
        try:
            arity = endpoint.arity[method]
            if arity == 2:
                result = handler(request, _context_for(params))
            elif arity == 1:
                result = handler(request)
            else:
                result = handler()
            result_type = type(result)
            # An int status in the set is valid (the int test first: 200.0 is in the
            # set too, being equal to 200, and a dict, as Next.js's init object, is
            # not hashable); anything else goes through the full check.
            if (result_type is Response and type(result.status) is int
                    and result.status in _FINAL_STATUSES and result._middleware is None):
                response = result  # the common cases, checked without a call
            elif result_type is dict or result_type is list:
                response = Response.json(result)
            else:
                if inspect.isawaitable(result):
                    result = _run_awaitable(result)
                answer = self._as_response(result)
                if isinstance(answer, str):  # a 500, and like a crash it gets no cookies
                    logger.error("%s: %s handler %s", endpoint.file, method, answer)
                    answer, raised = self._internal_error(f"{method} handler {answer}"), True
                response = answer
        except HTTPError as exc:
            response, raised = self._raised_answer(
                exc, f"{endpoint.file}: {method} handler", _handed_no_client_data(endpoint, method))
        except (Exception, SystemExit, GeneratorExit):  # sys.exit() in a handler must not stop the server
            logger.exception("%s: %s handler raised%s", endpoint.file, method, _await_hint())
            response = self._internal_error()
            raised = True
        finally:
            _current_request.reset(token)
        if response._body is None and response._stream is not None:  # (a body held is never a stream)
            # A body that fails before its first piece counts as an error the handler raised.
            response, raised = self._start_stream(response, request, f"{endpoint.file}: {method} handler",
                                                  _handed_no_client_data(endpoint, method))
        if response.status == 405 and not response.headers.has("allow"):
            response = _with_allow(response, endpoint.allow, method)
        jar = request._jar
        if jar is not None:
            response = _with_jar_cookies(response, jar, raised)
        return response

    def _start_stream(
        self, response: Response, request: Request, source: str, static: bool = False
    ) -> tuple[Response, bool]:
        """Make a streamed body's first piece now, while an error can still be
        the answer (a server sends nothing before the first piece, PEP 3333).
        (the response with its started body, False), or the error's answer as
        if the handler had raised it, and whether it is one that gets no cookies."""
        if not _may_have_content(response.status):
            return response, False  # never run: no content will be sent (_send_other closes it)
        # A HEAD runs it too, up to its first piece (then _send_other closes it):
        # an error before then is the answer, and HEAD's must be GET's (RFC 9110 9.3.2).
        body = _StreamedBody(response._stream, request, source)
        try:
            body.start()
        except HTTPError as exc:  # request.stream() over max_body_size, say
            body.close_in_request()
            return self._raised_answer(exc, f"{source}: its streamed body", static)
        except (Exception, SystemExit, GeneratorExit):
            logger.exception("%s: its streamed body failed before the first piece", source)
            body.close_in_request()
            return self._internal_error(), True
        started = _copy_of(response)  # the returned one keeps its own body: a list may be sent again
        started._stream = body
        return started, False

    def _raised_answer(self, exc: HTTPError, source: str, static: bool = False) -> tuple[Response, bool]:
        """The answer to an HTTPError raised by the middleware, a handler or its body
        before the first piece, and whether it is an error that gets no cookies (a
        redirect() does). A force-static GET handler is handed no query, headers or
        cookies: a value missing there is the app's mistake, not the client's."""
        if static and isinstance(exc, MissingRequestValue):
            logger.exception("%s raised (force-static: it sees no query, headers, cookies or body)", source)
            return self._internal_error(), True
        return exc.to_response(), not isinstance(exc, RedirectError)

    @staticmethod
    def _as_response(result: Any) -> Union[Response, str]:
        """The handler's result as a Response, or what is wrong with it (a 500)."""
        if isinstance(result, (dict, list)):
            return Response.json(result)
        if isinstance(result, Response):
            if result._middleware is not None:
                return f"returned Response.{result._middleware[0]}(), which only middleware may return"
            if not _valid_status(result.status):
                _close_body(result)  # never sent: a file or stream is let go now
                hint = ""
                if isinstance(result.status, dict):  # Next.js's init object, { status: 201, headers: {...} }
                    keywords = ", ".join(f"{key}=" for key in ("status", "headers") if key in result.status)
                    plural = "s" if ", " in keywords else ""
                    hint = f" (write the keyword{plural} {keywords or 'status='}, not an init object)"
                return f"returned a Response with status {result.status!r} (must be an int from 200 to 599){hint}"
            return result
        return f"returned {type(result).__name__}; return a Response, a dict or a list"

    def _internal_error(self, problem: Optional[str] = None) -> Response:
        """500: the traceback is logged, and shown only with ``debug=True``
        (as the ``traceback`` text beside ``error``); without an exception,
        as for a handler that returned None, ``problem`` (logged too) is
        shown instead, as ``detail``."""
        if not self.debug:
            return _error_response(500, "internal server error")
        if problem is not None:
            return Response.json({"error": "internal server error", "detail": problem}, 500)
        return Response.json({"error": "internal server error", "traceback": traceback.format_exc()}, 500)

    # -- sending the response ---------------------------------------------

    def _send(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        method: str,
        request: Optional[Request],
        response: Response,
    ) -> Iterable[bytes]:
        status_line = _BODY_STATUS_LINES.get(response.status)
        body = response._body
        if body is None or status_line is None:  # a file, a stream, a 204...
            return self._send_other(environ, start_response, method, request, response)
        # The commonest answer: a body in memory, whose length is its Content-Length.
        items = response._header_items
        if len(items) == 1 and items[0][0] == "Content-Type":
            header_list = [items[0], ("Content-Length", str(len(body)))]  # nothing to drop
        else:
            header_list = _wire_headers(items, True)
            header_list.append(("Content-Length", _content_length(body, items, method)))
        start_response(status_line, header_list)
        if request is not None and request._uploads:  # _release_uploads, without a call on this path
            request.close()
        return [body] if body and method != "HEAD" else []

    def _send_other(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        method: str,
        request: Optional[Request],
        response: Response,
    ) -> Iterable[bytes]:
        """The rest: a file (sent in chunks), a stream (no Content-Length),
        the statuses that have no content (204, 205, 304), and rare status codes."""
        status = response.status
        if status == 205:
            response = _without_content(response)
        status_line = _status_line(status)
        body_allowed = status != 204 and status != 304  # (a 1xx never gets here: _valid_status)
        header_list = _wire_headers(response._header_items, body_allowed, response._stream is not None)
        send_body = body_allowed and method != "HEAD"

        if response._body is not None:
            body = response._body
            if body_allowed:
                header_list.append(("Content-Length", _content_length(body, response._header_items, method)))
            start_response(status_line, header_list)
            _release_uploads(request)
            return [body] if send_body and body else []

        if response._file is not None:
            file, offset, length = response._file
            if body_allowed:
                header_list.append(("Content-Length", str(length)))
            start_response(status_line, header_list)
            _release_uploads(request)
            if not send_body:
                file.close()
                return []
            wrapper = environ.get("wsgi.file_wrapper")
            if wrapper is not None and offset == 0 and length == os.fstat(file.fileno()).st_size:
                return wrapper(file, FILE_CHUNK_SIZE)  # type: ignore[no-any-return]
            return _FileBody(file, offset, length)

        source = response._stream  # started by _start_stream
        stream = source if isinstance(source, _StreamedBody) else _StreamedBody(source, request)
        start_response(status_line, header_list)
        if not send_body:
            stream.close_in_request()  # never raises: it logs what failed (a HEAD's, a 204's answer stands)
            return []
        return stream


_NO_BODY_HEADERS = ("content-type", "content-length")
# Hop-by-hop headers (RFC 9110 7.6.1) belong to the server's connection, and
# PEP 3333 forbids an application to send them: they are dropped.
_HOP_BY_HOP_HEADERS = frozenset(
    # RFC 9110 7.6.1's, plus "trailers", which PEP 3333 (after RFC 2616 13.5.1) also forbids.
    ("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
     "transfer-encoding", "upgrade")
)


def _wire_headers(
    items: list[tuple[str, str]], body_allowed: bool, keep_length: bool = False
) -> list[tuple[str, str]]:
    """The header list for start_response, in one pass. Hop-by-hop headers
    are dropped, and so is Content-Length, for the sender to set from the body
    it holds (unless streaming); a response that may not have a body (204,
    304) loses its body headers; every other one gets a Content-Type, even an
    empty one (a redirect): wsgiref's validator, which checks WSGI apps,
    insists on it."""
    wire = []
    has_type = False
    for item in items:
        name = item[0].lower()
        if name in _HOP_BY_HOP_HEADERS:
            continue
        if name in _NO_BODY_HEADERS:
            if not body_allowed or (name == "content-length" and not keep_length):
                continue
            has_type = has_type or name == "content-type"
        wire.append(item)
    if body_allowed and not has_type:
        wire.append(_TEXT_TYPE_HEADER)
    return wire


def _content_length(body: bytes, items: list[tuple[str, str]], method: str) -> str:
    """The length of the body held, except where a HEAD handler left the body
    out and said how long GET's would be (RFC 9110 8.6: that length, or none)."""
    if method == "HEAD" and not body:
        for name, value in items:
            if name.lower() == "content-length":  # digits: _check_header refuses any other
                return value
    return str(len(body))


def _release_uploads(request: Optional[Request]) -> None:
    """Close the temporary files of the request's uploads once the answer's body is
    one the server holds: nothing the handler made can read them any more."""
    if request is not None and request._uploads:
        request.close()


def _without_content(response: Response) -> Response:
    """A 205 as it is sent: its content dropped (RFC 9110 15.3.6), a file or
    stream closed unread, so that it goes out with ``Content-Length: 0``."""
    _close_body(response)
    emptied = Response(None, response.status)
    emptied._header_items = list(response._header_items)
    return emptied


def _close_body(response: Response) -> None:
    """Let go of the file or stream of a response that will not be sent."""
    if response._file is not None:
        response._file[0].close()
    stream = response._stream
    if stream is not None:  # (one started already is closed as it is, in its request's context)
        (stream if isinstance(stream, _StreamedBody) else _StreamedBody(stream, None)).close_in_request()


def _may_have_content(status: int) -> bool:
    """Whether an answer with this (final) status carries content: 204, 205 and 304 never do."""
    return status not in (204, 205, 304)


def _copy_of(response: Response) -> Response:
    """A copy to change: a response object may be reused across requests
    (a module constant, a cached response), so the one returned is never changed."""
    if type(response) is not Response:
        copy = copylib.copy(response)  # every attribute, a subclass's (and its slots) too
    else:
        copy = _new_object(Response)
        copy.__dict__.update(response.__dict__)
    copy._header_items = list(response._header_items)
    return copy


def _with_jar_cookies(response: Response, jar: CookieJar, raised: bool) -> Response:
    """The answer with what ``cookies().set`` wrote (not for an error the code
    raised: as a crash, it gets none); the jar is sealed, since a later ``set()``
    (in a stream, after its headers) would be lost."""
    jar._seal()
    pending = jar._pending
    return _with_cookies(response, pending) if pending and not raised else response


def _with_cookies(response: Response, pending: Mapping[str, str]) -> Response:
    """Merge ``cookies().set`` into the response; the response's own wins.

    Works on a copy (``_copy_of``), so a reused response never collects other requests' cookies.
    """
    own = {_set_cookie_name(line) for line in response.headers.get_all("set-cookie")}
    merged = _copy_of(response)
    for name, line in pending.items():
        if name not in own:
            merged.headers.append("Set-Cookie", line)
    return merged


def _with_allow(response: Response, allow: str, method: str) -> Response:
    """A 405 the app made (a handler or the middleware), with the Allow RFC 9110 15.5.6
    requires: the URL's methods less the one just refused (a GET's refusal is HEAD's too)."""
    refused = ("GET", "HEAD") if method == "GET" else (method,)
    allowed = _copy_of(response)  # the app's own may be a module-level Response, sent again
    allowed.headers.set("Allow", ", ".join(m for m in allow.split(", ") if m and m not in refused))
    return allowed


class _StreamedBody:
    """A streamed response body: str chunks encoded, async iterables driven
    on the thread's event loop, and the request's temporary files removed
    when the server closes it."""

    def __init__(self, source: Any, request: Optional[Request], label: str = "a route") -> None:
        self._source = source
        self._request = request
        self.label = label  # whose body it is, for the log: "app/x/route.py: GET handler"
        self._async_pieces: Optional[_AsyncPieces] = None  # once an async source has started
        self._chunks = self._encoded_chunks()
        self._first = b""
        # The server reads the body after the app has returned, out of the request's
        # context: every later piece is made in that context again (the same one, not
        # a copy), so the body sees the context variables its handler set, may reset
        # their tokens, and sets nothing that outlives the request.
        self._context = request._context if request is not None else None

    def start(self) -> None:
        """Make the first piece now, before the status is handed to the
        server: until then an error can still be the answer (a server sends
        nothing before the first piece, PEP 3333). Called while the app runs,
        in the request's context."""
        self._first = next(self._chunks, b"")

    def __iter__(self) -> Iterator[bytes]:
        try:
            if self._first:
                yield self._first
            context = self._context
            if context is None:
                yield from self._chunks
                return
            run, chunks = context.run, self._chunks
            while True:
                chunk = run(next, chunks, b"")  # _encoded_chunks never yields b""
                if not chunk:
                    return
                yield chunk
        except SystemExit as exc:
            # Past the first piece an error can only cut the connection, which the
            # server does for an Exception; a SystemExit would escape its thread
            # (waitress kept the connection open, the client waiting for ever).
            logger.error("%s: its streamed body raised SystemExit after it started", self.label)
            raise RuntimeError(f"a streamed body raised SystemExit({exc.code!r})") from exc
        except HTTPError as exc:
            if exc.status >= 500:  # the app's own failure, raised as an HTTPError: its traceback is wanted
                logger.exception("%s: its streamed body failed after it started", self.label)
                raise
            # Most often the client's doing, not a fault of the app: a body over the
            # limit, or a client gone mid-upload (request.stream() piped back). Too late
            # to be the answer: one line says what it was, without a traceback, and it
            # is raised on, so the server cuts the connection.
            logger.warning("%s: its streamed body stopped after it started: %s %r",  # %r: no line breaks
                           self.label, exc.status, exc.message)
            if isinstance(exc, _UnreadableBody) and isinstance(exc.__cause__, ConnectionError):
                # The client went away: raised as what it is, which servers take
                # for a gone client (gunicorn logs it at debug level, not as an error).
                raise exc.__cause__ from None
            raise
        except Exception:
            # The server logs it too, but not which route's body it was.
            logger.exception("%s: its streamed body failed after it started", self.label)
            raise

    def _encoded_chunks(self) -> Iterator[bytes]:
        source = self._source
        if hasattr(source, "__iter__"):
            chunks: Iterator[Any] = iter(source)
        else:
            chunks = self._async_pieces = _AsyncPieces(source)
        for chunk in chunks:
            if isinstance(chunk, str):
                chunk = chunk.encode("utf-8")
            elif not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(f"a streamed body yielded {type(chunk).__name__}, not bytes or str")
            if chunk:
                yield bytes(chunk)

    def close(self) -> None:
        """The server's close(), after the app has returned: in the request's context
        again. The app's own (a HEAD's, an error's) call close_in_request()."""
        if self._context is None:
            self.close_in_request()
        else:
            self._context.run(self.close_in_request)

    def close_in_request(self) -> None:
        source = self._source
        try:
            if self._async_pieces is not None:
                self._async_pieces.close()
            elif hasattr(source, "aclose"):
                _run_awaitable(source.aclose())
            elif hasattr(source, "close"):
                closing = source.close()
                if inspect.isawaitable(closing):  # aiofiles and others: async def close()
                    _run_awaitable(closing)
        except (Exception, SystemExit, GeneratorExit):  # a sys.exit() in its finally must not stop the server
            # Whatever was sent stands: raised to waitress, a complete body would
            # reach the client cut short (no last chunk). Logged with its route.
            logger.exception("%s: its streamed body failed when it was closed", self.label)
        finally:
            if self._request is not None:
                self._request.close()


_END_OF_PIECES = object()
_CANCELLED_BETWEEN_PIECES = "the async body's task was cancelled between two pieces"


class _AsyncPieces:
    """The pieces of an async iterable, for a server that iterates (PEP 3333).

    One task on the thread's event loop (or on a loop of its own, where the app
    is called in-process from a running loop) runs it from the first piece to the
    last, as ``async for`` would, so context variables hold across its yields
    (a timeout around a yield cancels that task: the body ends with an error).
    The task hands each piece over, then waits to be asked for the next; the
    loop runs only while the server asks.
    """

    def __init__(self, source: AsyncIterable[Any]) -> None:
        self._source = source
        self._task: Optional[asyncio.Task[None]] = None
        self._piece: Optional[asyncio.Future[Any]] = None  # the next piece, once the task has it
        self._asked: Optional[asyncio.Future[None]] = None  # done when the server wants another
        self._closing = False
        self._loop: Optional[asyncio.AbstractEventLoop] = None  # the task's, from the first piece on
        self._own_loop = False
        self._ended = False  # the last piece was handed over: a later failure is its aclose()'s

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        task = self._task
        if task is not None and task.done():
            if task.cancelled():  # by the body itself, between pieces (a timeout around a yield)
                raise RuntimeError(_CANCELLED_BETWEEN_PIECES)
            raise StopIteration  # it ended, or failed and said so
        loop = self._loop
        if loop is None:
            loop = _thread_loop()
            if loop.is_running():  # the app called in-process from an async handler on this loop
                loop, self._own_loop = asyncio.new_event_loop(), True
            self._loop = loop
        self._piece = loop.create_future()
        if task is None:
            self._task = loop.create_task(self._hand_over())
        elif self._asked is not None and not self._asked.done():  # cancelled: the task is ending
            self._asked.set_result(None)
        piece = _run_awaitable(self._piece, loop)
        if piece is _END_OF_PIECES:
            raise StopIteration
        return piece

    async def _hand_over(self) -> None:
        iterator: Any = None
        escaping = False
        try:
            while True:
                assert self._piece is not None
                try:
                    if iterator is None:  # in here: a failing __aiter__ must reach the server, not hang it
                        iterator = self._source.__aiter__()
                    piece = await iterator.__anext__()
                except StopAsyncIteration:
                    piece = _END_OF_PIECES
                except (KeyboardInterrupt, SystemExit):
                    escaping = True
                    raise  # out of the loop at once: a future holding one would never stop the loop
                except BaseException as exc:  # the body's own failure, for the server's side to raise
                    self._piece.set_exception(exc)
                    return
                self._asked = asyncio.get_running_loop().create_future()
                self._piece.set_result(piece)
                if piece is _END_OF_PIECES:
                    self._ended = True
                    return
                await self._asked
        finally:
            if not (self._closing or escaping) and self._piece is not None and not self._piece.done():
                # Cancelled by the body itself between pieces (a timeout around a yield):
                # the server waiting for the next piece is told, not left waiting. (Not
                # when escaping: the piece's waiter would be left queued on the loop, to
                # stop it under the next request's handler.)
                self._piece.set_exception(RuntimeError(_CANCELLED_BETWEEN_PIECES))
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()  # a no-op at the end; stopped early, the body's finally runs here
            else:
                close = getattr(self._source, "close", None)  # as _StreamedBody.close does unstarted
                if close is not None:
                    closing = close()
                    if inspect.isawaitable(closing):  # aiofiles and others: async def close()
                        await closing

    def close(self) -> None:
        """Stop the body where it is: its ``finally`` runs, in its own task."""
        try:
            self._close()
        finally:
            if self._own_loop and self._loop is not None and not self._loop.is_closed():
                self._loop.close()

    def _close(self) -> None:
        task = self._task
        if task is None:
            return
        if task.done():
            if not task.cancelled():
                error = task.exception()  # already raised to the server (SystemExit, say): marked as seen
                if error is not None and self._ended:  # its aclose() failed after the last piece
                    raise error
            return
        self._closing = True
        task.cancel()
        try:
            _run_awaitable(task, self._loop)
        except RuntimeError:
            if not task.cancelled():  # its finally failed
                raise


# ---------------------------------------------------------------------------
# Route table and OpenAPI: what the file tree serves, for people (`routes`) and
# for tools (`openapi`). Both read App.route_table(), so they show what the trie matches.
# ---------------------------------------------------------------------------


def route_cache_note(info: RouteInfo) -> str:
    """How the route's GET responses are cached, as the module says it:
    ``-`` (never), ``revalidate=60s``, ``revalidate=false`` (until restart),
    ``force-static`` or ``force-static,revalidate=60s``."""
    seconds = f"revalidate={info.revalidate:g}s" if info.revalidate is not None else None
    if info.dynamic == "force-static":
        return f"force-static,{seconds}" if seconds else "force-static"
    if info.dynamic == "force-dynamic":
        return "-"
    return seconds or "revalidate=false"


def format_route_table(table: Iterable[RouteInfo], relative_to: Optional[str] = None) -> list[str]:
    """One aligned line per route: URL pattern, methods, file, caching."""
    base = os.path.abspath(relative_to or os.getcwd())
    rows = [
        (info.url, ",".join(info.methods), _display_path(info.file, base), route_cache_note(info))
        for info in sorted(table, key=lambda info: info.url)
    ]
    if not rows:
        return []
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return ["  ".join([cell.ljust(width) for cell, width in zip(row, widths)] + [row[3]]) for row in rows]


def _display_path(path: str, base: str) -> str:
    # Relative paths are shorter and match what the user typed; outside the base, stay absolute.
    try:
        relative = os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith(os.pardir) else relative


# Path item keys in the order the OpenAPI specification lists them.
_OPENAPI_METHODS = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH")

_CATCHALL_NOTES = {
    CATCHALL: "Catch-all `[...{name}]`: one or more path segments joined by `/`. OpenAPI has no "
    "parameter spanning segments, so the value may contain `/`.",
    OPTIONAL: "Optional catch-all `[[...{name}]]`: one or more path segments joined by `/`; the "
    "path without this segment is served by the same handlers.",
}


def openapi_document(app: App, *, title: Optional[str] = None, version: str = "0.1.0") -> dict[str, Any]:
    """An OpenAPI 3.1 document of the app's routes and pages, built from the file tree.

    Paths come from the folders (``[id]`` becomes ``{id}``), operations from
    the exported handlers, summaries and descriptions from their docstrings.
    """
    paths: dict[str, dict[str, Any]] = {}
    shapes: set[str] = set()
    operation_ids: set[str] = set()
    for info in sorted(app.route_table(), key=_match_order):
        for path, parameters in _openapi_paths(info):
            # [id] beside [...id] (or [...rest]) give one template, whatever the names
            # (OpenAPI 3.1 forbids two that differ only there); it describes the route
            # that answers it, the first in _match_order: the catch-all answers only longer paths.
            shape = _TEMPLATE_PARAMETER.sub("{}", path)
            if shape in shapes:
                continue
            shapes.add(shape)
            item: dict[str, Any] = _described({}, inspect.getdoc(info.module) if info.module else None)
            if parameters:
                item["parameters"] = parameters
            for method, operation in _openapi_operations(info, path, operation_ids):
                item[method.lower()] = operation
            paths[path] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title or os.path.basename(app.app_dir),
            "version": version,
            "description": f"Generated by minirouter {__version__} from the route files.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string", "description": "Why the request failed."}},
                }
            },
            "responses": {
                "Error": {
                    "description": "An error answered by the framework or raised with HTTPError.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            },
        },
    }


def _match_order(info: RouteInfo) -> list[tuple[int, str]]:
    """A sort key: URL order, where at each level a static segment comes before
    ``[param]``, before ``[...catchall]``, before ``[[...optional]]``, as requests match."""
    def rank(segment: str) -> int:
        return 3 if segment.startswith("[[") else 2 if segment.startswith("[...") else 1 if segment[:1] == "[" else 0

    return [(rank(segment), segment) for segment in info.url.split("/")]


# A path template's parameter, "{id}" (literal braces in a folder name are escaped).
_TEMPLATE_PARAMETER = re.compile(r"\{[^{}]*\}")

# Characters a folder name may hold that an OpenAPI path must escape: template braces, and
# what would end the path ('?', '#') or start an escape ('%').
_OPENAPI_LITERAL_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D", "?": "%3F", "#": "%23"})


def _openapi_paths(info: RouteInfo) -> list[tuple[str, list[dict[str, Any]]]]:
    # An optional catch-all matches with and without its segment: OpenAPI needs a path for each.
    kinds = dict(info.params)
    segments: list[str] = []
    parameters: list[dict[str, Any]] = []
    variants: list[tuple[str, list[dict[str, Any]]]] = []
    for segment in [s for s in info.url.split("/") if s]:
        if not segment.startswith("["):
            segments.append(segment.translate(_OPENAPI_LITERAL_ESCAPES))
            continue
        name = segment.strip("[]")
        name = name[3:] if name.startswith("...") else name
        kind = kinds.get(name, SINGLE)
        if kind == OPTIONAL:
            variants.append(("/" + "/".join(segments), list(parameters)))
        segments.append("{" + name + "}")
        parameters.append(_openapi_parameter(name, kind))
    variants.append(("/" + "/".join(segments), parameters))
    return variants


def _openapi_parameter(name: str, kind: str) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
    if kind in _CATCHALL_NOTES:
        parameter["description"] = _CATCHALL_NOTES[kind].format(name=name)
        parameter["x-minirouter-param"] = kind
    return parameter


def _openapi_operations(info: RouteInfo, path: str, used_ids: set[str]) -> list[tuple[str, dict[str, Any]]]:
    if info.kind == "page":
        page = {
            "operationId": _operation_id("GET", path, used_ids),
            "summary": "HTML page",
            "description": f"Serves `{os.path.basename(info.file)}`.",
            "responses": {"200": {"description": "The page.", "content": {"text/html": {}}}},
        }
        return [("GET", page)]
    operations = []
    for method in _OPENAPI_METHODS:
        handler = info.handlers.get(method)
        if handler is None:
            continue
        # A functools.partial's own docstring describes partial; the wrapped function's is the handler's.
        documented = handler.func if isinstance(handler, functools.partial) else handler
        operation = _described({"operationId": _operation_id(method, path, used_ids)}, inspect.getdoc(documented))
        operation["responses"] = {
            "default": {"description": "The handler's response."},
            "4XX": {"$ref": "#/components/responses/Error"},
        }
        operations.append((method, operation))
    return operations


def _described(target: dict[str, Any], doc: Optional[str]) -> dict[str, Any]:
    # A docstring's first paragraph (often wrapped over lines) is its summary; the whole is the description.
    if doc:
        target["summary"] = " ".join(doc.split("\n\n", 1)[0].split())
        target["description"] = doc
    return target


def _operation_id(method: str, path: str, used: set[str]) -> str:
    words = [word.strip("{}") for word in path.split("/") if word] or ["index"]
    base = "_".join([method.lower()] + ["".join(c if c.isalnum() else "_" for c in word) for word in words])
    candidate, number = base, 2
    while candidate in used:  # two paths can flatten to one id ("/a-b" and "/a_b")
        candidate, number = f"{base}_{number}", number + 1
    used.add(candidate)
    return candidate


# ---------------------------------------------------------------------------
# TestClient: calls the WSGI app in-process, as a server would, so tests run
# without sockets. It works with any WSGI callable (e.g. wsgiref's validator).
# ---------------------------------------------------------------------------


class TestResponse(_PortingHints):
    """What ``TestClient`` got back: ``status``, ``headers``, ``content``."""

    __test__ = False  # not a pytest test class
    _nextjs_hints = _NO_HINTS
    _flask_hints = _FLASK_TEST_RESPONSE_HINTS

    def __init__(self, status_line: str, header_list: list[tuple[str, str]], content: bytes) -> None:
        self.status_line = status_line
        self.status = int(status_line.split(" ", 1)[0])
        self.headers = Headers()
        self.headers._items = list(header_list)
        self.content = content

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def text(self) -> str:
        """The content decoded with the ``charset`` of its ``Content-Type``,
        or as UTF-8 where it names none (or none that decodes text)."""
        try:
            charset = parse_header_params(self.headers.get("content-type") or "")[1].get("charset")
        except HTTPError:  # a Content-Type a request's would be refused for
            charset = None
        codec = _text_codec(charset) if charset else None
        return self.content.decode(codec or "utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    @property
    def cookies(self) -> dict[str, str]:
        """Cookie name to value, from this response's ``Set-Cookie`` headers;
        a cookie they delete (expired) is left out, as a browser drops it, so
        ``cookies=response.cookies`` carries on what a browser would send."""
        result: dict[str, str] = {}
        for line in self.headers.get_all("set-cookie"):
            name, value = _set_cookie_pair(line)
            if _set_cookie_expired(line.partition(";")[2]):
                result.pop(name, None)
                continue
            decoded = _decode_cookie_value(value)
            result[name] = decoded if decoded is not None else value
        return result

    def __repr__(self) -> str:
        return f"<TestResponse {self.status_line}>"


def _form_data_quote(value: str) -> str:
    """A name or filename in a Content-Disposition quoted-string, escaped as
    browsers do (the HTML standard's multipart/form-data encoding)."""
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _file_part(name: str, spec: Any) -> Optional[tuple[Optional[str], bytes, Optional[str], Mapping[str, str]]]:
    """(filename, content, content type, more part headers) of one ``files=``
    entry, read as requests reads it: ``(filename, content[, content_type[,
    headers]])``, where a None filename makes a plain field and None content
    leaves the part out; an open file, named after its file (else the field);
    or bare bytes or str, named after the field. No type given, none is sent."""
    content_type: Optional[str] = None
    headers: Mapping[str, str] = {}
    if isinstance(spec, (tuple, list)):
        filename, content, *rest = spec
        if rest:
            content_type = rest[0]
        if len(rest) > 1 and rest[1]:  # the type given beside them wins over theirs
            headers = {
                key: value for key, value in rest[1].items() if key.lower() != "content-type" or not content_type
            }
    else:
        own_name = getattr(spec, "name", None)  # a temporary file's is an int, a stream's "<stdin>"
        filename = name
        if isinstance(own_name, str) and own_name and not (own_name[0] == "<" and own_name[-1] == ">"):
            filename = os.path.basename(own_name)
        content = spec
    if content is None:
        return None
    if hasattr(content, "read"):
        content = content.read()
    content = _exact_str(content)
    if not isinstance(content, (bytes, bytearray, memoryview)):
        content = str(content).encode()  # a number is sent as its digits, as requests does
    return (None if filename is None else str(filename)), bytes(content), content_type, headers


def _multipart_body(
    fields: list[tuple[str, Any]], files: Union[Mapping[str, Any], Iterable[tuple[str, Any]]]
) -> tuple[bytes, str]:
    """The form as multipart: ``fields`` (from _form_fields) first, then ``files``."""
    boundary = "minirouter-" + os.urandom(12).hex()
    out = io.BytesIO()
    for name, item in fields:
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_form_data_quote(name)}"\r\n\r\n'.encode()
        )
        out.write(item if isinstance(item, bytes) else str(item).encode())
        out.write(b"\r\n")
    for name, spec in files.items() if isinstance(files, Mapping) else files:
        part = _file_part(name, spec)
        if part is None:
            continue
        filename, content, content_type, more_headers = part
        disposition = f'form-data; name="{_form_data_quote(name)}"'
        if filename is not None:
            disposition += f'; filename="{_form_data_quote(filename)}"'
        head = f"Content-Disposition: {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        head += "".join(f"{key}: {value}\r\n" for key, value in more_headers.items())
        out.write(f"--{boundary}\r\n{head}\r\n".encode())
        out.write(content)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


_FORM_SCALARS = (str, bytes, int, float)


def _form_fields(fields: Any, keyword: str) -> list[tuple[str, Any]]:
    """The (name, value) pairs of ``data=`` or ``params=``: ``{"tag": ["a",
    "b"]}`` is two ``tag`` fields, and a None is no field (as ``requests``
    reads it: ``params={"page": page}`` with no page). A value that is no
    field (a file object, a ``(file, name)`` tuple) is refused, never sent as its repr."""
    if not isinstance(fields, Mapping):
        raise TypeError(f"{keyword}= takes a dict of fields here, not {type(fields).__name__}")
    pairs = []
    for name, value in fields.items():
        if value is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(item, _FORM_SCALARS):
                hint = "; send files with files=" if keyword == "data" else ""
                raise TypeError(
                    f"{keyword}={{{name!r}: {type(value).__name__}}}: a field takes a str, bytes "
                    f"or a number (or a list of them){hint}"
                )
            pairs.append((name, item))
    return pairs


def _form_query(fields: Mapping[str, Any], keyword: str) -> str:
    """``{"tag": ["a", "b"], "q": "x"}`` as ``tag=a&tag=b&q=x``."""
    return urlencode(_form_fields(fields, keyword))


class TestClient:
    """Send requests to a WSGI app in-process; redirects are not followed.

    ``client.get("/comments?query=a")``, ``client.post("/comments",
    json={"text": "hi"})``; ``data=`` takes bytes, str or a dict (sent as a
    urlencoded form, or multipart together with ``files=``). With
    ``keep_cookies=True`` the client keeps the cookies its responses set in
    ``client.cookies`` and sends them with every later request, as a browser
    (or Flask's test client) does; ``Path`` and ``Domain`` are not checked.
    """

    __test__ = False

    def __init__(self, app: Callable[..., Any], base_url: str = "http://testserver",
                 keep_cookies: bool = False) -> None:
        self.app = app
        self.keep_cookies = keep_cookies
        self.cookies: dict[str, str] = {}  # kept between requests with keep_cookies=True
        if "://" not in base_url:
            raise ValueError(f"base_url must name a scheme and a host, like 'http://testserver', not {base_url!r}")
        scheme, _, rest = base_url.partition("://")
        host, slash, mount = rest.partition("/")
        self.scheme = scheme or "http"
        self.host = host or "testserver"
        # A path in base_url is where the app is mounted (SCRIPT_NAME), as a dispatcher mounts it.
        self.mount = quote(("/" + mount).rstrip("/") if slash else "", safe=_PATH_SAFE)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Union[bytes, str, Mapping[str, Any], None] = None,
        files: Union[Mapping[str, Any], Iterable[tuple[str, Any]], None] = None,
        headers: Union[Mapping[str, str], Iterable[tuple[str, str]], None] = None,
        cookies: Optional[Mapping[str, str]] = None,
        params: Optional[Mapping[str, Any]] = None,
    ) -> TestResponse:
        body, content_type = self._body(json, data, files)
        environ = self._environ(method, path, body, params)
        if content_type is not None:
            environ["CONTENT_TYPE"] = content_type
        header_pairs = headers.items() if isinstance(headers, Mapping) else (headers or [])
        given: set[str] = set()
        for name, value in header_pairs:
            if "_" in name or value is None:
                continue  # waitress and gunicorn drop it: X_User must not pass for X-User; None: as requests
            if isinstance(value, bytes):
                value = value.decode("latin-1")  # the bytes as sent
            elif not isinstance(value, str):
                raise TypeError(f"headers={{{name!r}: {type(value).__name__}}}: a header takes a str or bytes")
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            # Servers pass header bytes as latin-1 strings (PEP 3333): a value
            # beyond latin-1 is sent as its UTF-8 bytes, as a client would.
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                value = value.encode("utf-8").decode("latin-1")
            value = value.strip(" \t")  # not part of the value (RFC 9110 5.5); servers strip it
            # A repeated header arrives joined with ", ", as waitress and
            # gunicorn pass it (two Cookie lines too: send cookies with cookies=).
            environ[key] = f"{environ[key]}, {value}" if key in given else value
            given.add(key)
        if self.keep_cookies and self.cookies:
            cookies = {**self.cookies, **(cookies or {})}  # the ones given win
        if cookies:
            # Encoded as a browser sends what Response.cookies.set wrote.
            pairs = "; ".join(f"{name}={quote(value, safe=_COOKIE_SAFE)}" for name, value in cookies.items())
            existing = environ.get("HTTP_COOKIE")
            environ["HTTP_COOKIE"] = f"{existing}; {pairs}" if existing else pairs
        response = self._call(environ)
        if self.keep_cookies:
            for line in response.headers.get_all("set-cookie"):
                name = _set_cookie_name(line)
                self.cookies.pop(name, None)  # deleted (expired), or replaced just below
            self.cookies.update(response.cookies)
        return response

    @staticmethod
    def _body(
        json: Any, data: Any, files: Union[Mapping[str, Any], Iterable[tuple[str, Any]], None]
    ) -> tuple[bytes, Optional[str]]:
        if json is not None:  # as in requests: json=None sends no JSON
            if data is not None or files:
                raise TypeError("give json= or data=/files=, not both")
            return jsonlib.dumps(json).encode(), "application/json"
        if files:
            return _multipart_body(_form_fields(data or {}, "data"), files)
        if isinstance(data, Mapping):
            return _form_query(data, "data").encode(), "application/x-www-form-urlencoded"
        if isinstance(data, str):
            return data.encode("utf-8"), None
        if isinstance(data, (bytes, bytearray, memoryview)):
            return bytes(data), None
        if data is not None:
            raise TypeError(f"data= takes bytes, str or a dict of fields, not {type(data).__name__}; "
                            "send files with files=")
        return b"", None

    def _environ(
        self, method: str, path: str, body: bytes, params: Optional[Mapping[str, Any]]
    ) -> dict[str, Any]:
        path = path.partition("#")[0]  # a fragment never leaves the client
        target, _, query = path.partition("?")
        # An absolute URL (http://host/x) is sent as the request target, as it is;
        # PATH_INFO is its path, as a server makes it.
        split = _split_target(target) if not target.startswith("/") and "://" in target else None
        origin = ""  # "http://host" of an absolute URL
        if split is not None:
            origin, target = f"{target.partition('://')[0]}://{split[0]}", split[1]
        raw_path = quote(target or "/", safe=_PATH_SAFE)
        query = quote(query, safe=_URL_SAFE)
        if params:
            query = f"{query}&{_form_query(params, 'params')}" if query else _form_query(params, "params")
        # Split after an IPv6 address's brackets: [::1]:8000 is [::1] and 8000.
        bracket_end = self.host.rfind("]")
        host, _, port = (self.host[: bracket_end + 1], "", self.host[bracket_end + 2 :]) if bracket_end > 0 else (
            self.host.partition(":"))
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": unquote_to_bytes(self.mount).decode("latin-1"),
            "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
            "QUERY_STRING": query,
            "REQUEST_URI": f"{origin}{self.mount}{raw_path}" + (f"?{query}" if query else ""),
            "SERVER_NAME": host,
            "SERVER_PORT": port or ("443" if self.scheme == "https" else "80"),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",  # where the request comes from, as a server says it
            "HTTP_HOST": self.host,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": self.scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if body or method in ("POST", "PUT", "PATCH"):
            environ["CONTENT_LENGTH"] = str(len(body))
        return environ

    def _call(self, environ: dict[str, Any]) -> TestResponse:
        """The whole answer: an endless stream never returns."""
        started: list[Any] = []
        written: list[bytes] = []

        def start_response(
            status: str, header_list: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            started[:] = [status, header_list]
            return written.append

        result = self.app(environ, start_response)
        try:
            for chunk in result:
                written.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return TestResponse(started[0], list(started[1]), b"".join(written))

    def __enter__(self) -> TestClient:
        return self  # nothing to open or close: "with TestClient(app) as client:" reads as in Starlette

    def __exit__(self, *exc_info: object) -> None:
        pass

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("HEAD", path, **kwargs)

    def options(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("OPTIONS", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("DELETE", path, **kwargs)


# ---------------------------------------------------------------------------
# Serving: waitress when installed, wsgiref otherwise, and a reloader: a parent
# process that polls modification times and restarts a child server (stdlib only).
# ---------------------------------------------------------------------------

_RELOADER_PARENT_ENV = "MINIROUTER_RELOADER_PARENT"


def serve(app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]], host: str = "127.0.0.1",
          port: int = 8000) -> None:
    """Serve ``app`` until interrupted (Ctrl-C, or SIGTERM as from ``docker stop``):
    with waitress when it is installed, else with wsgiref."""
    import signal

    # Left at its default, SIGTERM would kill the server mid-answer, and as a container's
    # PID 1 it is not delivered at all: docker stop would wait, then kill. Only while serving.
    previous = None if exit_with_reloader() else _raise_keyboard_interrupt_on_sigterm()
    try:
        _serve_until_interrupted(app, host, port)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _serve_until_interrupted(app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]], host: str,
                             port: int) -> None:
    try:
        waitress = importlib.import_module("waitress")  # optional: the module never requires it
    except ImportError:
        waitress = None
    if waitress is not None:
        waitress.serve(app, host=host, port=port, **waitress_options(app))
        return
    print("minirouter: waitress is not installed; serving with wsgiref (for development only)", file=sys.stderr)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # "[::1]", as waitress and the reloader's probe take it
    with _wsgiref_server(app, host, port) as server:
        shown = f"[{host}]" if ":" in host else host  # an IPv6 address is bracketed in a URL
        print(f"minirouter: serving on http://{shown}:{server.server_port}", file=sys.stderr)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


def waitress_options(app: Any) -> dict[str, Any]:
    """Settings that make waitress enforce the app's limits itself: it reads a
    whole body before calling the app, so without this a 1 GiB upload would
    be read (its default limit) before ``max_body_size`` could refuse it.
    With ``App(trust_forwarded=True)``, waitress also keeps the proxy's
    ``X-Forwarded-*`` headers, which it otherwise deletes (waitress 3)."""
    limits = getattr(app, "limits", None)
    if not isinstance(limits, Limits):
        return {}
    # waitress refuses max_request_body_size bytes or more, and counts a chunked
    # body's framing (each chunk's size line and CRLF) too. The headroom lets
    # every body within max_body_size through, in chunks of 500 bytes or more;
    # the app answers its own 413 to a body that is over its limit but under this.
    headroom = max(64 * 1024, limits.max_body_size // 64)
    options: dict[str, Any] = {"max_request_body_size": limits.max_body_size + headroom}
    if getattr(app, "trust_forwarded", False) is True:
        # Deleted unless they come from waitress's own trusted_proxy: the app's
        # trust_forwarded (a proxy in front sets them) would then change nothing.
        options["clear_untrusted_proxy_headers"] = False
    return options


# The development server (wsgiref, where waitress is not installed): connections
# served at once (one thread each; the next waits to be accepted), and the seconds
# a client may stay silent before it is let go.
WSGIREF_MAX_CONNECTIONS = 32
WSGIREF_TIMEOUT = 60.0


def _wsgiref_server(app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]], host: str,
                    port: int) -> Any:
    # Imported here: http.server is slow to import and a WSGI server never needs it.
    import socketserver
    import wsgiref.simple_server as simple

    class ThreadingServer(socketserver.ThreadingMixIn, simple.WSGIServer):
        daemon_threads = True  # a slow client must not keep Ctrl-C from stopping the server
        # The family of the addresses the name stands for: IPv4 when it has one (as
        # before, where localhost lists ::1 first), else IPv6 (a name with no other).
        families = {info[0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                           flags=socket.AI_PASSIVE)}
        address_family = socket.AF_INET if socket.AF_INET in families else socket.AF_INET6
        # Without a bound, every half-open connection would hold a thread for ever.
        slots = threading.BoundedSemaphore(WSGIREF_MAX_CONNECTIONS)

        def process_request(self, request: Any, client_address: Any) -> None:
            self.slots.acquire()
            try:
                super().process_request(request, client_address)
            except RuntimeError:
                # No thread could be started ("can't start new thread"): its slot is free again.
                # Not on Ctrl-C: a thread that started releases its own slot, and a second
                # release would raise ValueError, which socketserver logs, swallowing the Ctrl-C.
                self.slots.release()
                raise

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            try:
                super().process_request_thread(request, client_address)
            finally:
                self.slots.release()

        def handle_error(self, request: Any, client_address: Any) -> None:
            if isinstance(sys.exc_info()[1], socket.timeout):
                return  # a client let go after WSGIREF_TIMEOUT (a browser's unused preconnect): no traceback
            super().handle_error(request, client_address)

    class QuietHandler(simple.WSGIRequestHandler):
        timeout = WSGIREF_TIMEOUT  # socketserver's: a silent client's read ends with an error

        def get_environ(self) -> dict[str, Any]:
            environ = super().get_environ()
            # The target as sent: wsgiref's PATH_INFO is already decoded, so /a%2Fb would be two segments.
            environ["REQUEST_URI"] = self.path
            return environ

        def log_request(self, code: Union[int, str] = "-", size: Union[int, str] = "-") -> None:
            pass  # "minirouter.access" already has a line per request

    return simple.make_server(host, port, app, ThreadingServer, QuietHandler)


def exit_with_reloader() -> bool:
    """In a server that ``run_with_reloader`` started, exit when the reloader
    is gone: killed outright (SIGKILL), it cannot stop its child, which would
    hold the port with the old code for ever (it says so on stderr). True
    there, so a server may skip a slow, graceful stop on SIGTERM; anywhere
    else it does nothing and returns False. ``serve`` calls it; a server
    script of your own calls it before serving."""
    # Taken out of the environment, so that a process this server starts is not watched too.
    parent = os.environ.pop(_RELOADER_PARENT_ENV, "")
    if parent.isdigit():
        _exit_when_orphaned(int(parent))
        return True
    return False


def _exit_when_orphaned(parent_pid: int) -> None:
    # The reloader may be a grandparent (a wrapper such as `sh -c` or `uv run` between):
    # watch this process's own parent, and, on POSIX, the reloader itself.
    first_parent = os.getppid()

    def reloader_alive() -> bool:
        if os.name != "posix":
            return True  # os.kill(pid, 0) would terminate it on Windows
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            pass
        return True

    def watch() -> None:
        while os.getppid() == first_parent and reloader_alive():
            time.sleep(1.0)
        print("minirouter: the reloader has gone; stopping", file=sys.stderr, flush=True)
        os._exit(1)

    threading.Thread(target=watch, name="minirouter-orphan-watch", daemon=True).start()


def watched_files(folders: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Modification time and size of the .py and .html files under ``folders``
    (every file under a folder named ``public``), by path."""
    snapshot: dict[str, tuple[int, int]] = {}
    walked: set[tuple[str, bool]] = set()
    for folder in folders:
        take_all = os.path.basename(os.path.normpath(folder)) == "public"
        # Into linked folders too, as the app routes them; each real folder once, so a link loop ends.
        for parent, dirs, files in os.walk(folder, followlinks=True):
            real = (os.path.realpath(parent), take_all)  # public/ is walked whole even if linked into the app
            if real in walked:
                dirs[:] = []
                continue
            walked.add(real)
            dirs[:] = [name for name in dirs if _is_watched_folder(parent, name, folder)]
            for name in files:
                if not (take_all or name.endswith((".py", ".html"))):
                    continue
                path = os.path.join(parent, name)
                try:
                    stat = os.stat(path)
                except OSError:
                    continue  # removed between listing and stat: the next poll sees it gone
                snapshot[path] = (stat.st_mtime_ns, stat.st_size)
    return snapshot


def _is_watched_folder(parent: str, name: str, top: str) -> bool:
    """Not ``__pycache__`` nor hidden, nor a link to a folder above it, which the app
    refuses (and which would have the watcher walk a whole tree on every poll)."""
    if name == "__pycache__" or name.startswith("."):
        return False
    path = os.path.join(parent, name)
    return not (os.path.islink(path) and _links_to_an_ancestor(path, parent, top))


def run_with_reloader(
    command: list[str], folders: list[str], *, interval: float = 0.5, listen: Optional[tuple[str, int]] = None
) -> int:
    """Run ``command`` as a child process and restart it whenever a watched
    file changes; returns 0 on Ctrl-C or SIGTERM, after stopping the child,
    and 2 when the child exits with 2 (argparse's status for a bad argument).
    The child calls ``exit_with_reloader()`` (``serve`` does), so that it
    stops when this process is killed outright too.

    ``listen``, the child's (host, port), is tried first: a child that cannot
    listen there would be waited on for a file change that cannot help, so
    that is an error at once instead: 2 for a host that names no address (a
    bad argument), 1 for the rest (the port taken, say)."""
    if listen is not None:
        host, port = listen
        problem = _listen_problem(host, port)
        if problem is not None:
            status, reason = problem
            print(f"minirouter: error: cannot listen on {host}:{port}: {reason}", file=sys.stderr)
            return status

    _raise_keyboard_interrupt_on_sigterm()
    snapshot = watched_files(folders)
    child = _start_child(command)
    reported_exit = False
    try:
        while True:
            time.sleep(interval)
            current = watched_files(folders)
            if current != snapshot:
                changed = sorted({path for path, _ in set(current.items()) ^ set(snapshot.items())})
                snapshot = current
                _forget_bytecode(changed)
                more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
                print(f"minirouter: {_display_path(changed[0], os.getcwd())}{more} changed, restarting",
                      file=sys.stderr)
                if _stop_child(child):
                    return 0  # Ctrl-C while it stopped: no new child
                child, reported_exit = _start_child(command), False
            elif child.poll() is not None and not reported_exit:
                if child.returncode == 2:  # argparse's status for a bad argument, which no save can fix
                    print("minirouter: the server exited with status 2 (a bad argument); stopping", file=sys.stderr)
                    return 2
                # Typically a route that no longer imports: keep watching, so saving the fix restarts it.
                print(f"minirouter: the server exited with status {child.returncode}; "
                      "waiting for a file to change", file=sys.stderr)
                reported_exit = True
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_child(child)


def _start_child(command: list[str]) -> subprocess.Popen[bytes]:
    import subprocess

    env = dict(os.environ)
    env[_RELOADER_PARENT_ENV] = str(os.getpid())
    # The child may run `-m minirouter`: let it find this very file even when it is not on the path.
    # Not from site-packages, where it finds it anyway: a folder on PYTHONPATH comes before the
    # standard library, so an old backport installed there (pathlib, typing) would replace it.
    here = os.path.dirname(os.path.abspath(__file__))
    if not _is_site_folder(here):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), here) if p)
    return subprocess.Popen(command, env=env)


def _is_site_folder(folder: str) -> bool:
    """Whether ``folder`` is where installed packages live (site-packages)."""
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    site_folders = [paths["purelib"], paths["platlib"], site.getusersitepackages()]
    site_folders += getattr(site, "getsitepackages", list)()  # (missing in old virtualenvs)
    return any(_same_file(folder, other) for other in site_folders if os.path.isdir(other))


def _stop_child(child: subprocess.Popen[bytes]) -> bool:
    """Stop the child, killed if it takes over 5 s; True if a Ctrl-C came meanwhile."""
    import subprocess

    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        except KeyboardInterrupt:  # a (second) Ctrl-C: kill it now, and say so
            child.kill()
            child.wait()
            return True
    return False


def _listen_problem(host: str, port: int) -> Optional[tuple[int, str]]:
    """Why a server could not listen on host:port now, with the exit status
    it calls for: 2 for a host that names no address (a bad argument), 1 for
    the rest (the port taken, an address not this machine's); or None."""

    try:
        _bind_probe(host, port)
    except socket.gaierror as error:
        return 2, error.strerror or str(error)
    except (ValueError, UnicodeError) as error:  # a name the resolver cannot even encode
        return 2, str(error)
    except OSError as error:
        return 1, error.strerror or str(error)
    return None


def _bind_probe(host: str, port: int) -> int:
    """Bind a socket to host:port as waitress binds (reusing an address whose
    connections are closing), close it, and return the port it got; OSError
    (or ValueError, for a name that cannot be encoded) when that cannot be done."""

    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE  # "[::1]" is ::1
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        return int(probe.getsockname()[1])


def free_port(host: str) -> int:
    """A port free on ``host`` now, or 0 (any) when ``host`` cannot be bound:
    the server says why. For a reloaded server on port 0, chosen once by the
    watcher, so that each restarted server listens on the same one."""
    try:
        return _bind_probe(host, 0)
    except (OSError, ValueError):
        return 0


def local_allowed_hosts(host: str) -> list[str]:
    """The host names to allow for a server listening on ``host``, when that is this
    machine only (a loopback address, or ``localhost``): its own names, so a web page
    whose domain is made to resolve to it (DNS rebinding) is refused. Empty for any
    other address, which other machines reach by names only the deployer knows."""
    own_names = ["localhost", ".localhost", "127.0.0.1", "[::1]"]
    if host.lower().rstrip(".") == "localhost":
        return own_names
    bare = host.removeprefix("[").removesuffix("]")
    address = _ip_address(bare)
    if address is None or not address.is_loopback:
        return []
    # The address as given (curl sends it so) and as browsers write it (127.1 is 127.0.0.1).
    spellings = [bare, address.compressed] if address.version == 4 else [f"[{bare}]", f"[{address.compressed}]"]
    return own_names + [name for name in dict.fromkeys(spellings) if name not in own_names]


def _ip_address(text: str) -> Union[ipaddress.IPv4Address, ipaddress.IPv6Address, None]:
    """An IP address, in any form the system's resolver reads one (``127.1`` too); else None."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def _forget_bytecode(paths: Iterable[str]) -> None:
    """Remove the compiled copies of changed .py files. Python trusts one while
    the source has the same size and modification second, so an edit saved
    within the second of the last would otherwise be served stale."""
    for path in paths:
        if path.endswith(".py"):
            try:
                os.remove(importlib.util.cache_from_source(path))
            except (OSError, NotImplementedError):  # none written, or no cache on this Python
                pass


def _raise_keyboard_interrupt_on_sigterm() -> Any:
    """SIGTERM takes the same way out as Ctrl-C (`kill <reloader>` must stop the child
    too); the handler it replaces, or None off the main thread, where none can be set."""
    import signal

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        return signal.signal(signal.SIGTERM, handler)
    return None


# ---------------------------------------------------------------------------
# Command line: python -m minirouter serves an app folder, lists its routes
# or prints its OpenAPI document, so a broken tree fails in CI, not in production.
# ---------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m minirouter`` and the ``minirouter`` script; returns the exit status."""
    parser = _argument_parser()
    args = parser.parse_args(argv)
    if not os.path.isdir(args.app_dir):
        # Exits with status 2, like any other bad argument.
        args.subparser.error(f"the app folder {args.app_dir!r} does not exist (or is not a folder)")
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except BrokenPipeError:
        # `minirouter openapi | head`: the reader left early, which is no reason for a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _argument_parser() -> argparse.ArgumentParser:
    import argparse  # imported here: only the command line needs it

    parser = argparse.ArgumentParser(prog="minirouter", description="Serve and inspect a folder of route.py files.")
    parser.add_argument("--version", action="version", version=f"minirouter {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    serve_parser = commands.add_parser(
        "serve", help="serve the app over HTTP",
        description="Serve the app with waitress when it is installed, else with wsgiref, "
        "logging one line per request.",
    )
    _add_app_dir(serve_parser)
    serve_parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve_parser.add_argument("--port", type=_port, default=8000,
                              help="port to listen on, 0 for any free port (default: %(default)s)")
    serve_parser.add_argument(
        "--reload", action="store_true",
        help="restart when a .py or .html file in the app folder, or a file in public/ beside it, changes"
    )
    serve_parser.add_argument("--debug", action="store_true", help="App(debug=True): tracebacks in 500 answers")
    serve_parser.add_argument("--openapi-url", metavar="PATH", help="also serve the OpenAPI document at PATH")
    serve_parser.add_argument(
        "--allowed-host", action="append", default=[], metavar="NAME",
        help="answer to this host name too (repeatable); on 127.0.0.1, localhost or ::1 only this machine's "
        "names and these are served, elsewhere only these when given",
    )
    serve_parser.set_defaults(command=_serve_command, subparser=serve_parser)

    routes_parser = commands.add_parser(
        "routes", help="print the route table",
        description="Print the route table, one line per route: URL pattern, methods (with the automatic "
        "HEAD and OPTIONS), file, caching. Exits with status 1 and the start-up error when the "
        "route tree is invalid.",
    )
    _add_app_dir(routes_parser)
    routes_parser.set_defaults(command=_routes_command, subparser=routes_parser)

    openapi_parser = commands.add_parser(
        "openapi", help="print an OpenAPI 3.1 document",
        description="Print an OpenAPI 3.1 document (JSON) built from the route files and the "
        "handlers' docstrings.",
    )
    _add_app_dir(openapi_parser)
    openapi_parser.add_argument("--title", help="info.title (default: the app folder's name)")
    openapi_parser.add_argument("--api-version", default="0.1.0", help="info.version (default: %(default)s)")
    openapi_parser.set_defaults(command=_openapi_command, subparser=openapi_parser)
    return parser


def _add_app_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "app_dir", nargs="?", default="app", metavar="APP_DIR",
        help="the folder of route.py files (default: %(default)s)",
    )


def _port(text: str) -> int:
    import argparse

    if not (text.isascii() and text.isdigit()) or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return int(text)


def _load_app(app_dir: str, **options: Any) -> Optional[App]:
    # A broken tree is the error users meet daily: say which file and why, without our frames.
    try:
        return App(app_dir, **options)
    except StartupError as error:
        print(f"minirouter: error: {error}", file=sys.stderr)
        cause = error.__cause__
        if cause is not None and not isinstance(cause, SyntaxError):  # the message shows a syntax error whole
            print("".join(traceback.format_exception(type(cause), cause, cause.__traceback__)).rstrip(),
                  file=sys.stderr)
        return None


def _load_app_quietly(app_dir: str) -> Optional[App]:
    # What a route prints while it is imported goes to stderr: `openapi > openapi.json`
    # must hold the document alone.
    with contextlib.redirect_stdout(sys.stderr):
        return _load_app(app_dir)


def _serve_command(args: argparse.Namespace) -> int:
    # A --host that names no address is a bad argument (2) whichever server
    # would have found out, and with --reload too; a taken port is not (1).
    problem = _listen_problem(args.host, 0)  # port 0: only the host is tried here
    if problem is not None and problem[0] == 2:
        args.subparser.error(f"cannot listen on {args.host}:{args.port}: {problem[1]}")
    try:
        _openapi_url(args.openapi_url)  # bad ones are bad arguments, before --reload starts a child
        _AllowedHosts(args.allowed_host)
    except ValueError as error:
        args.subparser.error(str(error))
    if args.reload and not os.environ.get(_RELOADER_PARENT_ENV):
        # Port 0 is chosen once, here: each restarted child would otherwise listen somewhere new.
        port = args.port or free_port(args.host)
        command = [sys.executable, "-m", "minirouter", "serve", args.app_dir, "--host", args.host,
                   "--port", str(port)]
        command += ["--debug"] if args.debug else []
        command += ["--openapi-url", args.openapi_url] if args.openapi_url is not None else []
        command += [f"--allowed-host={name}" for name in args.allowed_host]
        return run_with_reloader(command, _reload_folders(args.app_dir), listen=(args.host, port))
    _log_to_stderr()
    try:
        # Imported first: an app folder named "waitress" would take its place, and
        # the App's check for a package name already in use then says so.
        importlib.import_module("waitress")
    except ImportError:
        pass  # serve() falls back to wsgiref
    # On a loopback address only this machine's own names are served (and those
    # --allowed-host adds): a page whose domain is made to resolve to 127.0.0.1
    # (DNS rebinding) gets a 400.
    hosts = list(args.allowed_host) + local_allowed_hosts(args.host)
    # A bad --openapi-url or --allowed-host was refused above, before --reload.
    app = _load_app(args.app_dir, debug=args.debug, openapi_url=args.openapi_url, allowed_hosts=hosts or None)
    if app is None:
        return 1
    try:
        serve(app, args.host, args.port)
    except ValueError as error:  # waitress: a host/port it refuses all the same
        args.subparser.error(f"cannot listen on {args.host}:{args.port}: {error}")
    except OSError as error:  # most often: the port is taken
        print(f"minirouter: error: cannot listen on {args.host}:{args.port}: {error.strerror or error}",
              file=sys.stderr)
        return 1
    return 0


def _reload_folders(app_dir: str) -> list[str]:
    # Watched even before it exists: the App looks for it only when it starts.
    return [app_dir, os.path.join(os.path.dirname(os.path.abspath(app_dir)), "public")]


def _log_to_stderr() -> None:
    # Turns on the access log and start-up messages; does nothing if logging is already configured.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S"
    )


def _routes_command(args: argparse.Namespace) -> int:
    app = _load_app_quietly(args.app_dir)
    if app is None:
        return 1
    return _write_output("\n".join(format_route_table(app.route_table())))


def _openapi_command(args: argparse.Namespace) -> int:
    app = _load_app_quietly(args.app_dir)
    if app is None:
        return 1
    return _write_output(jsonlib.dumps(openapi_document(app, title=args.title, version=args.api_version),
                                       indent=2, ensure_ascii=False))


def _write_output(text: str) -> int:
    """Print a command's output; a full disk is a one-line error and status 1, not a traceback."""
    if sys.stdout is None:  # started with its standard output closed
        print("minirouter: error: cannot write the output: standard output is closed", file=sys.stderr)
        return 1
    try:
        if text:
            print(text)
        sys.stdout.flush()  # here, where a failure can be told, not at exit
    except BrokenPipeError:
        raise  # `| head` left: main() handles it
    except OSError as error:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        print(f"minirouter: error: cannot write the output: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # `python -m minirouter` runs this file as __main__ while route modules import
    # `minirouter`: hand over to that module, so there is one Response class, not two.
    _name = __spec__.name if __spec__ is not None else os.path.splitext(os.path.basename(__file__))[0]
    sys.exit(importlib.import_module(_name).main())
