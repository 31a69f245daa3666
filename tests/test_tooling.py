"""Static checks of minirouter.py: mypy --strict, ruff, Python 3.9 compatibility, the version.

The tools come from requirements.txt; a missing tool fails the test rather than skipping it,
so a fresh clone that forgot to install them cannot pass by accident.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "minirouter.py"


def run_tool(tool: str, *args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m tool args` (or `python -c code args`) in the repository root."""
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", tool, *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    if f"No module named '{tool}'" in result.stderr and result.returncode != 0:
        pytest.fail(f"{tool} is not installed: pip install -r requirements.txt\n{result.stderr}")
    return result


def test_mypy_strict() -> None:
    result = run_tool("mypy", "--strict", "minirouter.py")
    assert result.returncode == 0, result.stdout + result.stderr


# A user's typed route: not_found() and redirect() never return (Next.js types
# them `never`), so mypy --strict knows no return is missing and `comment` is set.
TYPED_ROUTE = """\
from typing import Optional

from minirouter import Context, Request, Response, not_found, redirect

COMMENTS = {1: "first"}


def GET(request: Request, context: Context) -> Response:
    comment: Optional[str] = COMMENTS.get(int(context.params["id"]))
    if comment is None:
        redirect("/comments")
    text: str = comment
    return Response(text)


def DELETE(request: Request, context: Context) -> Response:
    if int(context.params["id"]) in COMMENTS:
        return Response(None, status=204)
    not_found()
"""


def test_a_typed_user_route_passes_mypy_strict(tmp_path: Path) -> None:
    route = tmp_path / "route.py"
    route.write_text(TYPED_ROUTE)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(route)], cwd=tmp_path, capture_output=True, text=True,
        timeout=300, check=False, env={**os.environ, "MYPYPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


# The whole tree: the module, the example app, the tests, the benchmark.
RUFF_PATHS = ["."]


def test_ruff_check() -> None:
    result = run_tool("ruff", "check", *RUFF_PATHS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_python_3_9_syntax_with_vermin() -> None:
    # "3.9-": every construct used must exist in Python 3.9 or earlier.
    # vermin has no __main__; call its entry point (the same function as the `vermin` script).
    result = run_tool("vermin", "--target=3.9-", "--violations", "--no-tips", "minirouter.py",
                      code="import sys, vermin; sys.exit(vermin.main())")
    assert result.returncode == 0, result.stdout + result.stderr


def python39() -> str | None:
    for candidate in ("python3.9", str(Path.home() / ".pyenv/versions/3.9.18/bin/python3.9")):
        path = shutil.which(candidate)
        if path and subprocess.run([path, "--version"], capture_output=True, check=False).returncode == 0:
            return path
    return None


def test_imports_under_python_3_9_when_available(tmp_path: Path) -> None:
    # vermin reads syntax; a real 3.9 also catches runtime-evaluated annotations and aliases.
    interpreter = python39()
    if interpreter is None:
        pytest.skip("no Python 3.9 interpreter on this machine")
    result = subprocess.run([interpreter, "-c", "import minirouter; print(minirouter.__version__)"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_version_string() -> None:
    import minirouter

    # PEP 440 public version, e.g. 0.1.0 or 1.2.0rc1
    assert re.fullmatch(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", minirouter.__version__)
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    # The package version is read from the module, never written twice.
    assert 'version = {attr = "minirouter.__version__"}' in pyproject
    assert re.search(r'dynamic\s*=\s*\[\s*"version"\s*\]', pyproject)
