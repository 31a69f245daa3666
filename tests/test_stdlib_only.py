"""minirouter.py imports only the standard library and keeps Python 3.9 syntax
(design.md, "What it is"; checked by parsing, so nothing is executed)."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parent.parent / "minirouter.py"


# sys.stdlib_module_names, the list these checks use, is Python 3.10+ (CI runs 3.11).
needs_stdlib_names = pytest.mark.skipif(
    not hasattr(sys, "stdlib_module_names"), reason="sys.stdlib_module_names is Python 3.10+"
)


@pytest.fixture(scope="module")
def tree():
    return ast.parse(MODULE.read_text(encoding="utf-8"), filename=str(MODULE))


def imported_top_names(tree: ast.AST) -> dict[str, int]:
    """Top-level module name -> first line, for every absolute import anywhere in the file,
    plus importlib.import_module("x") / __import__("x") with a literal name."""
    names: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.setdefault(alias.name.split(".")[0], node.lineno)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"relative import at line {node.lineno}: a single module has no package"
            names.setdefault((node.module or "").split(".")[0], node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if fname in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not arg.value.startswith("."):
                    names.setdefault(arg.value.split(".")[0], node.lineno)
    return names


# Never required: `minirouter serve` uses waitress when it is installed and
# wsgiref otherwise (issue 5), through one guarded importlib call.
OPTIONAL_AT_RUN_TIME = {"waitress"}


@needs_stdlib_names
def test_only_stdlib_imports(tree):
    names = imported_top_names(tree)
    assert names, "no imports found: is this the right file?"
    outside = {
        name: line
        for name, line in names.items()
        if name not in sys.stdlib_module_names and name not in OPTIONAL_AT_RUN_TIME
    }
    assert outside == {}, f"imports outside the standard library: {outside}"


def test_module_imports_without_waitress(tmp_path):
    """The optional server really is optional: the module imports and serves
    requests in a Python where importing waitress fails."""
    import subprocess

    blocker = tmp_path / "waitress.py"
    blocker.write_text("raise ImportError('waitress is not installed here')\n")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2]);"
        "import minirouter; print(minirouter.__version__)"
    )
    root = str(Path(__file__).resolve().parent.parent)
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), root], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


@needs_stdlib_names
def test_checker_catches_third_party_import():
    fake = ast.parse("import os\nfrom waitress import serve\ndef f():\n    import requests\n")
    names = imported_top_names(fake)
    assert {n for n in names if n not in sys.stdlib_module_names} == {"waitress", "requests"}


def test_future_annotations(tree):
    first = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    assert any(a.name == "annotations" for n in first for a in n.names)


def test_python39_syntax():
    ast.parse(MODULE.read_text(encoding="utf-8"), filename=str(MODULE), feature_version=(3, 9))
