#!/usr/bin/env python3
"""Benchmark minirouter against Bottle, Falcon, Flask and a bare WSGI floor.

One command runs everything and writes bench/results/latest.md and .json:

    pip install -r bench/requirements.txt && python bench/run.py

Every framework serves the same app: N routes of each of three kinds, a static
text route (/static/s{i}), a dynamic route (/items/r{i}/{id} -> {"id": id})
and a JSON echo (POST /echo/e{i}). The minirouter app is a generated folder of
real route.py files. The bare floor is a WSGI callable that looks the path up
in a dict; bare+api is that floor plus only what the route-handler API asks of
any framework (the user's handler from its route.py, a Request, the request
context, the Response sent), run in-process and over HTTP beside minirouter.

Sections (each can be chosen with --sections):
  inproc   WSGI callables called directly with prebuilt environs, all
           frameworks and sizes interleaved in one process, median of repeats
  startup  time and traced memory to build each app and serve its first
           request, one subprocess per framework and size
  http     each app under waitress (4 threads) in a subprocess on 127.0.0.1,
           driven by wrk when installed, else by a keep-alive http.client
           load process; bounded in time and in request count; with the
           server's and each app's CPU per request, and the floor made to
           spin a few microseconds more (bare+4us) for scale
"""
from __future__ import annotations

import argparse
import datetime
import gc
import hashlib
import io
import json
import math
import os
import platform
import py_compile
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FRAMEWORKS = ("bare", "minirouter", "falcon", "bottle", "flask")
PEERS = ("falcon", "bottle", "flask")
KINDS = ("static", "dynamic", "echo")
TARGETS = ("last", "random")
DEFAULT_NS = (10, 100, 1000, 10000)
ECHO_BODY = b'{"name": "minirouter", "tags": ["a", "b"], "count": 3, "ok": true}'
RANDOM_POOL = 256  # distinct prebuilt requests cycled through for "random"

WsgiApp = Callable[..., Any]
CPU_CLOCK = getattr(time, "thread_time_ns", time.perf_counter_ns)


# ---------------------------------------------------------------------------
# The same app in every framework.
# Each builder takes the number of routes per kind and the folder that holds
# the generated minirouter trees, and returns a WSGI callable.


def static_text(i: int) -> str:
    return f"static s{i}"


def build_bare(n: int, root: Path) -> WsgiApp:
    """The floor: one dict lookup on the path, then the least work possible."""
    routes: Dict[Tuple[str, str], Tuple[str, bytes]] = {}
    for i in range(n):
        routes[("GET", f"/static/s{i}")] = ("static", static_text(i).encode())
        routes[("GET", f"/items/r{i}")] = ("dynamic", b"")
        routes[("POST", f"/echo/e{i}")] = ("echo", b"")
    text_type = ("Content-Type", "text/plain; charset=utf-8")
    json_type = ("Content-Type", "application/json")

    def app(environ: dict, start_response: Callable) -> List[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ["PATH_INFO"]
        route = routes.get((method, path))
        if route is None:
            prefix, _, ident = path.rpartition("/")
            route = routes.get((method, prefix))
            if route is None or route[0] != "dynamic" or not ident:
                start_response("404 Not Found", [("Content-Length", "0")])
                return []
            body = json.dumps({"id": ident}).encode()
            start_response("200 OK", [json_type, ("Content-Length", str(len(body)))])
            return [body]
        kind, payload = route
        if kind == "static":
            start_response("200 OK", [text_type, ("Content-Length", str(len(payload)))])
            return [payload]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.dumps(json.loads(environ["wsgi.input"].read(length))).encode()
        start_response("200 OK", [json_type, ("Content-Length", str(len(body)))])
        return [body]

    return app


def minirouter_dir(root: Path, n: int) -> Path:
    # The folder basename becomes a Python package name: unique per N.
    return root / f"mrbench_n{n}"


# Each handler takes what it uses, as a minirouter user writes it (and as the
# Bottle and Flask handlers below do): a static answer needs no arguments.
STATIC_ROUTE = '''from minirouter import Response


def GET():
    return Response({text!r})
'''

DYNAMIC_ROUTE = '''def GET(request, context):
    return {"id": context.params["id"]}
'''

ECHO_ROUTE = '''def POST(request):
    return request.json()
'''


def write_minirouter_tree(root: Path, n: int) -> Path:
    app_dir = minirouter_dir(root, n)
    for i in range(n):
        files = (
            (app_dir / "static" / f"s{i}", STATIC_ROUTE.format(text=static_text(i))),
            (app_dir / "items" / f"r{i}" / "[id]", DYNAMIC_ROUTE),
            (app_dir / "echo" / f"e{i}", ECHO_ROUTE),
        )
        for folder, source in files:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "route.py").write_text(source, encoding="utf-8")
            # Start-up is timed as after an app's first run, which wrote the
            # __pycache__ files: scanning and importing, not compiling. Written
            # here, since an import writes none where PYTHONDONTWRITEBYTECODE is
            # set (py_compile writes regardless), and then every build compiled.
            # (optimize=0: the start-up workers run without -O, and read the plain .pyc.)
            py_compile.compile(str(folder / "route.py"), doraise=True, optimize=0,
                               invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    return app_dir


def build_minirouter(n: int, root: Path) -> WsgiApp:
    import minirouter

    return minirouter.App(str(minirouter_dir(root, n)))


def build_falcon(n: int, root: Path) -> WsgiApp:
    import falcon

    class StaticResource:
        def __init__(self, text: str) -> None:
            self.text = text

        def on_get(self, req: Any, resp: Any) -> None:
            resp.content_type = falcon.MEDIA_TEXT
            resp.text = self.text

    class ItemResource:
        def on_get(self, req: Any, resp: Any, id: str) -> None:
            resp.media = {"id": id}

    class EchoResource:
        def on_post(self, req: Any, resp: Any) -> None:
            resp.media = req.get_media()

    app = falcon.App()
    routes = []
    for i in range(n):
        routes.append((f"/static/s{i}", StaticResource(static_text(i))))
        routes.append((f"/items/r{i}/{{id}}", ItemResource()))
        routes.append((f"/echo/e{i}", EchoResource()))
    if quick_registration(n):
        falcon_register_quickly(app, routes)
    else:
        for template, resource in routes:
            app.add_route(template, resource)
    return app


# Falcon and Bottle register routes in quadratic time: Falcon's add_route
# scans every sibling node for conflicts, Bottle recompiles all its route
# regexes on each add. At 10,000 routes per kind that takes tens of minutes,
# so for the request benchmarks (not for start-up, which always uses the public
# API) large apps are registered by a shortcut that ends in the same router
# state. tests/test_bench_smoke.py checks that at a small N: same generated
# Falcon finder source, same Bottle regexes.
QUICK_REGISTRATION = {"mode": "large"}  # "large" (N > 1000), "always" or "never"


def quick_registration(n: int) -> bool:
    mode = QUICK_REGISTRATION["mode"]
    return mode == "always" or (mode == "large" and n > 1000)


def falcon_register_quickly(app: Any, routes: List[Tuple[str, Any]]) -> None:
    """Falcon's CompiledRouter.add_route, minus the sibling scan: each route's
    new nodes are appended where add_route would append them, found through
    an index instead of a linear search. The first route of each branch goes
    through the public add_route, so the roots are Falcon's own."""
    from falcon.routing.compiled import CompiledRouterNode
    from falcon.routing.util import set_default_responders

    router = app._router
    index: Dict[Tuple[int, str], Any] = {}

    def nodes_of(children: list) -> None:
        for node in children:
            index[(id(children), node.raw_segment)] = node
            nodes_of(node.children)

    seen_roots = set()
    for template, resource in routes:
        path = template.lstrip("/").split("/")
        if path[0] not in seen_roots:
            seen_roots.add(path[0])
            app.add_route(template, resource)
            index.clear()
            nodes_of(router._roots)
            continue
        method_map = router.map_http_methods(resource)
        set_default_responders(method_map, asgi=False)
        router._require_non_coroutine_responders(method_map)
        siblings = router._roots
        for depth, segment in enumerate(path):
            node = index.get((id(siblings), segment))
            if node is None:
                node = CompiledRouterNode(segment)
                siblings.append(node)
                index[(id(siblings), segment)] = node
            if depth == len(path) - 1:
                node.method_map = method_map
                node.resource = resource
                node.uri_template = template
            siblings = node.children
    router._find = router._compile_and_find


def build_bottle(n: int, root: Path) -> WsgiApp:
    import bottle

    app = bottle.Bottle()

    def make_static(text: str) -> Callable[[], str]:
        def static() -> str:
            return text

        return static

    def item(id: str) -> dict:
        return {"id": id}

    def echo() -> Any:
        return bottle.request.json

    quick = quick_registration(n)
    overlays: list = []
    if quick:
        # Bottle's Router.add recompiles every regex of the method on each
        # add, and each Route's config overlay sweeps the list of all earlier
        # overlays: compile once per method at the end, and give each route an
        # empty overlay list to sweep, then put the lists back together.
        app.router._compile = lambda method: None
        overlays = app.config._overlays
    for i in range(n):
        for rule, method, callback in (
            (f"/static/s{i}", "GET", make_static(static_text(i))),
            (f"/items/r{i}/<id>", "GET", item),
            (f"/echo/e{i}", "POST", echo),
        ):
            if quick:
                app.config._overlays = []
                app.route(rule, method, callback)
                overlays.extend(app.config._overlays)
            else:
                app.route(rule, method, callback)
    if quick:
        app.config._overlays = overlays
        del app.router._compile
        for method in list(app.router.dyna_routes):
            app.router._compile(method)
    return app


def build_flask(n: int, root: Path) -> WsgiApp:
    import flask

    app = flask.Flask(f"bench_flask_n{n}")

    def make_static(text: str) -> Callable[[], Any]:
        def static() -> Any:
            return text, 200, {"Content-Type": "text/plain; charset=utf-8"}

        return static

    def item(id: str) -> dict:
        return {"id": id}

    def echo() -> Any:
        return flask.request.get_json()

    for i in range(n):
        app.add_url_rule(f"/static/s{i}", f"s{i}", make_static(static_text(i)), methods=["GET"])
        app.add_url_rule(f"/items/r{i}/<id>", f"r{i}", item, methods=["GET"])
        app.add_url_rule(f"/echo/e{i}", f"e{i}", echo, methods=["POST"])
    return app


# Over HTTP only: the floor made to spin SPIN_US more of CPU per request, so
# the run itself shows what a few microseconds of app time cost in req/s
# under waitress (more than their share: its threads then wait on each other).
SPIN_US = 4
SPUN_FLOOR = f"bare+{SPIN_US}us"


def build_spun_floor(n: int, root: Path) -> WsgiApp:
    floor = build_bare(n, root)
    spin_ns = SPIN_US * 1000

    def app(environ: dict, start_response: Callable) -> List[bytes]:
        end = CPU_CLOCK() + spin_ns
        while CPU_CLOCK() < end:
            pass
        return floor(environ, start_response)

    return app


# In-process and over HTTP: the floor plus what the route-handler API itself
# asks of any framework, so a run shows how much of a gap to the floor (in
# time, in growth) is the API's and how much is minirouter's routing and rules.
API_FLOOR = "bare+api"


def build_api_floor(n: int, root: Path) -> WsgiApp:
    """One dict lookup, as the floor, then only what the API requires: the
    user's own handler from its route.py, a minirouter Request for it, the
    request context that headers() and cookies() read, and its Response
    sent. No trie, no checks of method, path or body, no route cache."""
    import contextvars

    import minirouter
    from minirouter import Response, _context_for, _current_request, _request_for_app

    limits = minirouter.Limits()
    stream_context = contextvars.Context()  # (a Request keeps one for a streamed body; none is streamed here)

    handlers: Dict[Tuple[str, str], Tuple[Callable[..., Any], int]] = {}
    for route in minirouter.App(str(minirouter_dir(root, n))).route_table():
        prefix = route.url.replace("/[id]", "")  # the dynamic id is the last segment, as in the floor
        for method, handler in route.handlers.items():
            handlers[(method, prefix)] = (handler, handler.__code__.co_argcount)

    def app(environ: dict, start_response: Callable) -> List[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ["PATH_INFO"]
        params: Dict[str, str] = {}
        route = handlers.get((method, path))
        if route is None:
            prefix, _, ident = path.rpartition("/")
            route = handlers[(method, prefix)]
            params["id"] = ident
        handler, arity = route
        # Made as minirouter makes them (without calling the classes, which costs more).
        request = _request_for_app(environ, method, path, path, limits, False, stream_context)
        token = _current_request.set(request)
        try:
            if arity == 2:
                result = handler(request, _context_for(params))
            elif arity == 1:
                result = handler(request)
            else:
                result = handler()
        finally:
            _current_request.reset(token)
        if type(result) is dict:
            result = Response.json(result)
        # Its private fields, as minirouter's own sender reads them: the
        # public views would cost more, and this is meant as a lower bound.
        body = result._body
        start_response("200 OK", [*result._header_items, ("Content-Length", str(len(body)))])
        return [body]

    return app


BUILDERS: Dict[str, Callable[[int, Path], WsgiApp]] = {
    "bare": build_bare,
    "minirouter": build_minirouter,
    "falcon": build_falcon,
    "bottle": build_bottle,
    "flask": build_flask,
    SPUN_FLOOR: build_spun_floor,
    API_FLOOR: build_api_floor,
}


def framework_version(name: str) -> Optional[str]:
    """The installed version, or None when the framework cannot be imported."""
    if name == "bare":
        return "-"
    try:
        module = __import__(name)
    except Exception:
        return None
    try:
        from importlib.metadata import version as dist_version

        return dist_version(name)
    except Exception:
        return str(getattr(module, "__version__", "unknown"))


# ---------------------------------------------------------------------------
# Requests: prebuilt environs, one call, checking the answer.


def make_environ(method: str, path: str, body: bytes = b"") -> dict:
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "REQUEST_URI": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "54321",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "minirouter-bench",
        "HTTP_ACCEPT": "*/*",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


class Probe:
    """One prebuilt request and the answer it must get."""

    __slots__ = ("environ", "body", "kind", "expect")

    def __init__(self, kind: str, i: int, ident: str) -> None:
        self.kind = kind
        if kind == "static":
            self.environ = make_environ("GET", f"/static/s{i}")
            self.body = b""
            self.expect: Any = static_text(i)
        elif kind == "dynamic":
            self.environ = make_environ("GET", f"/items/r{i}/{ident}")
            self.body = b""
            self.expect = {"id": ident}
        else:
            self.environ = make_environ("POST", f"/echo/e{i}", ECHO_BODY)
            self.body = ECHO_BODY
            self.expect = json.loads(ECHO_BODY)


def _write(data: bytes) -> None:
    pass


def _start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
    return _write


def call_once(app: WsgiApp, probe: Probe) -> Tuple[str, bytes]:
    seen: Dict[str, str] = {}

    def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
        seen["status"] = status
        return _write

    environ = probe.environ.copy()
    environ["wsgi.input"] = io.BytesIO(probe.body)
    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return seen.get("status", ""), body


def check(app: WsgiApp, framework: str, probe: Probe) -> None:
    """Fail loudly when a framework answers a request wrongly."""
    status, body = call_once(app, probe)
    if not status.startswith("200"):
        raise RuntimeError(
            f"{framework}: {probe.environ['REQUEST_METHOD']} {probe.environ['PATH_INFO']} "
            f"gave {status!r}: {body[:200]!r}"
        )
    got: Any = body.decode("utf-8") if probe.kind == "static" else json.loads(body)
    if got != probe.expect:
        raise RuntimeError(
            f"{framework}: {probe.environ['PATH_INFO']} answered {got!r}, expected {probe.expect!r}"
        )


def time_batch(app: WsgiApp, probes: List[Probe], calls: int) -> float:
    """Mean nanoseconds per call over `calls` calls cycling through probes.

    The clock is this thread's CPU time, so the time the OS gives to other
    processes on a busy machine is not counted against whoever was running."""
    pairs = [(p.environ, p.body) for p in probes]
    count = len(pairs)
    start_response = _start_response
    bytes_io = io.BytesIO
    clock = CPU_CLOCK
    t0 = clock()
    for k in range(calls):
        base, body = pairs[k % count]
        environ = base.copy()
        environ["wsgi.input"] = bytes_io(body)
        result = app(environ, start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return (clock() - t0) / calls


def make_probes(kind: str, n: int, target: str, rng: random.Random) -> List[Probe]:
    if target == "last":
        return [Probe(kind, n - 1, "4242")]
    return [Probe(kind, rng.randrange(n), str(rng.randrange(1, 10**6))) for _ in range(RANDOM_POOL)]


# ---------------------------------------------------------------------------
# In-process: every framework and size built up front, then measured in a
# shuffled order, repeat after repeat, so noise hits them alike.


def run_inproc(frameworks: List[str], ns: List[int], root: Path, args: argparse.Namespace) -> List[dict]:
    rng = random.Random(20261122)
    apps: Dict[Tuple[str, int], WsgiApp] = {}
    for n in ns:
        for fw in frameworks:
            log(f"inproc: building {fw} with {n} routes per kind")
            apps[(fw, n)] = BUILDERS[fw](n, root)
    cells = []
    probes: Dict[Tuple[int, str, str], List[Probe]] = {}
    for n in ns:
        for kind in KINDS:
            for target in TARGETS:
                probes[(n, kind, target)] = make_probes(kind, n, target, rng)
                for fw in frameworks:
                    cells.append((n, fw, kind, target))
    for n, fw, kind, target in cells:
        for probe in probes[(n, kind, target)]:
            check(apps[(fw, n)], fw, probe)
    # Everything built so far lives until the end: keep it out of the
    # collector's way so a full collection does not land on one framework.
    gc.collect()
    if hasattr(gc, "freeze"):
        gc.freeze()
    samples: Dict[Tuple[int, str, str, str], List[float]] = {cell: [] for cell in cells}
    warm = max(1, args.calls // 10)
    for cell in cells:
        n, fw, kind, target = cell
        time_batch(apps[(fw, n)], probes[(n, kind, target)], warm)
    # The cells a ratio compares (every framework and size for one kind and
    # target) are timed in one block, seconds apart, and ratios are taken
    # within a repeat (paired_ratio): a slow spell of a shared machine then
    # hits both sides of a ratio, not one.
    blocks: Dict[Tuple[str, str], List[Tuple[int, str, str, str]]] = {}
    for cell in cells:
        blocks.setdefault((cell[2], cell[3]), []).append(cell)
    for rep in range(args.repeats):
        log(f"inproc: repeat {rep + 1}/{args.repeats}")
        block_order = list(blocks)
        rng.shuffle(block_order)
        for block in block_order:
            order = list(blocks[block])
            rng.shuffle(order)
            for cell in order:
                n, fw, kind, target = cell
                samples[cell].append(time_batch(apps[(fw, n)], probes[(n, kind, target)], args.calls))
    rows = []
    for cell in cells:
        n, fw, kind, target = cell
        rows.append(
            {
                "n": n,
                "framework": fw,
                "kind": kind,
                "target": target,
                "us": statistics.median(samples[cell]) / 1000.0,
                "samples_us": [round(s / 1000.0, 4) for s in samples[cell]],
            }
        )
    if hasattr(gc, "unfreeze"):
        gc.unfreeze()
    return rows


# ---------------------------------------------------------------------------
# Start-up: a fresh subprocess per framework and size, so imports, caches and
# sys.modules from one build never help another.


def startup_worker(fw: str, n: int, root: Path, repeats: int, warm_full: bool, memory: bool = True) -> None:
    """Print one JSON line with the build times, then (with ``memory``) one
    with the memory, so a parent that stops a slow worker still has the first."""
    QUICK_REGISTRATION["mode"] = "never"  # start-up is timed through the public API only
    builder = BUILDERS[fw]
    probe = Probe("static", n - 1, "1")
    # Not timed: the framework's imports, and for a tree no build has
    # imported yet, the file cache (its __pycache__ is written with the tree).
    builder(n if warm_full else 1, root)
    gc.collect()
    build_times = []
    first_times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        app = builder(n, root)
        t1 = time.perf_counter()
        call_once(app, probe)
        t2 = time.perf_counter()
        build_times.append(t1 - t0)
        first_times.append(t2 - t1)
        del app
        gc.collect()
    print(json.dumps({
        "framework": fw,
        "n": n,
        "routes": 3 * n,
        "build_s": statistics.median(build_times),
        "first_request_s": statistics.median(first_times),
        "startup_s": statistics.median(b + f for b, f in zip(build_times, first_times)),
    }), flush=True)
    if not memory:
        return
    tracemalloc.start()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    app = builder(n, root)
    check(app, fw, probe)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    retained = after - before
    print(json.dumps({"memory_bytes": retained, "bytes_per_route": retained / (3 * n)}), flush=True)


def run_startup(frameworks: List[str], ns: List[int], root: Path, args: argparse.Namespace,
                imported: set) -> List[dict]:
    """One worker per framework and size. A framework whose build, scaled
    linearly from the previous size, would pass --startup-timeout is not run
    at the larger size (Falcon and Bottle register routes in quadratic time)."""
    rows = []
    budget = args.startup_timeout
    history: Dict[str, List[Tuple[int, Optional[float]]]] = {fw: [] for fw in frameworks}
    for n in ns:
        for fw in frameworks:
            row: Dict[str, Any] = {"framework": fw, "n": n, "routes": 3 * n}
            forecast = startup_forecast(history[fw], n)
            # A worker builds the app about 2 + repeats times (warm-up, timed
            # builds, traced build): skip it when that cannot fit the budget.
            builds = 2 + args.startup_repeats
            if forecast is not None and forecast * builds > budget:
                prev_n, prev_s = history[fw][-1]
                shown = "did not finish" if prev_s is None else f"took {prev_s:.1f} s"
                row["note"] = (f"not run: N={prev_n} {shown}; growing as it did, N={n} would take "
                               f"{'far more' if forecast == float('inf') else f'about {forecast:.0f} s'} "
                               f"per build, over the {budget:.0f} s budget")
                history[fw].append((n, None))
                rows.append(row)
                log(f"startup: {fw} with {n} routes per kind: {row['note']}")
                continue
            log(f"startup: {fw} with {n} routes per kind")
            cmd = [
                sys.executable, str(Path(__file__).resolve()), "--startup-worker", fw,
                "--worker-n", str(n), "--root", str(root),
                "--startup-repeats", str(args.startup_repeats),
                "--warm-full", "0" if n in imported else "1",
            ]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=budget)
                out, failed = done.stdout, done.returncode != 0
                if failed:
                    raise RuntimeError(f"startup worker {fw} n={n} failed:\n{done.stderr[-3000:]}")
            except subprocess.TimeoutExpired as exc:
                out = exc.stdout or ""
                if isinstance(out, bytes):
                    out = out.decode("utf-8", "replace")
                row["note"] = f"stopped after {budget:.0f} s"
            for line in out.strip().splitlines():
                row.update(json.loads(line))
            if "bytes_per_route" not in row and "startup_s" in row:
                row["note"] = f"memory not measured: stopped after {budget:.0f} s"
            history[fw].append((n, row.get("startup_s")))
            rows.append(row)
    return rows


# The start-up target compares two frameworks whose builds run seconds apart
# in the sizes table, so a busy spell of a shared machine can land on one of
# them. These rounds build both back to back, in turn, and the target is the
# median over rounds of the ratio within a round, as for the other tables.
STARTUP_PAIR = ("minirouter", "flask")
STARTUP_TARGET_N = 1000


def run_startup_pairs(frameworks: List[str], ns: List[int], root: Path, args: argparse.Namespace) -> Optional[dict]:
    """minirouter and Flask built back to back (one timed build each, in a
    fresh process, order alternating) for ``--startup-pairs`` rounds, at
    3,000 routes, or at the largest start-up size below it in a smaller run."""
    sizes = [n for n in ns if n <= STARTUP_TARGET_N]
    if not sizes or args.startup_pairs < 1 or not all(fw in frameworks for fw in STARTUP_PAIR):
        return None
    n = max(sizes)
    rounds = []
    for index in range(args.startup_pairs):
        order = STARTUP_PAIR if index % 2 == 0 else STARTUP_PAIR[::-1]
        times: Dict[str, float] = {}
        for fw in order:
            log(f"startup: pair round {index + 1}/{args.startup_pairs}, {fw} with {n} routes per kind")
            cmd = [
                sys.executable, str(Path(__file__).resolve()), "--startup-worker", fw,
                "--worker-n", str(n), "--root", str(root), "--startup-repeats", "1", "--no-memory",
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.startup_timeout)
            if done.returncode != 0:
                raise RuntimeError(f"startup pair worker {fw} n={n} failed:\n{done.stderr[-3000:]}")
            times[fw] = json.loads(done.stdout.strip().splitlines()[0])["startup_s"]
        rounds.append(times)
    return {"n": n, "frameworks": list(STARTUP_PAIR), "rounds": rounds}


def startup_forecast(history: List[Tuple[int, Optional[float]]], n: int) -> Optional[float]:
    """Seconds one build at size n should take, extrapolated from the growth
    between the last two sizes (at least linear); inf after a failed size."""
    if not history:
        return None
    last_n, last_s = history[-1]
    if last_s is None:
        return float("inf")
    exponent = 1.0
    if len(history) >= 2:
        first_n, first_s = history[-2]
        if first_s and first_n != last_n and first_s > 0:
            exponent = max(1.0, math.log(last_s / first_s) / math.log(last_n / first_n))
    return last_s * (n / last_n) ** exponent


# ---------------------------------------------------------------------------
# Over HTTP: waitress subprocesses, a separate load process.


def pin_to_cpu(role: str) -> None:
    """On Linux with two cores or more, the server runs on the last core and
    the load process on the first, so they never take turns on one core, as a
    server and its clients on different machines would not; elsewhere, nothing."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[-1] if role == "server" else cpus[0]})


class AppTimer:
    """Wraps an app to measure its own CPU time per request under waitress:
    the call, the body iterated and close(), on the worker thread's clock.
    Used only in a separate pass, never while req/s is measured."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.totals: Dict[str, List[int]] = {kind: [0, 0] for kind in KINDS}  # requests, ns
        # The first path segment of each kind's URL ("static", "items", "echo").
        self.kind_of_prefix = {http_request_for(kind, 1)[1].split("/")[1]: kind for kind in KINDS}
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> List[bytes]:
        start = CPU_CLOCK()
        result = self.app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        spent = CPU_CLOCK() - start
        kind = self.kind_of_prefix.get(environ["PATH_INFO"].split("/", 2)[1], "")
        if kind:
            with self.lock:
                self.totals[kind][0] += 1
                self.totals[kind][1] += spent
        return [body]

    def report(self) -> Dict[str, Optional[float]]:
        return {kind: (ns / count / 1000.0 if count else None) for kind, (count, ns) in self.totals.items()}


def serve_worker(fw: str, n: int, root: Path, threads: int, time_app: bool) -> None:
    import logging
    import signal

    from waitress import create_server

    logging.getLogger("waitress").setLevel(logging.ERROR)
    pin_to_cpu("server")
    app = BUILDERS[fw](n, root)
    if time_app:
        timer = AppTimer(app)
        app = timer

        def report_and_exit(signum: int, frame: Any) -> None:
            print(json.dumps({"app_us": timer.report()}), flush=True)
            os._exit(0)

        signal.signal(signal.SIGTERM, report_and_exit)
    server = create_server(app, host="127.0.0.1", port=0, threads=threads)
    print(json.dumps({"port": server.effective_port}), flush=True)
    server.run()


class Server:
    """A framework's app under waitress in a subprocess, stopped by close()."""

    def __init__(self, fw: str, n: int, root: Path, threads: int, time_app: bool = False) -> None:
        cmd = [
            sys.executable, str(Path(__file__).resolve()), "--serve-worker", fw,
            "--worker-n", str(n), "--root", str(root), "--threads", str(threads),
        ]
        if time_app:
            cmd.append("--time-app")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line: List[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(120)
        if not line or not line[0].strip():
            self.close()
            raise RuntimeError(f"{fw} server did not start")
        self.port = json.loads(line[0])["port"]

    def cpu_seconds(self) -> Optional[float]:
        """CPU time the server process has used (user + system), where
        /proc tells (Linux); None elsewhere."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        # After the ")" that ends the command name: state is field 3, utime 14, stime 15.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> str:
        """Stops the server; returns what it printed after its port (the
        --time-app report)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.stdout.read() if self.proc.stdout else ""


def http_request_for(kind: str, n: int) -> Tuple[str, str, bytes]:
    i = n - 1
    if kind == "static":
        return "GET", f"/static/s{i}", b""
    if kind == "dynamic":
        return "GET", f"/items/r{i}/4242", b""
    return "POST", f"/echo/e{i}", ECHO_BODY


def load_worker(port: int, method: str, path: str, body: bytes, connections: int,
                duration: float, max_requests: int) -> dict:
    """Keep-alive http.client load: one connection per thread."""
    import http.client
    import itertools

    tickets = itertools.count()
    deadline = time.perf_counter() + duration
    latencies: List[List[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    headers = {"Content-Type": "application/json"} if body else {}

    def drive(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = latencies[slot]
        clock = time.perf_counter
        try:
            while next(tickets) < max_requests:
                t0 = clock()
                if t0 > deadline:
                    break
                conn.request(method, path, body=body or None, headers=headers)
                resp = conn.getresponse()
                resp.read()
                mine.append(clock() - t0)
                if resp.status != 200:
                    errors[slot] += 1
        except (OSError, http.client.HTTPException):
            errors[slot] += 1
        finally:
            conn.close()

    workers = [threading.Thread(target=drive, args=(s,)) for s in range(connections)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join(duration + 30)
    elapsed = time.perf_counter() - t0
    every = sorted(x for lat in latencies for x in lat)
    return {
        "client": "python",
        "requests": len(every),
        "seconds": elapsed,
        "rps": len(every) / elapsed if elapsed else 0.0,
        "p50_ms": percentile(every, 50) * 1000,
        "p99_ms": percentile(every, 99) * 1000,
        "errors": sum(errors),
    }


def time_apps(frameworks: List[str], n: int, root: Path, args: argparse.Namespace, scratch: Path,
              client: str) -> Dict[Tuple[str, str], Optional[float]]:
    """A pass after the measured rounds: each app wrapped in AppTimer under
    waitress, one load run per kind; the app's own CPU time per request."""
    out: Dict[Tuple[str, str], Optional[float]] = {}
    for fw in frameworks:
        log(f"http: timing {fw}'s own CPU per request under waitress")
        server = Server(fw, n, root, args.threads, time_app=True)
        try:
            for kind in KINDS:
                warm_up(fw, server.port, kind, n, 20)
                drive_load(client, server.port, kind, n, args, scratch, args.http_duration, args.http_requests)
        finally:
            printed = server.close().strip()
        report = json.loads(printed.splitlines()[-1])["app_us"] if printed else {}
        for kind in KINDS:
            out[(fw, kind)] = report.get(kind)
    return out


def percentile(sorted_values: List[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, int(round(pct / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = {body}
{header}
local count = 0
local limit = {limit}
function response(status, headers, body)
  count = count + 1
  if count >= limit then wrk.thread:stop() end
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(port: int, method: str, path: str, body: bytes, connections: int,
            duration: float, max_requests: int, scratch: Path) -> dict:
    threads = 1
    script = scratch / f"wrk_{method}_{abs(hash(path))}.lua"
    script.write_text(
        WRK_SCRIPT.format(
            method=method,
            body=json.dumps(body.decode()) if body else "nil",
            header='wrk.headers["Content-Type"] = "application/json"' if body else "",
            limit=max(1, max_requests // threads),
        )
    )
    seconds = max(1, int(round(duration)))
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
        "-s", str(script), f"http://127.0.0.1:{port}{path}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                          preexec_fn=lambda: pin_to_cpu("load"))
    out = done.stdout
    requests = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if done.returncode != 0 or not requests or not rps:
        raise RuntimeError(f"wrk failed: {done.stderr or out}")
    avg = re.search(r"^\s+Latency\s+(\S+)", out, re.M)
    errors = int(non2xx.group(1)) if non2xx else 0
    if sock:
        errors += sum(int(g) for g in sock.groups())
    count = int(requests.group(1))
    rate = float(rps.group(1))
    capped = count >= max_requests
    if capped and avg:
        # wrk divides by the whole -d duration even when the request cap
        # stopped its thread early; with every connection busy, Little's law
        # (connections / mean latency) gives the rate actually served.
        rate = connections / (_wrk_ms(avg.group(1)) / 1000.0)
    return {
        "client": "wrk",
        "requests": count,
        "capped": capped,
        "seconds": _wrk_ms(requests.group(2) + requests.group(3)) / 1000.0,
        "rps": rate,
        "p50_ms": _wrk_ms(p50.group(1)) if p50 else float("nan"),
        "p99_ms": _wrk_ms(p99.group(1)) if p99 else float("nan"),
        "errors": errors,
    }


def warm_up(fw: str, port: int, kind: str, n: int, count: int) -> None:
    """A few keep-alive requests that must all succeed before measuring."""
    import http.client

    method, path, body = http_request_for(kind, n)
    headers = {"Content-Type": "application/json"} if body else {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for _ in range(count):
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"http: {fw} {method} {path} gave {resp.status}: {data[:200]!r}")
    finally:
        conn.close()


def drive_load(client: str, port: int, kind: str, n: int, args: argparse.Namespace,
               scratch: Path, duration: float, max_requests: int) -> dict:
    method, path, body = http_request_for(kind, n)
    if client == "wrk":
        return run_wrk(port, method, path, body, args.connections, duration, max_requests, scratch)
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--load-worker", str(port),
        "--load-method", method, "--load-path", path, "--load-body", body.decode(),
        "--connections", str(args.connections), "--http-duration", str(duration),
        "--http-requests", str(max_requests),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120,
                          preexec_fn=lambda: pin_to_cpu("load"))
    if done.returncode != 0:
        raise RuntimeError(f"load worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def choose_client(requested: str) -> str:
    if requested == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if requested == "wrk" and not shutil.which("wrk"):
        raise SystemExit("--client wrk asked, but wrk is not on PATH")
    return requested


def run_http(frameworks: List[str], n: int, root: Path, args: argparse.Namespace, scratch: Path) -> List[dict]:
    client = choose_client(args.client)
    rng = random.Random(7)
    servers: Dict[str, Server] = {}
    samples: Dict[Tuple[str, str], List[dict]] = {(fw, k): [] for fw in frameworks for k in KINDS}
    try:
        for fw in frameworks:
            log(f"http: starting {fw} under waitress ({args.threads} threads)")
            servers[fw] = Server(fw, n, root, args.threads)
        for fw in frameworks:
            for kind in KINDS:
                warm_up(fw, servers[fw].port, kind, n, 20)
        for rnd in range(args.http_rounds):
            for kind in KINDS:
                order = list(frameworks)
                rng.shuffle(order)
                for fw in order:
                    log(f"http: round {rnd + 1}/{args.http_rounds} {kind} {fw} ({client})")
                    cpu_before = servers[fw].cpu_seconds()
                    run = drive_load(client, servers[fw].port, kind, n, args, scratch,
                                     args.http_duration, args.http_requests)
                    cpu_after = servers[fw].cpu_seconds()
                    if cpu_before is not None and cpu_after is not None and run["requests"]:
                        run["cpu_us"] = (cpu_after - cpu_before) * 1e6 / run["requests"]
                    samples[(fw, kind)].append(run)
    finally:
        for server in servers.values():
            server.close()
    app_us = time_apps(frameworks, n, root, args, scratch, client)
    rows = []
    for (fw, kind), runs in samples.items():
        cpu_known = all("cpu_us" in r for r in runs)
        rows.append(
            {
                "framework": fw,
                "kind": kind,
                "n": n,
                "client": client,
                "rps": statistics.median(r["rps"] for r in runs),
                "rps_runs": [r["rps"] for r in runs],
                # The server process's CPU time per request, waitress and app together.
                "cpu_us": statistics.median(r["cpu_us"] for r in runs) if cpu_known else None,
                "cpu_us_runs": [r["cpu_us"] for r in runs] if cpu_known else [],
                "app_us": app_us.get((fw, kind)),
                "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                "requests": sum(r["requests"] for r in runs),
                "errors": sum(r["errors"] for r in runs),
                "rounds": len(runs),
            }
        )
    return rows


# ---------------------------------------------------------------------------
# Results: ratios, targets, Markdown and JSON.


def machine() -> dict:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def minirouter_source() -> Dict[str, Any]:
    """Which minirouter.py ran: content hash, last commit, uncommitted edits."""
    path = ROOT / "minirouter.py"
    if not path.is_file():
        return {}
    info: Dict[str, Any] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:12]}
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %cI"],
                              capture_output=True, text=True, timeout=10)
        diff = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "minirouter.py"],
                              capture_output=True, timeout=10)
        if head.returncode == 0 and head.stdout.strip():
            info["commit"] = head.stdout.strip()
            info["uncommitted_changes"] = diff.returncode != 0
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def index_rows(rows: List[dict], *keys: str) -> Dict[tuple, dict]:
    return {tuple(r[k] for k in keys): r for r in rows}


def ratios_of(xs: Optional[List[float]], ys: Optional[List[float]]) -> List[float]:
    """xs[i] / ys[i], samples taken together; [] without them."""
    if xs and ys and len(xs) == len(ys) and all(ys):
        return [x / y for x, y in zip(xs, ys)]
    return []


def median_of_ratios(xs: Optional[List[float]], ys: Optional[List[float]]) -> Optional[float]:
    """The median of xs[i] / ys[i], samples taken together; None without them."""
    ratios = ratios_of(xs, ys)
    return statistics.median(ratios) if ratios else None


BOOTSTRAP_RESAMPLES = 2000


def median_interval(ratios: List[float], level: float = 0.95) -> Optional[Tuple[float, float]]:
    """Where the median of as many paired ratios again would plausibly land:
    the middle `level` of the medians of BOOTSTRAP_RESAMPLES resamples (with
    replacement; a fixed seed, so a run's results always give the same
    interval). None with fewer than three ratios."""
    if len(ratios) < 3:
        return None
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(BOOTSTRAP_RESAMPLES))
    tail = (1 - level) / 2
    return medians[int(tail * len(medians))], medians[int((1 - tail) * len(medians)) - 1]


def paired_ratio(a: dict, b: dict) -> float:
    """a's time over b's: the median over repeats of the ratio within each
    repeat, where both were timed in the same block (run_inproc)."""
    value = median_of_ratios(a.get("samples_us"), b.get("samples_us"))
    return a["us"] / b["us"] if value is None else value


def paired_rps_ratio(a: dict, b: dict) -> float:
    """a's requests/s over b's: the median over rounds of the ratio within
    each round, where both were driven back to back (run_http)."""
    value = median_of_ratios(a.get("rps_runs"), b.get("rps_runs"))
    return a["rps"] / b["rps"] if value is None else value


def compute_targets(results: dict) -> List[dict]:
    """Each target of issue 6 with its value, whether it is met, and the 95%
    interval of that value (median_interval) where it comes from paired samples."""
    targets = []
    inproc = results.get("inproc") or []
    by = index_rows(inproc, "n", "framework", "kind", "target")
    ns = sorted({r["n"] for r in inproc})
    fws = {r["framework"] for r in inproc}

    def worst_of_targets(rows: List[Tuple[Optional[dict], Optional[dict]]]) -> Tuple[Optional[float], List[float]]:
        """The largest paired ratio of a's time over b's among the rows, and its ratios."""
        worst: Optional[float] = None
        worst_ratios: List[float] = []
        for a, b in rows:
            if a and b:
                value = paired_ratio(a, b)
                if worst is None or value > worst:
                    worst, worst_ratios = value, ratios_of(a.get("samples_us"), b.get("samples_us"))
        return worst, worst_ratios

    def target(name: str, goal: str, value: Optional[float], met: bool, ratios: List[float]) -> dict:
        interval = median_interval(ratios)
        return {"target": name, "goal": goal, "value": value, "met": met,
                "interval": list(interval) if interval else None}

    small = 10 if 10 in ns else (ns[0] if ns else None)
    if small is not None and "minirouter" in fws:
        for peer, goal in (("falcon", 0.7), ("bottle", 1.0), ("flask", 1.0)):
            if peer not in fws:
                continue
            for kind in KINDS:
                value, ratios = worst_of_targets(
                    [(by.get((small, "minirouter", kind, t)), by.get((small, peer, kind, t))) for t in TARGETS]
                )
                targets.append(target(
                    f"{kind} at N={small}: minirouter / {peer}",
                    f"<= {goal}" if peer == "falcon" else "well under 1",
                    value, value is not None and value <= goal, ratios,
                ))
    if len(ns) >= 2 and "minirouter" in fws:
        lo, hi = ns[0], ns[-1]
        for kind in KINDS:
            value, ratios = worst_of_targets(
                [(by.get((hi, "minirouter", kind, t)), by.get((lo, "minirouter", kind, t))) for t in TARGETS]
            )
            targets.append(target(
                f"{kind}: minirouter growth N={lo} -> N={hi} (worst of last/random)",
                "<= 1.2", value, value is not None and value <= 1.2, ratios,
            ))
    http = index_rows(results.get("http") or [], "framework", "kind")
    for kind in KINDS:
        a, b = http.get(("minirouter", kind)), http.get(("bare", kind))
        if a and b and b["rps"]:
            value = paired_rps_ratio(a, b)
            targets.append(target(
                f"{kind} over HTTP: minirouter req/s / bare req/s", ">= 0.95", value, value >= 0.95,
                ratios_of(a.get("rps_runs"), b.get("rps_runs")),
            ))
    pairs = results.get("startup_pairs")
    value = startup_pair_ratio(pairs)
    if value is not None and pairs["n"] == STARTUP_TARGET_N:
        targets.append(target(
            "start-up, 3,000 routes: minirouter / flask", "< 1", value, value < 1, startup_pair_ratios(pairs),
        ))
    return targets


def startup_pair_ratios(pairs: Optional[dict]) -> List[float]:
    """minirouter's start-up over Flask's within each paired round."""
    if not pairs or not pairs.get("rounds"):
        return []
    first, second = pairs["frameworks"]
    return [r[first] / r[second] for r in pairs["rounds"]]


def startup_pair_ratio(pairs: Optional[dict]) -> Optional[float]:
    """minirouter's start-up over Flask's: the median over the paired rounds
    of the ratio within a round."""
    ratios = startup_pair_ratios(pairs)
    return statistics.median(ratios) if ratios else None


def fmt(value: Optional[float], digits: int = 2) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.{digits}f}"


def growth_split(by: Dict[tuple, dict], lo: int, hi: int) -> List[str]:
    """How much of minirouter's growth comes with the user's own handlers
    (the API floor grows by it too) and how much is minirouter's routing."""
    out = [
        "",
        f"### Growth, split: µs added per request from N={lo} to N={hi}",
        "",
        f"`{API_FLOOR}` is the floor's dict lookup plus the user's own handler from its route.py, "
        "a Request and the request context (what the API asks of any framework). `minirouter's own` "
        f"is minirouter's µs added less {API_FLOOR}'s. `bound` is the growth minirouter would show if "
        f"its own part grew no more than one dict lookup: (minirouter at N={lo} + {API_FLOOR}'s µs "
        f"added) / minirouter at N={lo}. Differences of medians.",
        "",
        f"| kind | target | bare | {API_FLOOR} | minirouter | minirouter's own | bound |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in KINDS:
        for target in TARGETS:
            added = {}
            for fw in ("bare", API_FLOOR, "minirouter"):
                a, b = by.get((hi, fw, kind, target)), by.get((lo, fw, kind, target))
                added[fw] = a["us"] - b["us"] if a and b else None
            if None in added.values():
                continue
            own = added["minirouter"] - added[API_FLOOR]
            base = by[(lo, "minirouter", kind, target)]["us"]
            bound = (base + added[API_FLOOR]) / base
            out.append(f"| {kind} | {target} | {added['bare']:+.2f} | {added[API_FLOOR]:+.2f} | "
                       f"{added['minirouter']:+.2f} | {own:+.2f} | {bound:.2f} |")
    return out


def markdown(results: dict) -> str:
    meta = results["meta"]
    m = meta["machine"]
    out = [
        "# minirouter benchmark",
        "",
        f"- Date: {meta['date']}",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']}, {m['python']}",
        f"- Command: `{meta['command']}`",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if k != "bare"),
        f"- Settings: {json.dumps(meta['settings'])}",
    ]
    src = meta.get("minirouter_source") or {}
    if src:
        out.append(f"- minirouter.py: sha256 {src.get('sha256')}, repository at {src.get('commit', '?')}"
                   + (" with uncommitted changes to minirouter.py" if src.get("uncommitted_changes") else ""))
    if meta.get("warning"):
        out.append(f"- WARNING: {meta['warning']}")
    if meta.get("skipped"):
        out.append("- Skipped: " + "; ".join(f"{k} ({v})" for k, v in meta["skipped"].items()))
    targets = results.get("targets") or []
    if targets:
        out += [
            "", "## Targets (issue 6)", "",
            "`95% interval`: where the median of as many paired samples again would plausibly land "
            f"(a bootstrap over the samples of this run, {BOOTSTRAP_RESAMPLES} resamples). A goal inside "
            "the interval is not settled by this run either way.",
            "", "| target | goal | measured | 95% interval | met |", "|---|---|---|---|---|",
        ]
        for t in targets:
            interval = t.get("interval")
            spread = f"{interval[0]:.2f}-{interval[1]:.2f}" if interval else "-"
            out.append(f"| {t['target']} | {t['goal']} | {fmt(t['value'])} | {spread} | {'yes' if t['met'] else 'NO'} |")
    inproc = results.get("inproc") or []
    if inproc:
        # The floor plus the API beside the floor (as in the README's table), not among the peers.
        order = ("bare", API_FLOOR) + FRAMEWORKS[1:]
        fws = [fw for fw in order if any(r["framework"] == fw for r in inproc)]
        peers = [fw for fw in fws if fw not in ("minirouter", API_FLOOR)]
        by = index_rows(inproc, "n", "framework", "kind", "target")
        s = meta["settings"]
        out += [
            "",
            "## Per request, in-process (µs per request, median)",
            "",
            f"Median of {s.get('repeats')} repeats of {s.get('calls')} calls each, timed with the thread's CPU "
            "clock (time given to other processes is not counted); `last` is the last registered "
            f"route, `random` cycles over {RANDOM_POOL} random routes and ids. Ratios: minirouter's time "
            "divided by the other's (below 1 means minirouter is faster); `x bare` is each framework's time "
            "over the floor's. Each repeat times every framework and size of one kind and target in one "
            "block, seconds apart, and a ratio is the median over repeats of the ratio within a repeat, "
            "so a slow spell of the machine hits both of its sides.",
            "",
        ]
        head = ["N", "kind", "target"] + [f"{fw} µs" for fw in fws]
        if "minirouter" in fws:
            head += [f"mr / {p}" for p in peers]
        head += [f"{fw} x bare" for fw in fws if fw != "bare"] if "bare" in fws else []
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for n in sorted({r["n"] for r in inproc}):
            for kind in KINDS:
                for target in TARGETS:
                    cells = [str(n), kind, target]
                    row = {fw: by.get((n, fw, kind, target)) for fw in fws}
                    cells += [fmt(row[fw]["us"]) if row[fw] else "-" for fw in fws]
                    mr = row.get("minirouter")
                    if "minirouter" in fws:
                        cells += [fmt(paired_ratio(mr, row[p])) if mr and row[p] else "-" for p in peers]
                    if "bare" in fws:
                        bare = row["bare"]
                        cells += [fmt(paired_ratio(row[fw], bare)) if row[fw] and bare else "-"
                                  for fw in fws if fw != "bare"]
                    out.append("| " + " | ".join(cells) + " |")
        ns = sorted({r["n"] for r in inproc})
        if len(ns) >= 2:
            lo, hi = ns[0], ns[-1]
            out += [
                "",
                f"### Growth: time at N={hi} / time at N={lo}",
                "",
                "| kind | target | " + " | ".join(fws) + " |",
                "|---|---|" + "---|" * len(fws),
            ]
            for kind in KINDS:
                for target in TARGETS:
                    cells = [kind, target]
                    for fw in fws:
                        a, b = by.get((hi, fw, kind, target)), by.get((lo, fw, kind, target))
                        cells.append(fmt(paired_ratio(a, b)) if a and b else "-")
                    out.append("| " + " | ".join(cells) + " |")
            if any(r["framework"] == API_FLOOR for r in inproc):
                out += growth_split(by, lo, hi)
    startup = results.get("startup") or []
    if startup:
        fws = [fw for fw in FRAMEWORKS if any(r["framework"] == fw for r in startup)]
        by_s = index_rows(startup, "framework", "n")
        out += [
            "",
            "## Start-up (build the app and serve one request; traced memory retained)",
            "",
            "Wall-clock seconds, in a fresh process per framework and size, to build the app through its "
            "public API (for minirouter: scan the folder and import every route.py, whose __pycache__ an "
            "earlier untimed build wrote) plus the first request, which is where lazy routers compile; "
            "median of the builds. Memory: what tracemalloc sees retained by one more build, per route "
            "(3 N routes).",
            "",
            "| N per kind | routes | " + " | ".join(f"{fw} s" for fw in fws) + " | "
            + " | ".join(f"{fw} B/route" for fw in fws) + " |",
            "|---|---|" + "---|" * (2 * len(fws)),
        ]
        for n in sorted({r["n"] for r in startup}):
            cells = [str(n), str(3 * n)]
            for fw in fws:
                r = by_s.get((fw, n), {})
                cells.append(fmt(r["startup_s"], 4) if r.get("startup_s") is not None
                             else ("(note)" if r.get("note") else "-"))
            for fw in fws:
                r = by_s.get((fw, n), {})
                cells.append(f"{r['bytes_per_route']:.0f}" if r.get("bytes_per_route") is not None else "-")
            out.append("| " + " | ".join(cells) + " |")
        notes = [r for r in startup if r.get("note")]
        if notes:
            out.append("")
            for r in notes:
                out.append(f"- {r['framework']}, N={r['n']}: {r['note']}")
    pairs = results.get("startup_pairs")
    if pairs and pairs.get("rounds"):
        first, second = pairs["frameworks"]
        out += [
            "",
            f"Paired rounds (the start-up target): {first} and {second} built back to back with "
            f"{3 * pairs['n']} routes, one timed build each in a fresh process, order alternating, "
            f"{len(pairs['rounds'])} rounds; {first} / {second} is the median of the ratio within a round: "
            f"{fmt(startup_pair_ratio(pairs))} (per round: "
            + ", ".join(fmt(ratio) for ratio in startup_pair_ratios(pairs)) + ").",
        ]
    http = results.get("http") or []
    if http:
        fws = [fw for fw in ("bare", SPUN_FLOOR, API_FLOOR, *FRAMEWORKS[1:]) if any(r["framework"] == fw for r in http)]
        by_h = index_rows(http, "framework", "kind")
        first = http[0]
        s = meta["settings"]
        out += [
            "",
            f"## Over HTTP (waitress, {s.get('threads')} threads, N={first['n']} per kind, last route)",
            "",
            f"Load: {first['client']} with {s.get('connections')} keep-alive connections, "
            f"{s.get('http_duration')} s or {s.get('http_requests')} requests per run, median of "
            f"{first['rounds']} rounds; on Linux the server runs on the last core and the load "
            "on the first. In each round "
            "every framework is driven once per kind, back to back in a shuffled order; `x bare` "
            "is the median over rounds of the ratio within a round. `server CPU µs` is the CPU time "
            "(user + system) the server process, waitress and the app, used per request. `app µs` "
            "is the app's own CPU time per request under waitress (the call, the body and close(), "
            "on the worker thread's clock), taken in a separate pass with each app wrapped in a "
            f"timer. `{SPUN_FLOOR}` is the floor made to spin {SPIN_US} µs of CPU more per request: "
            f"what a few microseconds of app time cost in req/s under waitress. `{API_FLOOR}` is the "
            "floor plus only what the API asks of any framework: the user's handler, a Request, the "
            "request context and the Response sent, with no routing and no checks.",
            "",
            "| kind | framework | req/s | x bare | p50 ms | p99 ms | errors | server CPU µs | app µs |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for kind in KINDS:
            bare = by_h.get(("bare", kind))
            for fw in fws:
                r = by_h.get((fw, kind))
                if not r:
                    continue
                rel = fmt(paired_rps_ratio(r, bare)) if bare and bare["rps"] else "-"
                out.append(
                    f"| {kind} | {fw} | {r['rps']:.0f} | {rel} | {fmt(r['p50_ms'], 3)} | "
                    f"{fmt(r['p99_ms'], 3)} | {r['errors']} | {fmt(r.get('cpu_us'), 1)} | {fmt(r.get('app_us'), 1)} |"
                )
    return "\n".join(out) + "\n"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Profiling minirouter's per-request path (not part of the default run).


def run_profile(root: Path, n: int, calls: int) -> None:
    import cProfile
    import pstats

    write_minirouter_tree(root, n)
    app = build_minirouter(n, root)
    rng = random.Random(1)
    for kind in KINDS:
        probes = make_probes(kind, n, "random", rng)
        for probe in probes[:3]:
            check(app, "minirouter", probe)
        time_batch(app, probes, 200)
        profiler = cProfile.Profile()
        profiler.enable()
        time_batch(app, probes, calls)
        profiler.disable()
        print(f"\n===== minirouter {kind}, N={n}, {calls} calls =====")
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(18)


# ---------------------------------------------------------------------------


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", default=",".join(map(str, DEFAULT_NS)),
                   help="routes per kind, comma-separated (default 10,100,1000,10000)")
    p.add_argument("--quick", action="store_true",
                   help="tiny run for smoke tests: N=3,10, few calls, short HTTP runs")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    p.add_argument("--sections", default="inproc,startup,http")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--calls", type=int, default=1000, help="calls per timed batch")
    p.add_argument("--startup-repeats", type=int, default=3)
    p.add_argument("--startup-timeout", type=float, default=180.0,
                   help="seconds one start-up worker may take (build, first request, memory)")
    p.add_argument("--startup-pairs", type=int, default=7,
                   help="rounds of minirouter and Flask built back to back for the start-up target")
    p.add_argument("--startup-n", default=None,
                   help="routes per kind for start-up (default: the --n sizes)")
    p.add_argument("--http-n", type=int, default=None, help="routes per kind over HTTP (default: smallest N)")
    p.add_argument("--http-duration", type=float, default=1.0, help="seconds per load run")
    p.add_argument("--http-requests", type=int, default=200000, help="requests at most per load run")
    p.add_argument("--http-rounds", type=int, default=15)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--threads", type=int, default=4, help="waitress threads")
    p.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--out", default=str(HERE / "results"), help="folder for latest.md and latest.json")
    p.add_argument("--profile", action="store_true", help="cProfile minirouter's request path and exit")
    # internal: subprocess roles
    p.add_argument("--startup-worker", help=argparse.SUPPRESS)
    p.add_argument("--serve-worker", help=argparse.SUPPRESS)
    p.add_argument("--load-worker", type=int, help=argparse.SUPPRESS)
    p.add_argument("--worker-n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--root", help=argparse.SUPPRESS)
    p.add_argument("--warm-full", default="1", help=argparse.SUPPRESS)
    p.add_argument("--no-memory", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--time-app", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--load-method", help=argparse.SUPPRESS)
    p.add_argument("--load-path", help=argparse.SUPPRESS)
    p.add_argument("--load-body", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        if "--n" not in (argv if argv is not None else sys.argv):
            args.n = "3,10"
        args.repeats = min(args.repeats, 2)
        args.calls = min(args.calls, 50)
        args.startup_repeats = 1
        args.startup_pairs = min(args.startup_pairs, 2)
        args.http_duration = min(args.http_duration, 0.5)
        args.http_requests = min(args.http_requests, 100)
        if args.startup_n is None:
            args.startup_n = args.n.split(",")[0]
        args.http_rounds = 1
    return args


def write_results(results: Dict[str, Any], out: Path, started: float) -> None:
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    source_now = minirouter_source()
    if source_now.get("sha256") != results["meta"]["minirouter_source"].get("sha256"):
        results["meta"]["warning"] = "minirouter.py changed while the benchmark ran"
        log("warning: minirouter.py changed while the benchmark ran")
    results["targets"] = compute_targets(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    text = markdown(results)
    (out / "latest.md").write_text(text, encoding="utf-8")
    print(text)
    log(f"wrote {out / 'latest.md'} and {out / 'latest.json'} in {results['meta']['seconds']} s")


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.startup_worker:
        startup_worker(args.startup_worker, args.worker_n, Path(args.root), args.startup_repeats,
                       args.warm_full == "1", memory=not args.no_memory)
        return 0
    if args.serve_worker:
        serve_worker(args.serve_worker, args.worker_n, Path(args.root), args.threads, args.time_app)
        return 0
    if args.load_worker:
        row = load_worker(args.load_worker, args.load_method, args.load_path, args.load_body.encode(),
                          args.connections, args.http_duration, args.http_requests)
        print(json.dumps(row))
        return 0

    ns = sorted({int(x) for x in args.n.split(",") if x.strip()})
    if not ns or min(ns) < 1:
        raise SystemExit("--n needs positive sizes")
    startup_ns = sorted({int(x) for x in args.startup_n.split(",")}) if args.startup_n else ns
    http_n = args.http_n or ns[0]
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    if args.profile:
        with tempfile.TemporaryDirectory(prefix="mrbench_") as tmp:
            run_profile(Path(tmp), ns[0], args.calls)
        return 0

    versions: Dict[str, str] = {}
    skipped: Dict[str, str] = {}
    frameworks = []
    for fw in [f.strip() for f in args.frameworks.split(",") if f.strip()]:
        if fw not in FRAMEWORKS:
            raise SystemExit(f"unknown framework {fw!r}; choose from {', '.join(FRAMEWORKS)}")
        version = framework_version(fw)
        if version is None:
            skipped[fw] = "not importable"
            log(f"skipping {fw}: not importable")
            continue
        versions[fw] = version
        frameworks.append(fw)
    if "http" in sections:
        try:
            import waitress  # noqa: F401

            versions["waitress"] = framework_version("waitress") or "unknown"
        except ImportError:
            skipped["http"] = "waitress not installed"
            sections.discard("http")

    command = "python bench/run.py" + ("".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])))
    results: Dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "command": command,
            "versions": versions,
            "minirouter_source": minirouter_source(),
            "skipped": skipped,
            "settings": {
                "n": ns,
                "repeats": args.repeats,
                "calls": args.calls,
                "startup_n": startup_ns,
                "startup_repeats": args.startup_repeats,
                "http_n": http_n,
                "http_duration": args.http_duration,
                "http_requests": args.http_requests,
                "http_rounds": args.http_rounds,
                "connections": args.connections,
                "threads": args.threads,
            },
        }
    }
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="mrbench_"))
    try:
        if "minirouter" in frameworks:
            for n in sorted(set(ns) | set(startup_ns) | {http_n, 1}):
                log(f"writing {3 * n} minirouter route files (N={n})")
                write_minirouter_tree(root, n)
        # The calibrations run beside the floor; the API floor is built from minirouter's route files.
        api_floor = [API_FLOOR] if "bare" in frameworks and "minirouter" in frameworks else []
        if "inproc" in sections:
            results["inproc"] = run_inproc(frameworks + api_floor, ns, root, args)
        if "startup" in sections:
            imported = set(ns) if "inproc" in sections else set()
            results["startup"] = run_startup(frameworks, startup_ns, root, args, imported)
            results["startup_pairs"] = run_startup_pairs(frameworks, startup_ns, root, args)
        if "http" in sections:
            scratch = root / "scratch"
            scratch.mkdir()
            http_frameworks = frameworks + ([SPUN_FLOOR] if "bare" in frameworks else []) + api_floor
            results["http"] = run_http(http_frameworks, http_n, root, args, scratch)
        write_results(results, Path(args.out), started)
    finally:
        log("removing the generated route files")
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
