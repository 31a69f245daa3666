"""Shared helpers for the unit tests of minirouter's core.

They build an app folder on disk, call the app through
`wsgiref.validate.validator`, and build WSGI environs by hand for the cases a
client cannot produce (raw request targets, odd Content-Length values).
"""
from __future__ import annotations

import importlib
import io
import json as jsonlib
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any, Iterable
from wsgiref.validate import validator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from minirouter import App, TestClient  # noqa: E402


def unique_name(prefix: str = "site") -> str:
    """A package name no other test uses (each App imports its folder as a package)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write `files` (relative path -> source) under `root`; sources are dedented."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    return root


def make_app_dir(tmp_path: Path, files: dict[str, str | bytes], *, name: str | None = None) -> Path:
    """Write an app folder with a unique basename under tmp_path and return it.

    In sources, the placeholder `PKG` is replaced by the package name."""
    name = name or unique_name()
    files = {rel: (src.replace("PKG", name) if isinstance(src, str) else src) for rel, src in files.items()}
    return write_tree(tmp_path / name, files)


def make_app(tmp_path: Path, files: dict[str, str | bytes], *, name: str | None = None, **app_kwargs: Any) -> App:
    """Write `files` into a fresh folder and build an App from it."""
    return App(str(make_app_dir(tmp_path, files, name=name)), **app_kwargs)


def client(app: Any) -> TestClient:
    """A TestClient that checks every exchange with wsgiref's PEP 3333 validator."""
    return TestClient(validator(app))


def package_of(app_dir: Path) -> str:
    return Path(app_dir).name


def import_from_app(app_dir: Path, dotted: str):
    """The module `<package>.<dotted>` as the routes of that app see it."""
    return importlib.import_module(f"{package_of(app_dir)}.{dotted}")


# --- hook apps: a route that calls a function the test installs --------------

HOOK_FILES = {
    "_lib/hook.py": """
        factory = None
        state = {}
        """,
    "hook/route.py": """
        from PKG._lib import hook

        def GET(request, context):
            return hook.factory(request, context)

        def POST(request, context):
            return hook.factory(request, context)
        """,
    "hook/[...rest]/route.py": """
        from PKG._lib import hook

        def GET(request, context):
            return hook.factory(request, context)

        def POST(request, context):
            return hook.factory(request, context)
        """,
}


class HookApp:
    """An app whose `/hook` (and `/hook/...`) handlers call `hook.factory(request, context)`."""

    def __init__(self, tmp_path: Path, extra_files: dict[str, str] | None = None, **app_kwargs: Any):
        files = dict(HOOK_FILES)
        files.update(extra_files or {})
        self.dir = make_app_dir(tmp_path, files)
        self.app = App(str(self.dir), **app_kwargs)
        self.hook = import_from_app(self.dir, "_lib.hook")
        self.client = client(self.app)

    def set(self, factory):
        self.hook.factory = factory
        return self


# --- hand-built environs -------------------------------------------------------

class RecordingInput:
    """A wsgi.input that records every read call and the bytes it handed out."""

    def __init__(self, data: bytes = b""):
        self._buf = io.BytesIO(data)
        self.calls: list[tuple[str, Any]] = []
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        self.calls.append(("read", size))
        chunk = self._buf.read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        self.calls.append(("readline", size))
        chunk = self._buf.readline(size)
        self.bytes_read += len(chunk)
        return chunk

    def readlines(self, hint: int = -1) -> list[bytes]:
        self.calls.append(("readlines", hint))
        lines = self._buf.readlines(hint)
        self.bytes_read += sum(len(x) for x in lines)
        return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line


def make_environ(
    method: str = "GET",
    path_info: str = "/",
    *,
    query: str = "",
    request_uri: str | None = None,
    raw_uri: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    wsgi_input: Any = None,
    content_length: str | None = None,
    content_type: str | None = None,
    input_terminated: bool | None = None,
    scheme: str = "http",
    host: str | None = "testserver",
) -> dict:
    """A PEP 3333 environ; `path_info` is a latin-1 str as a server gives it."""
    if wsgi_input is None:
        wsgi_input = RecordingInput(body or b"")
    if content_length is None and body:
        content_length = str(len(body))
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80" if scheme == "http" else "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": wsgi_input,
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if host is not None:
        environ["HTTP_HOST"] = host
    if request_uri is not None:
        environ["REQUEST_URI"] = request_uri
    if raw_uri is not None:
        environ["RAW_URI"] = raw_uri
    if content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    if input_terminated is not None:
        environ["wsgi.input_terminated"] = input_terminated
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            environ["HTTP_" + key] = value
    return environ


def latin1(text: str) -> str:
    """What a WSGI server puts in PATH_INFO for a decoded UTF-8 path (PEP 3333)."""
    return text.encode("utf-8").decode("latin-1")


class Result:
    def __init__(self, status_line: str, headers: list[tuple[str, str]], body: bytes):
        self.status_line = status_line
        self.status = int(status_line.split(" ", 1)[0])
        self.header_list = headers
        self.body = body

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.header_list if k.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        values = self.get_all(name)
        return ", ".join(values) if values else None

    def json(self) -> Any:
        return jsonlib.loads(self.body.decode("utf-8"))

    def __repr__(self) -> str:
        return f"<Result {self.status_line} {self.header_list} {self.body[:200]!r}>"


def call(app: Any, environ: dict, *, validate: bool = True) -> Result:
    """Run one request through `app` (wrapped in the validator unless told not to)."""
    wsgi = validator(app) if validate else app
    captured: dict[str, Any] = {}

    def start_response(status, headers, exc_info=None):
        captured["status"] = status
        captured["headers"] = list(headers)

        def write(data: bytes) -> None:
            captured.setdefault("written", []).append(data)

        return write

    iterable = wsgi(environ, start_response)
    chunks: list[bytes] = []
    try:
        for chunk in iterable:
            chunks.append(chunk)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    body = b"".join(captured.get("written", [])) + b"".join(chunks)
    return Result(captured["status"], captured["headers"], body)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def allow_set(value: str | None) -> list[str]:
    return [m.strip() for m in (value or "").split(",") if m.strip()]


def assert_json_error(status: int, headers_get, body: bytes, expected_status: int, *, head: bool = False) -> dict | None:
    """A framework error: the status, JSON Content-Type, a matching Content-Length, {"error": str}."""
    assert status == expected_status
    assert media_type(headers_get("content-type")) == "application/json"
    if head:
        assert body == b""
        return None
    assert headers_get("content-length") == str(len(body))
    data = jsonlib.loads(body.decode("utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"]
    return data


def route_source(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def cookie_pairs(set_cookie_values: Iterable[str]) -> dict[str, str]:
    """name -> raw value of each Set-Cookie header."""
    out = {}
    for line in set_cookie_values:
        first = line.split(";", 1)[0]
        name, _, value = first.partition("=")
        out[name.strip()] = value.strip()
    return out


def popen_that_stops_on_ctrl_c(args: list[str], **options: Any) -> subprocess.Popen:
    """Popen for a test that sends the child SIGINT. A shell without job control
    starts background commands with SIGINT ignored, which a child inherits, and
    Python then installs no KeyboardInterrupt handler: un-ignore it for the child."""
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a handler is reset to default by exec
    try:
        return subprocess.Popen(args, **options)
    finally:
        signal.signal(signal.SIGINT, previous)


_COUNTING_COMPILES = """
import importlib._bootstrap_external as external
compiled = []
source_to_code = external.SourceLoader.source_to_code
def counting(self, data, path, *args, **kwargs):
    compiled.append(path)
    return source_to_code(self, data, path, *args, **kwargs)
external.SourceLoader.source_to_code = counting
"""


def files_compiled_at_start(code: str, folder: Path) -> int:
    """How many files under ``folder`` a fresh Python, where it may write no
    bytecode (PYTHONDONTWRITEBYTECODE), compiles from source, rather than
    reads from __pycache__, while it runs ``code``."""
    script = _COUNTING_COMPILES + code + f"\nprint(sum(path.startswith({str(folder)!r}) for path in compiled))\n"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "SOURCE_DATE_EPOCH": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                          cwd=folder)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])
