"""Coverage-guided fuzzing of minirouter's request parsers with atheris.

Not run in CI (tests/test_fuzz.py holds the quick hypothesis properties).
Every input goes to one parser, picked by its first byte; the parser must
either parse (and keep the invariants checked below) or refuse with
minirouter's own HTTPError carrying a 4xx. Anything else is a finding:
atheris stops and writes the input to a crash-<hash> file.

How to run (Linux, Python 3.9-3.11; atheris builds against clang/libFuzzer):

    pip install atheris
    python fuzz/atheris_parsers.py -max_total_time=600           # ten minutes
    python fuzz/atheris_parsers.py -max_total_time=600 fuzz/corpus/   # keep a corpus
    python fuzz/atheris_parsers.py crash-<hash>                   # replay a finding
    python fuzz/atheris_parsers.py --smoke 20000                  # no atheris: random bytes

Options after the script name are libFuzzer's (-max_len=4096, -jobs=4, ...).
"""
from __future__ import annotations

import io
import os
import random
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl, unquote_to_bytes

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import minirouter  # noqa: E402
from minirouter import (  # noqa: E402
    App,
    HTTPError,
    Request,
    _byte_range,
    format_set_cookie,
    parse_cookie_header,
    parse_header_params,
    parse_query,
)

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_APP: App | None = None


def _app() -> App:
    """A small app built once: a [param] route, a catch-all and an echo."""
    global _APP
    if _APP is None:
        folder = Path(tempfile.mkdtemp(prefix="minirouter-fuzz-")) / "fuzzapp"
        files = {
            "seg/[id]/route.py": "def GET(request, context):\n    return {'id': context.params['id']}\n",
            "rest/[...slug]/route.py": "def GET(request, context):\n    return {'slug': context.params['slug']}\n",
            "echo/route.py": (
                "def POST(request):\n"
                "    mode = request.search_params.get('mode')\n"
                "    if mode == 'json':\n        return {'v': repr(request.json())}\n"
                "    return {'v': repr(request.form().items())}\n"
            ),
        }
        for rel, source in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(source)
        _APP = App(str(folder))
    return _APP


def _environ(method: str, path: str, **extra: object) -> dict:
    environ = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "fuzz", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "fuzz", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""), "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }
    environ.update(extra)
    return environ


def _serve(environ: dict) -> int:
    """Run one request through the app; a 5xx is a finding."""
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"] = int(status.split()[0])
        return lambda data: None

    body = _app()(environ, start_response)
    try:
        for _ in body:
            pass
    finally:
        getattr(body, "close", lambda: None)()
    assert captured["status"] < 500, (environ.get("REQUEST_URI"), captured)
    return captured["status"]


def _text(data: bytes) -> str:
    return data.decode("latin-1")  # what a WSGI server hands over (PEP 3333)


# --- one target per parser ---------------------------------------------------


def fuzz_query(data: bytes) -> None:
    query = _text(data)
    pairs = parse_query(query)
    if query.isascii() and ";" not in query:
        assert pairs == parse_qsl(query, keep_blank_values=True), query


def fuzz_cookie(data: bytes) -> None:
    for name in parse_cookie_header(_text(data)):
        assert name and name == name.strip() and ";" not in name and "=" not in name


def fuzz_set_cookie_round_trip(data: bytes) -> None:
    value = data.decode("utf-8", "replace")
    if set(value) & set("\r\n\0"):
        try:
            format_set_cookie("n", value)
        except ValueError:
            return
        raise AssertionError("CR/LF/NUL accepted in a cookie value")
    line = format_set_cookie("n", value, max_age=1)
    assert parse_cookie_header(line.split(";", 1)[0]) == {"n": value}


def fuzz_header_params(data: bytes) -> None:
    main, params = parse_header_params(_text(data))
    assert main == main.strip().lower()


def fuzz_range(data: bytes) -> None:
    size = data[0] * 37 if data else 0
    result = _byte_range(_text(data[1:]), size)
    if isinstance(result, tuple):
        first, last = result
        assert 0 <= first <= last < size, (data, result)
    else:
        assert result in (None, "unsatisfiable")


def fuzz_path(data: bytes) -> None:
    raw = _text(data).split("?", 1)[0].split("#", 1)[0]
    target = "/seg/" + raw
    raw_bytes = raw.encode("latin-1")
    path_info = unquote_to_bytes(target.encode("latin-1")).decode("latin-1")
    status = _serve(_environ("GET", path_info, REQUEST_URI=target))
    if "/" not in raw and raw:
        try:
            valid = not _BAD_ESCAPE.search(raw) and unquote_to_bytes(raw_bytes).decode("utf-8") is not None
        except UnicodeDecodeError:
            valid = False
        assert status == (200 if valid else 400), (target, status)


def fuzz_json(data: bytes) -> None:
    body = data
    _serve(_environ("POST", "/echo", QUERY_STRING="mode=json", CONTENT_TYPE="application/json",
                    CONTENT_LENGTH=str(len(body)), **{"wsgi.input": io.BytesIO(body)}))


def fuzz_form(data: bytes) -> None:
    multipart = bool(data) and data[0] & 1
    body = data[1:]
    if multipart:
        content_type = "multipart/form-data; boundary=b"
        body = b"--b\r\n" + body
    else:
        content_type = "application/x-www-form-urlencoded"
    _serve(_environ("POST", "/echo", QUERY_STRING="mode=form", CONTENT_TYPE=content_type,
                    CONTENT_LENGTH=str(len(body)), **{"wsgi.input": io.BytesIO(body)}))


def fuzz_request_headers(data: bytes) -> None:
    # Content-Length, Host, Cookie and the query all at once.
    parts = _text(data).split("\n", 3) + ["", "", "", ""]
    environ = _environ("GET", "/seg/x", QUERY_STRING=parts[0], HTTP_HOST=parts[1], HTTP_COOKIE=parts[2],
                       CONTENT_LENGTH=parts[3][:40])
    request = Request(environ)
    for read in (lambda: request.url, lambda: request.cookies, lambda: request.search_params,
                 request.content_length):
        try:
            read()
        except HTTPError as exc:
            assert 400 <= exc.status < 500, exc


TARGETS = [
    fuzz_query, fuzz_cookie, fuzz_set_cookie_round_trip, fuzz_header_params, fuzz_range,
    fuzz_path, fuzz_json, fuzz_form, fuzz_request_headers,
]


def one_input(data: bytes) -> None:
    if not data:
        return
    target = TARGETS[data[0] % len(TARGETS)]
    try:
        target(data[1:])
    except HTTPError as exc:
        if not 400 <= exc.status < 500:
            raise


def smoke(runs: int) -> None:
    """Random bytes through every target, for a machine without atheris."""
    rng = random.Random(os.environ.get("FUZZ_SEED", "0"))
    alphabet = b"%=&;+/\\.\"' \r\n\t\x00abcAF09-_[]{}:,\xff\xc3\xa9e"
    findings: dict[tuple[str, str], bytes] = {}
    for _ in range(runs):
        size = rng.randrange(0, 64)
        data = bytes(rng.choice(alphabet) if rng.random() < 0.8 else rng.randrange(256) for _ in range(size))
        try:
            one_input(data)
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            key = (TARGETS[data[0] % len(TARGETS)].__name__, type(exc).__name__)
            findings.setdefault(key, data)
    for (target, error), data in sorted(findings.items()):
        print(f"FINDING {target}: {error} on {data!r}")
    print(f"{runs} random inputs, {len(findings)} kinds of finding")
    if findings:
        sys.exit(1)


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--smoke":
        smoke(int(sys.argv[2]))
        return
    import atheris  # only needed for the coverage-guided run

    minirouter.logger.disabled = True  # a 500 is reported by the assertion, not the log
    atheris.instrument_all()
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
