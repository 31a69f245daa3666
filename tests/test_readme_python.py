"""The README's ```python blocks: each one runs, or matches the file it shows.

tests/readme_curl.py replays the curl lines; nothing else ran these blocks, so
an example could drift from app/ or from minirouter.py without a failing test.
"""
from __future__ import annotations

import ast
import inspect
import re

import pytest

from conftest import APP_DIR, ROOT

import minirouter
from minirouter import App, HTTPError, Response

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _python_blocks() -> dict[int, str]:
    """Line number of the opening fence -> the block's source."""
    blocks, lines, index = {}, README.splitlines(), 0
    while index < len(lines):
        if lines[index].strip() == "```python":
            start, body = index + 1, []
            index += 1
            while lines[index].strip() != "```":
                body.append(lines[index])
                index += 1
            blocks[start] = "\n".join(body) + "\n"
        index += 1
    return blocks


BLOCKS = _python_blocks()


def _block(first_line: str) -> str:
    found = [source for source in BLOCKS.values() if source.lstrip().startswith(first_line)]
    assert len(found) == 1, f"one README python block starting {first_line!r} expected"
    return found[0]


def _without_docstrings(tree: ast.AST) -> str:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:]
    return ast.dump(tree)


@pytest.mark.parametrize("line", sorted(BLOCKS))
def test_every_python_block_parses(line: int) -> None:
    ast.parse(BLOCKS[line], filename=f"README.md:{line}")


def test_the_middleware_block_is_app_middleware_py_less_its_comments() -> None:
    shown = _without_docstrings(ast.parse(_block("from urllib.parse import urlsplit")))
    actual = _without_docstrings(ast.parse((APP_DIR / "middleware.py").read_text(encoding="utf-8")))
    assert shown == actual


def test_the_hello_block_is_app_hello_route_py() -> None:
    shown = _without_docstrings(ast.parse(_block("# app/hello/route.py")))
    actual = _without_docstrings(ast.parse((APP_DIR / "hello" / "route.py").read_text(encoding="utf-8")))
    assert shown == actual


def test_the_app_signature_block_gives_the_real_defaults() -> None:
    call = ast.parse(_block('App("app"')).body[0].value
    shown = {k.arg: ast.literal_eval(k.value) if not isinstance(k.value, ast.BinOp) else eval(ast.unparse(k.value))
             for k in call.keywords}
    real = {name: p.default for name, p in inspect.signature(App).parameters.items() if name != "app_dir"}
    assert shown == real


def test_the_caching_block_is_what_app_time_declares() -> None:
    source = _block("# app/time/route.py")
    assert "revalidate = 10" in source and 'dynamic = "force-static"' in source
    assert re.search(r"^revalidate = 10\b", (APP_DIR / "time" / "route.py").read_text(), re.M)
    assert re.search(r'^dynamic = "force-static"', (APP_DIR / "time" / "static" / "route.py").read_text(), re.M)


def test_the_response_cookie_and_error_blocks_run_as_their_comments_say() -> None:
    namespace = {"Response": Response, "chunks": lambda: iter([b"a"])}
    for statement in ast.parse(_block('Response("text")')).body:
        exec(compile(ast.Module([statement], []), "README", "exec"), namespace)
    response = Response()
    exec(_block("response.cookies.set("), {"response": response})
    assert response.headers.get_all("set-cookie") == ["theme=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"]
    statuses = []
    for statement in ast.parse(_block('redirect("/comments")')).body:
        try:
            exec(compile(ast.Module([statement], []), "README", "exec"), vars(minirouter).copy())
        except HTTPError as error:
            statuses.append(error.status)
    assert statuses == [307, 308, 404, 409, 503]


def test_the_testclient_block_passes(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # "run from the repository root"
    namespace: dict = {}
    exec(_block("from minirouter import App, TestClient"), namespace)
    namespace["test_post_a_comment"](tmp_path, monkeypatch)
