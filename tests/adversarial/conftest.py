"""Fixtures for the adversarial tests: a probe app that reports what the
framework parsed, a public/ folder with traps around it, and a waitress
server for the cases that must be seen on the wire.

The probe routes answer with what `request` made of the input (query pairs,
cookies, JSON, form fields, URL), so each test states the parse it expects;
`/inject` tries to set whatever header, cookie or redirect the query names,
so the header-injection tests can check the value never reaches the wire.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import LiveServer  # tests/conftest.py, imported by pytest first
from helpers import call, client, make_app_dir, make_environ, Result
from minirouter import App

SECRET = b"TOP-SECRET: this file is outside public/"

PROBE_FILES: dict[str, str] = {
    "echo/route.py": '''
        import hashlib

        from minirouter import Response, UploadFile


        def _describe(request):
            return {
                "path": request.path,
                "url": request.url,
                "query": [list(pair) for pair in request.search_params.items()],
                "cookies": dict(request.cookies),
            }


        def GET(request):
            return _describe(request)


        def POST(request):
            mode = request.search_params.get("mode", "json")
            if mode == "json":
                # repr: any value the parser hands over can be shown, so the
                # test sees exactly what the handler got.
                return {"json": repr(request.json())}
            if mode == "raw-json":
                return Response.json(request.json())  # echo the value itself
            if mode == "form":
                fields = []
                for name, value in request.form().items():
                    if isinstance(value, str):
                        fields.append([name, value])
                    else:
                        data = value.read()
                        fields.append([name, {
                            "filename": value.filename,
                            "content_type": value.content_type,
                            "size": value.size,
                            "read": len(data),
                            "sha256": hashlib.sha256(data).hexdigest(),
                        }])
                return {"form": fields}
            if mode == "text":
                return {"text": request.text()}
            body = request.body()
            return {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        ''',
    # Not a route: a module beside one is never reachable.
    "echo/helper.py": '''
        SECRET = "module beside a route"
        ''',
    "inject/route.py": '''
        from minirouter import Response, cookies, redirect


        def _attempt(where, value):
            if where == "header":
                return Response("ok", headers={"X-Probe": value})
            if where == "header-name":
                return Response("ok", headers={value: "1"})
            if where == "append":
                response = Response("ok")
                response.headers.append("X-Probe", value)
                return response
            if where == "content-disposition":
                return Response(b"x", headers={
                    "Content-Disposition": f'attachment; filename="{value}"'})
            if where == "redirect":
                redirect(value)
            if where == "response-redirect":
                return Response.redirect(value)
            if where == "cookie-value":
                response = Response("ok")
                response.cookies.set("probe", value)
                return response
            if where == "cookie-name":
                response = Response("ok")
                response.cookies.set(value, "1")
                return response
            if where == "cookie-path":
                response = Response("ok")
                response.cookies.set("probe", "1", path=value)
                return response
            if where == "cookie-domain":
                response = Response("ok")
                response.cookies.set("probe", "1", domain=value)
                return response
            if where == "cookie-same-site":
                response = Response("ok")
                response.cookies.set("probe", "1", same_site=value)
                return response
            if where == "jar":
                cookies().set("probe", value)
                return Response("ok")
            if where == "jar-path":
                cookies().set("probe", "1", path=value)
                return Response("ok")
            raise AssertionError(where)


        def GET(request):
            where = request.search_params.get("where")
            value = request.search_params.get("value", "")
            if request.search_params.has("catch"):
                try:
                    return _attempt(where, value)
                except (ValueError, TypeError) as exc:
                    return Response.json({"refused": str(exc)}, status=400)
            return _attempt(where, value)
        ''',
    "seg/[id]/route.py": '''
        def GET(request, context):
            return {"params": context.params, "path": request.path}
        ''',
    "rest/[...slug]/route.py": '''
        def GET(request, context):
            return {"params": context.params}
        ''',
    "opt/[[...slug]]/route.py": '''
        def GET(request, context):
            return {"params": context.params}
        ''',
    "(group)/grouped/route.py": '''
        def GET():
            return {"route": "grouped"}
        ''',
    "_private/route.py": '''
        def GET():
            return {"leak": "a _private folder was routed"}
        ''',
    "%5Funder/route.py": '''
        def GET():
            return {"route": "_under"}
        ''',
    "only-get/route.py": '''
        def GET():
            return {"route": "only-get"}
        ''',
}

PUBLIC_FILES: dict[str, bytes] = {
    "hello.txt": b"hello from public/\n",
    "sub/page.txt": b"page in a subfolder\n",
    "sub/.secret": b"dotfile in a subfolder\n",
    ".env": b"SECRET_KEY=dotfile at the root\n",
    ".git/config": b"[core]\n\tdotfolder\n",
    "caf\u00e9.txt": "caf\u00e9 in UTF-8\n".encode(),
    "big.bin": bytes(range(256)) * 1024,  # 256 KiB
}


class Probe:
    """The probe app over a temporary folder, with its public/ folder."""

    def __init__(self, root: Path, **app_kwargs: Any) -> None:
        self.root = root
        self.app_dir = make_app_dir(root, PROBE_FILES)
        self.public = root / "public"
        for rel, data in PUBLIC_FILES.items():
            path = self.public / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        # Traps outside public/: a secret file, a folder, and symlinks to them.
        self.secret = root / "secret.txt"
        self.secret.write_bytes(SECRET)
        outside = root / "outside"
        outside.mkdir()
        (outside / "inner.txt").write_bytes(SECRET)
        # A folder whose name starts like public/'s: a prefix check on the
        # string alone ("/x/public" is a prefix of "/x/public-evil") would let it through.
        (root / "public-evil").mkdir()
        (root / "public-evil" / "x.txt").write_bytes(SECRET)
        os.symlink(self.secret, self.public / "link-out.txt")
        os.symlink(outside, self.public / "dir-out")
        os.symlink(self.public / "hello.txt", self.public / "link-in.txt")
        self.app = App(str(self.app_dir), public_dir=str(self.public), **app_kwargs)
        self.client = client(self.app)

    def call(self, environ: dict, *, validate: bool = True) -> Result:
        return call(self.app, environ, validate=validate)

    def raw(self, target: str, method: str = "GET", **kwargs: Any) -> Result:
        """A request whose raw target is exactly `target` (as a server passes
        it in REQUEST_URI), with PATH_INFO decoded as PEP 3333 says."""
        from urllib.parse import unquote_to_bytes

        path = target.split("?", 1)[0]
        query = target.split("?", 1)[1] if "?" in target else ""
        path_info = unquote_to_bytes(path).decode("latin-1")
        environ = make_environ(method, path_info, query=query, request_uri=target, **kwargs)
        return self.call(environ)

    def decoded(self, path_info: str, method: str = "GET", **kwargs: Any) -> Result:
        """A request from a server that passes only PATH_INFO (no raw target)."""
        return self.call(make_environ(method, path_info, **kwargs))


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Probe:
    # One per test module: building an App imports its routes, and no test
    # changes the probe app, so the modules share it.
    return Probe(tmp_path_factory.mktemp("probe"))


@pytest.fixture(scope="module")
def probe_server(probe: Probe) -> Iterator[LiveServer]:
    server = LiveServer(probe.app, threads=4)
    try:
        yield server
    finally:
        server.settle()
        server.stop()




def server_port(server: LiveServer) -> int:
    return int(server.server.effective_port)


def raw_exchange(port: int, data: bytes, *, timeout: float = 5.0, limit: int = 1 << 20) -> bytes:
    """Send `data` as is on a fresh loopback connection; read until the server
    closes, `timeout` seconds pass or `limit` bytes arrive (all bounded)."""
    deadline = time.monotonic() + timeout
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused early; read what it said
        while len(received) < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return bytes(received)


def split_response(raw: bytes) -> tuple[int, dict[str, list[str]], bytes]:
    """(status, lower-case header name -> values, body) of one raw response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status, headers, body


def assert_error(result: Any, *statuses: int) -> dict:
    """A framework error: one of `statuses`, JSON `{"error": reason}` with a reason."""
    status = result.status
    assert status in statuses, (status, getattr(result, "text", None) or getattr(result, "body", b"")[:300])
    body = result.content if hasattr(result, "content") else result.body
    import json

    data = json.loads(body.decode("utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"]
    return data
