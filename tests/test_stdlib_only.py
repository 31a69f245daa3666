"""minirouter.py imports only the standard library and keeps Python 3.9 syntax
(design.md, "What it is"; checked by parsing, so nothing is executed)."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parent.parent / "minirouter.py"


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


def test_only_stdlib_imports(tree):
    names = imported_top_names(tree)
    assert names, "no imports found: is this the right file?"
    outside = {name: line for name, line in names.items() if name not in sys.stdlib_module_names}
    assert outside == {}, f"imports outside the standard library: {outside}"


def test_checker_catches_third_party_import():
    fake = ast.parse("import os\nfrom waitress import serve\ndef f():\n    import requests\n")
    names = imported_top_names(fake)
    assert {n for n in names if n not in sys.stdlib_module_names} == {"waitress", "requests"}


def test_future_annotations(tree):
    first = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    assert any(a.name == "annotations" for n in first for a in n.names)


def test_python39_syntax():
    ast.parse(MODULE.read_text(encoding="utf-8"), filename=str(MODULE), feature_version=(3, 9))
