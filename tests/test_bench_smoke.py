"""Smoke run of bench/run.py: tiny sizes, few requests, nothing about time.

It keeps the benchmark working: every framework answers every kind of
request correctly (the harness checks each answer before timing), and the
Markdown and JSON results hold the expected rows.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import files_compiled_at_start

for _peer in ("bottle", "falcon", "flask", "waitress"):
    pytest.importorskip(_peer)

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bench" / "run.py"
FRAMEWORKS = ["bare", "minirouter", "falcon", "bottle", "flask"]
KINDS = ["static", "dynamic", "echo"]
NS = [2, 5]


def run_bench(tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--n", ",".join(map(str, NS)), "--out", str(out), *extra],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert (out / "latest.md").is_file()
    results = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    results["markdown"] = (out / "latest.md").read_text(encoding="utf-8")
    return results


def test_quick_run_writes_every_table(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--client", "python")
    meta = results["meta"]
    assert meta["skipped"] == {}
    assert set(meta["versions"]) >= {"minirouter", "falcon", "bottle", "flask", "waitress"}
    assert meta["command"].startswith("python bench/run.py --quick")

    cells = {(r["n"], r["framework"], r["kind"], r["target"]) for r in results["inproc"]}
    # In-process, beside the frameworks: the floor plus what the API itself asks.
    expected = {(n, fw, kind, target) for n in NS for fw in FRAMEWORKS + ["bare+api"] for kind in KINDS
                for target in ("last", "random")}
    assert cells == expected
    assert all(r["us"] > 0 and len(r["samples_us"]) == 2 for r in results["inproc"])

    assert {(r["framework"], r["n"]) for r in results["startup"]} == {(fw, NS[0]) for fw in FRAMEWORKS}
    assert all(r["memory_bytes"] > 0 and r["routes"] == 3 * NS[0] for r in results["startup"])
    # The start-up target's own rounds: minirouter and Flask built back to back.
    pairs = results["startup_pairs"]
    assert pairs["n"] == NS[0] and pairs["frameworks"] == ["minirouter", "flask"]
    assert len(pairs["rounds"]) == 2
    assert all(set(r) == {"minirouter", "flask"} and min(r.values()) > 0 for r in pairs["rounds"])
    assert "Paired rounds (the start-up target)" in results["markdown"]

    http = {(r["framework"], r["kind"]): r for r in results["http"]}
    # Over HTTP, beside the frameworks: the floor made to spin a few µs more
    # per request, and the floor plus what the API itself asks.
    assert set(http) == {(fw, kind) for fw in FRAMEWORKS + ["bare+4us", "bare+api"] for kind in KINDS}
    for row in http.values():
        assert row["client"] == "python"
        assert row["requests"] > 0
        assert row["errors"] == 0
        assert len(row["rps_runs"]) == row["rounds"]
        assert row["app_us"] > 0  # the separate AppTimer pass timed every app and kind

    names = [t["target"] for t in results["targets"]]
    for kind in KINDS:
        assert f"{kind} at N={NS[0]}: minirouter / falcon" in names
        assert any(name.startswith(f"{kind}: minirouter growth") for name in names)
        assert f"{kind} over HTTP: minirouter req/s / bare req/s" in names

    text = results["markdown"]
    assert "| target | goal | measured | 95% interval | met |" in text
    for heading in ("## Targets (issue 6)", "## Per request, in-process", "### Growth",
                    "### Growth, split", "## Start-up", "## Over HTTP"):
        assert heading in text
    for n in NS:
        for kind in KINDS:
            for target in ("last", "random"):
                assert f"| {n} | {kind} | {target} |" in text
    # Every column of the README's in-process table, the API floor's included.
    assert "| N | kind | target | bare µs | bare+api µs | minirouter µs | falcon µs |" in text
    for fw in FRAMEWORKS:
        for kind in KINDS:
            assert f"| {kind} | {fw} |" in text


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_quick_http_run_with_wrk(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--sections", "http", "--frameworks", "bare,minirouter", "--client", "wrk")
    rows = {(r["framework"], r["kind"]): r for r in results["http"]}
    assert set(rows) == {(fw, kind) for fw in ("bare", "bare+4us", "bare+api", "minirouter") for kind in KINDS}
    assert all(r["client"] == "wrk" and r["requests"] > 0 and r["errors"] == 0 for r in rows.values())
    assert "inproc" not in results and "startup" not in results


def _load_bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_run_for_test", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_registration_builds_the_same_routers(tmp_path: Path) -> None:
    """The shortcut used for large Falcon and Bottle apps ends in the state
    their public add-route API gives."""
    bench = _load_bench()

    def falcon_state(mode: str) -> str:
        bench.QUICK_REGISTRATION["mode"] = mode
        return bench.build_falcon(25, tmp_path)._router.finder_src

    def bottle_state(mode: str) -> tuple:
        bench.QUICK_REGISTRATION["mode"] = mode
        app = bench.build_bottle(25, tmp_path)
        router = app.router
        regexes = [(method, [(match.__self__.pattern, len(rules)) for match, rules in combos])
                   for method, combos in sorted(router.dyna_regexes.items())]
        static = {method: sorted(paths) for method, paths in router.static.items()}
        return regexes, static, len(app.routes), len(app.config._overlays)

    try:
        assert falcon_state("always") == falcon_state("never")
        assert bottle_state("always") == bottle_state("never")
        bench.QUICK_REGISTRATION["mode"] = "always"
        for fw in ("falcon", "bottle"):
            app = bench.BUILDERS[fw](25, tmp_path)
            for kind in KINDS:
                for i in (0, 24):
                    bench.check(app, fw, bench.Probe(kind, i, "77"))
    finally:
        bench.QUICK_REGISTRATION["mode"] = "large"


def test_ratios_pair_samples_taken_together() -> None:
    """A ratio is the median of the ratios within each repeat (in-process) or
    round (HTTP), not the ratio of two medians: a slow spell that hits both
    sides of one repeat cancels out."""
    bench = _load_bench()
    # Repeat 2 was a slow spell for both sides; in two repeats of three a
    # took half b's time. The medians of each side (2.5 and 4.0) would say 0.625.
    a = {"us": 2.5, "samples_us": [1.0, 30.0, 2.5]}
    b = {"us": 4.0, "samples_us": [2.0, 60.0, 4.0]}
    assert bench.paired_ratio(a, b) == 0.5
    assert bench.paired_ratio({"us": 2.5}, {"us": 4.0}) == 0.625
    fast = {"rps": 900.0, "rps_runs": [900.0, 90.0, 1000.0]}
    floor = {"rps": 1000.0, "rps_runs": [1000.0, 100.0, 1100.0]}
    assert bench.paired_rps_ratio(fast, floor) == 0.9
    # Results without per-repeat samples fall back to the medians.
    assert bench.paired_rps_ratio({"rps": 50.0}, {"rps": 100.0}) == 0.5
    # Start-up: round 2 was a slow spell for minirouter alone, round 3 for Flask alone.
    pairs = {"n": 1000, "frameworks": ["minirouter", "flask"],
             "rounds": [{"minirouter": 0.6, "flask": 0.8}, {"minirouter": 1.2, "flask": 0.8},
                        {"minirouter": 0.6, "flask": 1.6}]}
    assert bench.startup_pair_ratio(pairs) == pytest.approx(0.75)
    assert bench.startup_pair_ratio(None) is None
    target = [t for t in bench.compute_targets({"startup_pairs": pairs}) if t["target"].startswith("start-up")]
    assert target == [{"target": "start-up, 3,000 routes: minirouter / flask", "goal": "< 1",
                       "value": pytest.approx(0.75), "met": True,
                       "interval": [pytest.approx(0.375), pytest.approx(1.5)]}]
    # A smaller run's pairs (fewer routes) make no start-up target.
    assert not [t for t in bench.compute_targets({"startup_pairs": {**pairs, "n": 10}})
                if t["target"].startswith("start-up")]


def test_median_interval_brackets_the_median_and_narrows_with_the_spread() -> None:
    bench = _load_bench()
    rng = random.Random(3)
    steady = [1.0 + rng.uniform(-0.01, 0.01) for _ in range(15)]
    noisy = [1.0 + rng.uniform(-0.3, 0.3) for _ in range(15)]
    for ratios in (steady, noisy):
        low, high = bench.median_interval(ratios)
        assert min(ratios) <= low <= statistics.median(ratios) <= high <= max(ratios)
        assert bench.median_interval(ratios) == (low, high)  # a fixed seed: one run, one interval
    assert (lambda i: i[1] - i[0])(bench.median_interval(steady)) < 0.05
    assert (lambda i: i[1] - i[0])(bench.median_interval(noisy)) > 0.1
    assert bench.median_interval([1.0, 2.0]) is None  # too few to say anything


def test_app_timer_counts_each_kind_and_closes_the_body() -> None:
    bench = _load_bench()
    closed = []

    class Body(list):
        def close(self) -> None:
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return Body([b"o", b"k"])

    timer = bench.AppTimer(app)
    for path in ("/static/s1", "/items/r1/7", "/items/r2/8", "/elsewhere"):
        assert timer({"PATH_INFO": path}, lambda status, headers: None) == [b"ok"]
    assert len(closed) == 4
    assert [timer.totals[kind][0] for kind in KINDS] == [1, 2, 0]
    report = timer.report()
    assert report["static"] > 0 and report["dynamic"] > 0 and report["echo"] is None


def test_spun_floor_spends_its_microseconds_and_answers_as_the_floor(tmp_path: Path) -> None:
    bench = _load_bench()
    floor, spun = bench.build_bare(3, tmp_path), bench.BUILDERS[bench.SPUN_FLOOR](3, tmp_path)
    probe = bench.Probe("dynamic", 2, "77")
    assert bench.call_once(spun, probe) == bench.call_once(floor, probe)
    # A lower bound by construction: the spin ends only once this thread's
    # CPU clock has moved SPIN_US, whatever else runs on the machine.
    start = bench.CPU_CLOCK()
    bench.call_once(spun, probe)
    assert bench.CPU_CLOCK() - start >= bench.SPIN_US * 1000


def test_api_floor_calls_the_users_own_handlers_and_answers_as_minirouter(tmp_path: Path) -> None:
    bench = _load_bench()
    app_dir = bench.write_minirouter_tree(tmp_path, 3)
    # A handler that says who called it: the floor must run the route.py's function, not a copy.
    (app_dir / "static" / "s1" / "route.py").write_text(
        "from minirouter import Response, headers\n\n\n"
        "def GET():\n    return Response('static s1 for ' + headers().get('user-agent'))\n",
        encoding="utf-8",
    )
    api_floor = bench.BUILDERS[bench.API_FLOOR](3, tmp_path)
    minirouter_app = bench.build_minirouter(3, tmp_path)
    for kind in KINDS:
        for i in (0, 2):
            probe = bench.Probe(kind, i, "77")
            assert bench.call_once(api_floor, probe) == bench.call_once(minirouter_app, probe)
    answer = bench.call_once(api_floor, bench.Probe("static", 1, "77"))
    assert answer == ("200 OK", b"static s1 for minirouter-bench")  # headers() saw this request


def test_growth_split_takes_the_api_floors_growth_from_minirouters() -> None:
    bench = _load_bench()
    us = {("bare", 10): 0.5, ("bare", 1000): 0.75, ("bare+api", 10): 1.5, ("bare+api", 1000): 2.0,
          ("minirouter", 10): 2.5, ("minirouter", 1000): 3.25}
    by = {(n, fw, "static", "random"): {"us": value} for (fw, n), value in us.items()}
    lines = bench.growth_split(by, 10, 1000)
    # bare +0.25, bare+api +0.50, minirouter +0.75, of which its own +0.25;
    # bound: (2.5 + 0.5) / 2.5 = 1.2
    assert "| static | random | +0.25 | +0.50 | +0.75 | +0.25 | 1.20 |" in lines
    assert not any(line.startswith("| static | last") for line in lines)  # no rows, no line


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs CPU affinity and two cores")
def test_server_and_load_are_pinned_to_different_cores() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    pinned = {}
    for role in ("server", "load"):
        done = subprocess.run(
            [sys.executable, "-c",
             "import importlib.util, os, sys\n"
             f"spec = importlib.util.spec_from_file_location('b', {str(RUN)!r})\n"
             "b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)\n"
             f"b.pin_to_cpu({role!r}); print(sorted(os.sched_getaffinity(0)))"],
            capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        pinned[role] = done.stdout.strip()
    assert pinned == {"server": str([cpus[-1]]), "load": str([cpus[0]])}


def test_a_build_imports_the_route_files_from_the_bytecode_the_benchmark_wrote(tmp_path: Path) -> None:
    # Start-up is timed as after a first run; where PYTHONDONTWRITEBYTECODE is set no
    # import writes __pycache__, so the benchmark writes it, and a build must use it.
    _load_bench().write_minirouter_tree(tmp_path, 3)
    build = (f"import sys\nsys.path[:0] = [{str(ROOT / 'bench')!r}, {str(ROOT)!r}]\nimport run as bench\n"
             f"bench.build_minirouter(3, bench.Path({str(tmp_path)!r}))")
    assert files_compiled_at_start(build, tmp_path) == 0
