"""The `minirouter` command: serve (with and without --reload), routes, openapi, and its errors.

Every command runs as a real subprocess (`python -m minirouter ...`) from the repository root's
module; servers listen on 127.0.0.1 at a free port and are killed, with their children, in teardown.
"""
from __future__ import annotations

import http.client
import logging
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import minirouter  # noqa: E402

HELLO = '''
def GET(request):
    """Say hello."""
    return {"version": 1}
'''

TREE = {
    "hello/route.py": HELLO,
    "comments/[id]/route.py": """
        revalidate = 60

        def GET(request, context):
            return {"id": context.params["id"]}

        def DELETE(request, context):
            return {"deleted": context.params["id"]}
        """,
    "shop/[...slug]/route.py": """
        dynamic = "force-static"

        def GET(request, context):
            return {"slug": context.params["slug"]}
        """,
    "forever/route.py": """
        revalidate = False

        def GET(request):
            return {}
        """,
    "static-minute/route.py": """
        dynamic = "force-static"
        revalidate = 60

        def GET(request):
            return {}
        """,
    "(admin)/users/route.py": """
        def POST(request):
            return {"created": True}
        """,
    "profile/page.html": "<h1>Profile</h1>\n",
}


def write_app(parent: Path, files: dict[str, str], name: str | None = None) -> Path:
    """An app folder with a unique basename (each App imports it as a package of that name)."""
    app_dir = parent / (name or f"cliapp_{uuid.uuid4().hex[:10]}")
    for rel, source in files.items():
        path = app_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return app_dir


def cli_env(extra_path: Path | None = None) -> dict[str, str]:
    paths = [str(p) for p in (extra_path, ROOT) if p is not None]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.pop("MINIROUTER_RELOADER_PARENT", None)
    return env


def run_cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "minirouter", *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`minirouter serve ...` in its own process group, output collected in a file."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None,
                 program: list[str] | None = None, port: int | None = None) -> None:
        self.port = free_port() if port is None else port
        self.log_path = cwd / f"server-{self.port}.log"
        self._log = open(self.log_path, "w+b")
        program = program or [sys.executable, "-m", "minirouter", "serve"]
        self.process = subprocess.Popen(
            [*program, *args, "--port", str(self.port)],
            cwd=cwd, env=env or cli_env(), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,  # so teardown can kill the reloader's child too
        )

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def wait_for(self, path: str, expected: bytes, timeout: float = 30) -> bytes:
        """Poll `path` until its body contains `expected`; bounded by `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last: bytes | str = b""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                status, body = self.get(path)
                if status == 200 and expected in body:
                    return body
                last = body
            except OSError as error:  # not listening yet, or restarting
                last = repr(error)
            time.sleep(0.1)
        pytest.fail(f"{path} never served {expected!r} (last: {last!r}); output:\n{self.output()}")

    def wait_for_output(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            time.sleep(0.1)
        pytest.fail(f"{text!r} never appeared in the output:\n{self.output()}")

    def stop(self) -> None:
        # The whole process group, even when the reloader is gone: its child may outlive it.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[object]:
    servers: list[Server] = []

    def start(*args: str, env: dict[str, str] | None = None, program: list[str] | None = None,
              port: int | None = None) -> Server:
        server = Server(list(args), tmp_path, env, program, port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def hide_waitress(tmp_path: Path) -> Path:
    """A folder to put first on PYTHONPATH, where `import waitress` fails."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "waitress.py").write_text("raise ImportError('waitress hidden by the test')\n")
    return blocker


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


# --- help, version, argument errors -----------------------------------------

@pytest.mark.parametrize("command, expected", [
    ([], ["serve", "routes", "openapi"]),
    (["serve"], ["APP_DIR", "--host", "--port", "--reload"]),
    (["routes"], ["APP_DIR", "route table"]),
    (["openapi"], ["APP_DIR", "OpenAPI 3.1"]),
])
def test_help_for_each_command(tmp_path: Path, command: list[str], expected: list[str]) -> None:
    result = run_cli(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: minirouter")
    for word in expected:
        assert word in result.stdout


def test_version(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"minirouter {minirouter.__version__}"


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: minirouter" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["serve", "routes", "openapi"])
def test_missing_folder_is_a_clear_error(tmp_path: Path, command: str) -> None:
    result = run_cli(command, "no_such_folder", cwd=tmp_path)
    assert result.returncode == 2
    assert "'no_such_folder' does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_default_folder_is_app_and_must_exist(tmp_path: Path) -> None:
    result = run_cli("routes", cwd=tmp_path)
    assert result.returncode == 2
    assert "'app' does not exist" in result.stderr
    write_app(tmp_path, {"hello/route.py": HELLO}, name="app")
    result = run_cli("routes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("/hello ")


@pytest.mark.parametrize("args, message", [
    (["serve", "--port", "http"], "not a port number"),
    (["serve", "--port", "70000"], "not a port number (0-65535)"),
    (["routes", "--colour"], "unrecognized arguments"),
    (["deploy"], "invalid choice"),
])
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr


# --- routes ----------------------------------------------------------------

def test_routes_prints_one_line_per_route(tmp_path: Path) -> None:
    app_dir = write_app(tmp_path, TREE)
    result = run_cli("routes", app_dir.name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()}
    assert set(rows) == {"/hello", "/comments/[id]", "/shop/[...slug]", "/users", "/profile", "/forever",
                         "/static-minute"}
    assert rows["/forever"][3] == "revalidate=false"
    assert rows["/static-minute"][3] == "force-static,revalidate=60s"
    assert rows["/hello"][1:] == ["GET,HEAD,OPTIONS", f"{app_dir.name}/hello/route.py", "-"]
    assert rows["/comments/[id]"][1:] == ["DELETE,GET,HEAD,OPTIONS", f"{app_dir.name}/comments/[id]/route.py",
                                          "revalidate=60s"]
    assert rows["/shop/[...slug]"][3] == "force-static"
    assert rows["/users"][1:3] == ["OPTIONS,POST", f"{app_dir.name}/(admin)/users/route.py"]
    assert rows["/profile"][1:3] == ["GET,HEAD,OPTIONS", f"{app_dir.name}/profile/page.html"]


def test_routes_of_the_example_app(tmp_path: Path) -> None:
    env_db = tmp_path / "comments.db"
    result = subprocess.run([sys.executable, "-m", "minirouter", "routes", "app"], cwd=ROOT,
                            env=dict(cli_env(), COMMENTS_DB=str(env_db), UPLOADS_DIR=str(tmp_path / "up")),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    urls = [line.split()[0] for line in result.stdout.splitlines()]
    assert "/comments/[id]" in urls
    assert urls == sorted(urls)


@pytest.mark.parametrize("files, expected", [
    ({"a/[id]/route.py": HELLO, "a/[slug]/x/route.py": HELLO}, ["[id]", "[slug]"]),
    ({"broken/route.py": "def GET(:\n"}, ["broken", "route.py", "SyntaxError"]),
    ({"empty/route.py": "x = 1\n"}, ["empty", "no handler"]),
    ({"(a)/same/route.py": HELLO, "(b)/same/route.py": HELLO}, ["(a)", "(b)"]),
    # exit() at import is a broken route: the CI check must not pass with nothing listed.
    ({"quits/route.py": "import sys\nsys.exit(0)\n"}, ["quits", "route.py", "SystemExit"]),
    ({"starred/route.py": "def GET(*args, flag):\n    return {}\n"}, ["starred", "keyword-only"]),
])
def test_routes_exits_1_on_an_invalid_tree(tmp_path: Path, files: dict[str, str], expected: list[str]) -> None:
    app_dir = write_app(tmp_path, files)
    result = run_cli("routes", app_dir.name, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("minirouter: error: ")
    for text in expected:
        assert text in result.stderr


def test_openapi_command_prints_a_document(tmp_path: Path) -> None:
    app_dir = write_app(tmp_path, TREE)
    result = run_cli("openapi", str(app_dir), "--title", "Shop", "--api-version", "2.0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["openapi"].startswith("3.1")
    assert document["info"] == {**document["info"], "title": "Shop", "version": "2.0"}
    assert document["paths"]["/hello"]["get"]["summary"] == "Say hello."
    broken = write_app(tmp_path, {"x/route.py": "import nowhere_to_be_found\n"})
    result = run_cli("openapi", str(broken), cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert "nowhere_to_be_found" in result.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("command", ["routes", "openapi"])
def test_output_that_cannot_be_written_is_a_one_line_error(tmp_path: Path, command: str) -> None:
    app_dir = write_app(tmp_path, TREE)
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "minirouter", command, str(app_dir)], cwd=tmp_path,
                                env=cli_env(), stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.endswith("\nminirouter: error: cannot write the output: No space left on device\n")
    assert "Traceback" not in result.stderr


# --- serve -----------------------------------------------------------------

def test_serve_answers_and_logs_each_request(tmp_path: Path, start_server) -> None:
    app_dir = write_app(tmp_path, TREE)
    server = start_server(app_dir.name, "--host", "127.0.0.1")
    assert json.loads(server.wait_for("/comments/7", b"7")) == {"id": "7"}
    status, _ = server.get("/nowhere")
    assert status == 404
    server.wait_for_output("GET /nowhere 404")
    line = next(line for line in server.output().splitlines() if "GET /comments/7 200" in line)
    assert "minirouter.access" in line
    assert line.rstrip().endswith("ms")


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path, start_server) -> None:
    # docker stop and systemd send SIGTERM; left at its default, it killed the server
    # mid-answer (and a container's PID 1 does not get it at all).
    server = start_server(write_app(tmp_path, TREE).name, "--host", "127.0.0.1")
    server.wait_for("/hello", b'"version":1')
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=20) == 0, server.output()


@pytest.mark.parametrize("program", ["serve", "run.py"])
def test_a_server_on_loopback_answers_only_to_this_machines_names(tmp_path: Path, start_server, example_site,
                                                                    program: str) -> None:
    # A page whose domain is made to resolve to 127.0.0.1 (DNS rebinding) is same-origin
    # to the browser: it could read and delete the comments of a local dev server.
    if program == "serve":
        server = start_server(write_app(tmp_path, TREE).name, "--host", "127.0.0.1", "--allowed-host", "myapp.test")
        server.wait_for("/hello", b'"version":1')
    else:
        site, env = example_site
        server = start_server("--allowed-host", "myapp.test", env=env, program=[sys.executable, str(site / "run.py")])
        server.wait_for("/hello", b"Hello World!")
    port = server.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"app.localhost:{port}", "myapp.test"):
        assert server.get("/hello", {"Host": host})[0] == 200, host
    for host in (f"rebind.attacker.example:{port}", "evil.example", "www.myapp.test"):
        assert server.get("/hello", {"Host": host})[0] == 400, host


@pytest.mark.parametrize("host, extra", [
    ("127.0.0.1", []), ("localhost", []), ("LOCALHOST.", []), ("::1", []), ("[::1]", []),
    ("127.0.0.2", ["127.0.0.2"]), ("127.1", ["127.1"]), ("0:0:0:0:0:0:0:1", ["[0:0:0:0:0:0:0:1]"]),
    ("0.0.0.0", None), ("192.168.1.5", None), ("::", None), ("example.com", None),
])
def test_local_allowed_hosts_are_this_machines_names_on_any_loopback_address(host: str, extra) -> None:
    # --host 127.0.0.2 listens on loopback too: without these names any Host was served there.
    from minirouter import local_allowed_hosts

    expected = [] if extra is None else ["localhost", ".localhost", "127.0.0.1", "[::1]", *extra]
    assert local_allowed_hosts(host) == expected


def test_serve_on_another_loopback_address_refuses_other_hosts(tmp_path: Path, start_server) -> None:
    server = start_server(write_app(tmp_path, TREE).name, "--host", "127.0.0.2")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.2", server.port, timeout=10)
            statuses = []
            for host in ("rebind.attacker.example", f"127.0.0.2:{server.port}"):
                connection.request("GET", "/hello", headers={"Host": host})
                answer = connection.getresponse()
                answer.read()
                statuses.append(answer.status)
            connection.close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        pytest.fail(server.output())
    assert statuses == [400, 200]


def test_run_py_application_answers_to_the_hosts_allowed_hosts_names(example_site) -> None:
    # What waitress-serve run:application and gunicorn serve: ALLOWED_HOSTS, else any host.
    site, env = example_site
    script = ("import run; hosts = run.application.allowed_hosts; "
              "print(None if hosts is None else sorted(hosts.names), None if hosts is None else hosts.suffixes)")
    for value, expected in [(None, "None None"), ("example.com, .example.org", "['example.com', 'example.org'] "
                                                                             "('.example.org',)")]:
        run_env = {key: val for key, val in env.items() if key != "ALLOWED_HOSTS"}
        if value is not None:
            run_env["ALLOWED_HOSTS"] = value
        result = subprocess.run([sys.executable, "-c", script], cwd=site, env=run_env, capture_output=True,
                                text=True, timeout=60)
        assert result.stdout.strip() == expected, result.stderr


def test_serve_without_waitress_uses_wsgiref(tmp_path: Path, start_server) -> None:
    blocker = hide_waitress(tmp_path)
    app_dir = write_app(tmp_path, TREE)
    server = start_server(app_dir.name, env=cli_env(extra_path=blocker))
    server.wait_for("/hello", b'"version":1')
    assert "waitress is not installed; serving with wsgiref" in server.output()
    server.wait_for_output("GET /hello 200")
    # The path is split before it is decoded, as under waitress: wsgiref's own
    # PATH_INFO is already decoded, so the target as sent must reach the app.
    status, body = server.get("/comments/a%2Fb")
    assert status == 200 and json.loads(body) == {"id": "a/b"}
    status, body = server.get("/comments/x%ZZ")
    assert status == 400 and b"percent" in body


def test_the_wsgiref_server_bounds_its_threads_and_lets_silent_clients_go(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    # Each connection holds a thread: 400 half-sent requests made 400 threads, for ever.
    import threading

    monkeypatch.setattr(minirouter, "WSGIREF_MAX_CONNECTIONS", 4)
    monkeypatch.setattr(minirouter, "WSGIREF_TIMEOUT", 0.5)
    app = minirouter.App(str(write_app(tmp_path, TREE)))
    server = minirouter._wsgiref_server(app, "127.0.0.1", 0)  # type: ignore[attr-defined]
    runner = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    before = threading.active_count()
    runner.start()
    port = server.server_port
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(12)]
    try:
        for sock in silent:
            sock.sendall(b"GET /hello HTTP/1.1\r\n")  # and never the rest
        time.sleep(0.3)
        assert threading.active_count() - before <= 1 + 4  # the accept loop and four connections
        # The silent ones are let go after WSGIREF_TIMEOUT, so others are served in time.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/hello")
        response = connection.getresponse()
        assert response.status == 200 and b'"version":1' in response.read()
        connection.close()
        time.sleep(1.0)  # every silent one let go by now, without a traceback each
        assert "Traceback" not in capfd.readouterr().err
    finally:
        for sock in silent:
            sock.close()
        server.shutdown()
        server.server_close()


def test_serve_with_openapi_url(tmp_path: Path, start_server) -> None:
    app_dir = write_app(tmp_path, TREE)
    server = start_server(app_dir.name, "--openapi-url", "/openapi.json")
    document = json.loads(server.wait_for("/openapi.json", b'"openapi"'))
    assert "/comments/{id}" in document["paths"]


def test_serve_invalid_tree_exits_1(tmp_path: Path) -> None:
    app_dir = write_app(tmp_path, {"broken/route.py": "def GET(:\n"})
    result = run_cli("serve", app_dir.name, "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 1
    assert "SyntaxError" in result.stderr


def test_serve_on_a_taken_port_exits_1(tmp_path: Path) -> None:
    app_dir = write_app(tmp_path, TREE)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", app_dir.name, "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "203.0.113.5"])  # the port taken; an address not this machine's
def test_serve_reload_where_it_cannot_listen_exits_1_at_once(tmp_path: Path, host: str) -> None:
    # No file change can free the port or make the address: waiting for one would be forever.
    app_dir = write_app(tmp_path, TREE)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", app_dir.name, "--reload", "--host", host, "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert f"cannot listen on {host}:{port}" in result.stderr
    assert "waiting for a file to change" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("reload", [[], ["--reload"]])
def test_serve_bad_openapi_url_exits_2(tmp_path: Path, reload: list) -> None:
    # With --reload too: the watcher waited for ever for a save that could not fix an argument.
    app_dir = write_app(tmp_path, TREE)
    result = run_cli("serve", app_dir.name, "--openapi-url", "openapi.json", "--port", str(free_port()), *reload,
                     cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    assert "openapi_url must be a path" in result.stderr


def test_openapi_and_routes_print_only_their_output_when_a_route_prints(tmp_path: Path) -> None:
    # `minirouter openapi > openapi.json` held "loading" before the document.
    app_dir = write_app(tmp_path, {"a/route.py": "print('loading a')\ndef GET():\n    return {}\n"})
    result = run_cli("openapi", app_dir.name, cwd=tmp_path)
    assert result.returncode == 0 and "/a" in json.loads(result.stdout)["paths"]
    assert "loading a" in result.stderr
    result = run_cli("routes", app_dir.name, cwd=tmp_path)
    assert result.returncode == 0 and "loading a" not in result.stdout and "/a" in result.stdout


def test_serve_an_app_folder_named_like_the_server_is_a_clear_start_up_error(tmp_path: Path) -> None:
    # The folder took waitress's place: an AttributeError traceback from serve().
    write_app(tmp_path, {"hello/route.py": HELLO}, name="waitress")
    result = run_cli("serve", "waitress", "--port", str(free_port()), cwd=tmp_path, timeout=30)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "AttributeError" not in result.stderr
    assert "waitress" in result.stderr and "minirouter: error:" in result.stderr


def test_reload_restarts_on_edit_and_survives_a_syntax_error(tmp_path: Path, start_server) -> None:
    app_dir = write_app(tmp_path, TREE)
    route = app_dir / "hello" / "route.py"
    server = start_server(app_dir.name, "--reload")
    server.wait_for("/hello", b'"version":1')

    route.write_text(HELLO.replace('"version": 1', '"version": 2'))
    server.wait_for("/hello", b'"version":2')

    route.write_text("def GET(request:\n")  # the child dies; the reloader must not
    server.wait_for_output("SyntaxError")
    server.wait_for_output("waiting for a file to change")
    assert server.process.poll() is None

    route.write_text(HELLO.replace('"version": 1', '"version": 3'))
    server.wait_for("/hello", b'"version":3')

    (app_dir / "added").mkdir()
    (app_dir / "added" / "route.py").write_text("def GET():\n    return {'added': True}\n")
    server.wait_for("/added", b'"added":true')


def test_reload_on_port_0_keeps_the_port_it_chose_across_restarts(tmp_path: Path, start_server) -> None:
    app_dir = write_app(tmp_path, TREE)
    server = start_server(app_dir.name, "--reload", port=0)
    server.wait_for_output("Serving on")
    server.port = int(re.findall(r"Serving on http://127\.0\.0\.1:(\d+)", server.output())[0])
    server.wait_for("/hello", b'"version":1')
    (app_dir / "hello" / "route.py").write_text(HELLO.replace('"version": 1', '"version": 2'))
    server.wait_for("/hello", b'"version":2')  # the restarted server, on the same port


@pytest.mark.parametrize("installed", [False, True])
def test_the_reloader_puts_minirouter_on_the_childs_path_only_where_it_is_not_installed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed: bool) -> None:
    # From site-packages the child finds it anyway; put on PYTHONPATH, that folder
    # would come before the standard library and an old backport there would win.
    import sysconfig

    folder = sysconfig.get_paths()["purelib"] if installed else str(ROOT)
    monkeypatch.setattr(minirouter, "__file__", os.path.join(folder, "minirouter.py"))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    seen = tmp_path / "pythonpath.txt"
    write = "import os, sys; open(sys.argv[1], 'w').write(os.environ.get('PYTHONPATH', ''))"
    child = minirouter._start_child([sys.executable, "-c", write, str(seen)])  # type: ignore[attr-defined]
    assert child.wait(timeout=60) == 0
    assert seen.read_text() == ("" if installed else folder)


def test_the_reloader_forgets_the_bytecode_of_a_changed_file(tmp_path: Path) -> None:
    # Python trusts a compiled copy while the source keeps its size and its
    # modification second: an edit within that second would be served stale.
    import py_compile

    source = tmp_path / "route.py"
    source.write_text("def GET():\n    return {'v': 'AAA'}\n")
    compiled = Path(py_compile.compile(str(source), doraise=True))
    page = tmp_path / "page.html"
    page.write_text("<p>x</p>")
    minirouter._forget_bytecode([str(source), str(page)])
    assert not compiled.exists() and page.exists()
    minirouter._forget_bytecode([str(source)])  # nothing left to remove: no error


def test_reloader_child_exits_when_the_reloader_is_killed(tmp_path: Path, start_server) -> None:
    app_dir = write_app(tmp_path, TREE)
    server = start_server(app_dir.name, "--reload")
    server.wait_for("/hello", b'"version":1')
    server.process.kill()  # SIGKILL: no chance to stop its child
    server.process.wait(timeout=10)
    deadline = time.monotonic() + 20
    while not port_is_free(server.port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert port_is_free(server.port), "the orphaned server kept the port"


def test_a_server_started_through_a_wrapper_keeps_serving_while_the_reloader_lives(tmp_path: Path) -> None:
    # `sh -c`, `uv run` or `poetry run` between the reloader and the server: its parent
    # is not the reloader, which exit_with_reloader() took for the reloader gone (exit 1).
    script = tmp_path / "server.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import minirouter\n"
        "print(minirouter.exit_with_reloader(), flush=True)\n"
        "time.sleep(2.5)\n"
        "print('still serving', flush=True)\n"
    )
    env = dict(cli_env(), MINIROUTER_RELOADER_PARENT=str(os.getpid()))  # this test is the reloader
    result = subprocess.run(["/bin/sh", "-c", f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}; echo $?"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["True", "still", "serving", "0"], result.stderr


def test_exit_with_reloader_says_whether_a_reloader_started_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINIROUTER_RELOADER_PARENT", raising=False)
    assert minirouter.exit_with_reloader() is False


def test_the_wsgiref_server_never_turns_ctrl_c_into_a_semaphore_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ctrl-C landing after the request's thread had started (and had released its
    # slot) released the slot a second time: a ValueError, which socketserver logs
    # and serves on, so the server ignored the Ctrl-C.
    import socketserver

    app = minirouter.App(str(write_app(tmp_path, TREE)))
    server = minirouter._wsgiref_server(app, "127.0.0.1", 0)  # type: ignore[attr-defined]
    try:
        def thread_started_then_interrupted(self: object, request: object, client_address: object) -> None:
            server.slots.release()  # the request's thread, already done
            raise KeyboardInterrupt

        monkeypatch.setattr(socketserver.ThreadingMixIn, "process_request", thread_started_then_interrupted)
        with pytest.raises(KeyboardInterrupt):
            server.process_request(None, ("127.0.0.1", 1))
    finally:
        server.server_close()


class _ChildThatWillNotStop:
    """A server child for _stop_child: SIGTERM does nothing, and a wait with a
    timeout raises ``on_wait`` (its timeout running out, or a Ctrl-C meanwhile)."""

    def __init__(self, on_wait: BaseException) -> None:
        self.on_wait = on_wait
        self.killed = False

    def poll(self) -> None:
        return None

    def terminate(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> int:
        if timeout is not None:
            raise self.on_wait
        return -9

    def kill(self) -> None:
        self.killed = True


def test_a_ctrl_c_while_the_reloader_stops_its_child_kills_it_and_says_so() -> None:
    # It was swallowed: the reloader started a new child and went on watching.
    child = _ChildThatWillNotStop(KeyboardInterrupt())
    assert minirouter._stop_child(child) is True and child.killed  # type: ignore[attr-defined, arg-type]


def test_a_child_that_ignores_sigterm_is_killed_after_the_wait() -> None:
    child = _ChildThatWillNotStop(subprocess.TimeoutExpired("child", 5))
    assert minirouter._stop_child(child) is False and child.killed  # type: ignore[attr-defined, arg-type]


def test_serve_reload_watches_a_public_folder_made_after_it_started(tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    assert minirouter._reload_folders(str(app_dir)) == [  # type: ignore[attr-defined]
        str(app_dir), str(tmp_path / "public")]


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_serve_without_waitress_takes_a_bracketed_ipv6_host(tmp_path: Path) -> None:
    # waitress and the reloader's check take "[::1]"; wsgiref tried to resolve it as a name.
    blocker = hide_waitress(tmp_path)
    app_dir = write_app(tmp_path, TREE)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "minirouter", "serve", app_dir.name, "--host", "[::1]",
                                "--port", str(port)], cwd=tmp_path, env=cli_env(extra_path=blocker),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            connection = http.client.HTTPConnection("::1", port, timeout=5)
            try:
                connection.request("GET", "/hello")
                assert connection.getresponse().status == 200
                break
            except OSError:
                time.sleep(0.1)
            finally:
                connection.close()
        else:
            pytest.fail(f"never served on [::1]: {process.poll()}")
    finally:
        process.terminate()
        try:
            _, err = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
    assert f"serving on http://[::1]:{port}" in err


# --- access log and debug start-up (in-process) ---------------------------------

def test_access_log_line_per_request(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from wsgiref.validate import validator

    app = minirouter.App(str(write_app(tmp_path, TREE)))
    caplog.set_level(logging.INFO, logger="minirouter.access")
    client = minirouter.TestClient(validator(app))
    assert client.get("/comments/7?x=1").status == 200
    assert client.head("/comments/7").status == 200
    assert client.get("/nowhere").status == 404
    records = [r for r in caplog.records if r.name == "minirouter.access"]
    assert [(r.method, r.path, r.status) for r in records] == [  # type: ignore[attr-defined]
        ("GET", "/comments/7", 200), ("HEAD", "/comments/7", 200), ("GET", "/nowhere", 404)]
    get, head, missing = records
    assert get.bytes == len(b'{"id":"7"}') and head.bytes == 0  # type: ignore[attr-defined]
    assert missing.bytes > 0  # type: ignore[attr-defined]
    assert all(r.duration_ms >= 0 for r in records)  # type: ignore[attr-defined]
    assert get.getMessage().startswith("GET /comments/7 200 10 ") and get.getMessage().endswith("ms")


def test_access_log_escapes_control_characters(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = minirouter.App(str(write_app(tmp_path, TREE)))
    caplog.set_level(logging.INFO, logger="minirouter.access")
    minirouter.TestClient(app).get("/comments/a%0Aforged 200")
    [record] = [r for r in caplog.records if r.name == "minirouter.access"]
    assert "\n" not in record.getMessage()
    assert "%0A" in record.getMessage()


def test_access_log_writes_a_raw_target_and_a_method_as_ascii(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # wsgiref passes the target's bytes as they came (latin-1 text); a WSGI layer may pass any method.
    app = minirouter.App(str(write_app(tmp_path, TREE)))
    caplog.set_level(logging.INFO, logger="minirouter.access")
    base = {"SERVER_NAME": "x", "SERVER_PORT": "80", "wsgi.url_scheme": "http", "QUERY_STRING": ""}
    for environ in ({**base, "REQUEST_METHOD": "GET", "PATH_INFO": "/café", "REQUEST_URI": "/cafÃ©"},
                    {**base, "REQUEST_METHOD": "GE\nT 200 forged\nGET", "PATH_INFO": "/hello"}):
        body = app(environ, lambda status, headers, exc_info=None: None)
        list(body)
        body.close()  # the line is written when the server closes the body
    lines = [r.getMessage() for r in caplog.records if r.name == "minirouter.access"]
    assert lines[0].startswith("GET /caf%C3%A9 404 ")
    assert lines[1].startswith("GE%0AT%20200%20forged%0AGET /hello 501 ") and "\n" not in lines[1]


def test_module_prints_nothing_by_default(tmp_path: Path) -> None:
    # Without the cached GET beside a DELETE, which gets its start-up warning.
    app_dir = write_app(tmp_path, {rel: source for rel, source in TREE.items() if not rel.startswith("comments/")})
    script = textwrap.dedent(f"""
        from minirouter import App, TestClient
        client = TestClient(App({str(app_dir)!r}, debug=True))
        assert client.get("/hello").status == 200
        assert client.get("/nowhere").status == 404
        """)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=cli_env(),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_debug_logs_the_route_table_at_start_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app_dir = write_app(tmp_path, TREE)
    caplog.set_level(logging.INFO, logger="minirouter")
    minirouter.App(str(app_dir))
    assert not [r for r in caplog.records if r.name == "minirouter" and "/hello" in r.getMessage()]
    minirouter.App(str(app_dir), debug=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "minirouter"]
    assert any("/comments/[id]" in line and "DELETE,GET,HEAD,OPTIONS" in line for line in lines)
    assert any("/hello" in line for line in lines)


@pytest.fixture
def example_site(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the example, so editing a route cannot disturb the repository
    or other tests, and the environment to run its run.py in."""
    site = tmp_path / "site"
    site.mkdir()
    for name in ("run.py", "minirouter.py"):
        shutil.copy2(ROOT / name, site / name)
    for folder in ("app", "public"):
        shutil.copytree(ROOT / folder, site / folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, COMMENTS_DB=str(tmp_path / "comments.db"), UPLOADS_DIR=str(tmp_path / "uploads"))
    env.pop("PYTHONPATH", None)
    env.pop("MINIROUTER_RELOADER_PARENT", None)
    return site, env


def test_run_py_reload_child_exits_when_the_reloader_is_killed(example_site, start_server) -> None:
    # run.py's server is its own (waitress.create_server), not serve(): it must watch too.
    site, env = example_site
    server = start_server("--reload", env=env, program=[sys.executable, str(site / "run.py")])
    server.wait_for("/hello", b"Hello World!")
    server.process.kill()  # SIGKILL, as an IDE's stop button may send: no chance to stop its child
    server.process.wait(timeout=10)
    deadline = time.monotonic() + 20
    while not port_is_free(server.port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert port_is_free(server.port), "the orphaned server kept the port"


def test_run_py_reload_on_port_0_keeps_the_port_it_chose(example_site, start_server) -> None:
    site, env = example_site
    server = start_server("--reload", env=env, program=[sys.executable, str(site / "run.py")], port=0)
    server.wait_for_output("minirouter serving")
    server.port = int(re.findall(r"at http://127\.0\.0\.1:(\d+)", server.output())[0])
    server.wait_for("/hello", b"Hello World!")
    route = site / "app" / "hello" / "route.py"
    route.write_text(route.read_text().replace("Hello World!", "Hello again!"))
    server.wait_for("/hello", b"Hello again!")  # the restarted server, on the same port


def test_run_py_reload_waits_for_a_fix_when_a_route_fails_to_import_at_start(example_site, start_server) -> None:
    # The watcher never imports the routes (as serve --reload): it used to die with the route.
    site, env = example_site
    route = site / "app" / "hello" / "route.py"
    source = route.read_text()
    route.write_text(source + "\nimport no_such_module_here\n")
    server = start_server("--reload", env=env, program=[sys.executable, str(site / "run.py")])
    server.wait_for_output("waiting for a file to change")
    assert "cannot start:" in server.output() and "no_such_module_here" in server.output()
    assert 'route.py", line' in server.output()  # where it failed, from the cause's traceback
    assert server.process.poll() is None
    route.write_text(source)
    server.wait_for("/hello", b"Hello World!")
    assert server.output().count("Traceback") == 1  # the child's, once: the watcher never imported it


def test_run_py_reload(example_site, start_server) -> None:
    site, env = example_site
    server = start_server("--reload", env=env, program=[sys.executable, str(site / "run.py")])
    server.wait_for("/hello", b"Hello World!")
    route = site / "app" / "hello" / "route.py"
    route.write_text(route.read_text().replace("Hello World!", "Hello again!"))
    server.wait_for("/hello", b"Hello again!")
    (site / "public" / "style.css").write_text("body { color: red }\n")
    server.wait_for_output("style.css changed")
    server.wait_for("/style.css", b"color: red")


@pytest.mark.parametrize("reload", [[], ["--reload"]])
def test_serve_on_a_host_that_is_no_address_exits_2(tmp_path: Path, reload: list) -> None:
    # A bad argument, with or without --reload (which used to call it 1, as for a taken port).
    app_dir = write_app(tmp_path, TREE)
    for host in ("999.1.1.1", "bad host"):
        result = run_cli("serve", app_dir.name, "--host", host, "--port", "0", *reload, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert f"cannot listen on {host}:0" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, env", [(["--port", "99999"], {}), (["--port", "-1"], {}), ([], {"PORT": "abc"})])
def test_run_py_refuses_a_port_that_is_not_one(args: list, env: dict) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=60)
    assert result.returncode == 2
    assert "is not a port number from 0 to 65535" in result.stderr and "Traceback" not in result.stderr


def test_run_py_reload_without_waitress_exits_1_at_once(tmp_path: Path) -> None:
    # The watcher waited for ever for a save, though the server could never start.
    blocker = hide_waitress(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    env.pop("MINIROUTER_RELOADER_PARENT", None)
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--reload", "--port", "0"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert "waitress is not installed" in result.stderr and "waiting for a file" not in result.stderr


@pytest.mark.parametrize("reload", [[], ["--reload"]])
def test_run_py_with_a_name_that_is_no_host_exits_2(reload: list) -> None:
    # A traceback before; under --reload the watcher waited for a save that could not help.
    env = {key: value for key, value in os.environ.items() if key not in ("MINIROUTER_RELOADER_PARENT", "ALLOWED_HOSTS")}
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--port", "0", "--allowed-host", "bad:1", *reload],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "allowed_hosts holds 'bad:1'" in result.stderr and "Traceback" not in result.stderr
    assert "waiting for a file" not in result.stderr


def test_run_py_shows_a_bracketed_ipv6_host_once() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("example_run", ROOT / "run.py")
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    assert [run._host_for_url(host) for host in ("[::1]", "::1", "127.0.0.1")] == ["[::1]", "[::1]", "127.0.0.1"]


@pytest.mark.parametrize("reload", [[], ["--reload"]])
def test_run_py_on_a_host_that_is_no_address_exits_2(reload: list) -> None:
    # As `minirouter serve` does: a bad argument, not a taken port, with --reload too.
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--host", "bad host", "--port", "0", *reload],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "cannot listen on bad host:0" in result.stderr and "Traceback" not in result.stderr
