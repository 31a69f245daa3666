"""The module on the oldest Python it supports (3.9), when one is installed.

vermin (test_tooling.py) checks the syntax only; this runs the request path:
a Python 3.10 feature used at run time (calling a staticmethod object, say)
passes every other test here and fails only on 3.9. Skipped when no 3.9 is
found: set MINIROUTER_PYTHON39 to its path, or put python3.9 on the PATH.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def python39() -> str | None:
    candidates = [os.environ.get("MINIROUTER_PYTHON39")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python")))
    candidates += [shutil.which("python3.9")]  # may be a pyenv shim that refuses to run
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                                   capture_output=True, text=True, timeout=60, check=False)
            if probe.stdout.strip() == "True":
                return candidate
    return None


SCRIPT = textwrap.dedent('''
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    from minirouter import App, TestClient

    folder = sys.argv[2]  # the test's tmp_path: nothing is left behind
    files = {
        "app/middleware.py": (
            "from minirouter import Response\\n"
            "def middleware(request):\\n"
            "    return Response.next(headers={'X-Mw': '1'})\\n"
        ),
        "app/sync/[id]/route.py": (
            "from minirouter import Response, cookies\\n"
            "def GET(request, context):\\n"
            "    cookies().set('seen', context.params['id'])\\n"
            "    return {'id': context.params['id'], 'q': request.search_params.get('q')}\\n"
            "def POST(request):\\n"
            "    return Response.json(request.json(), status=201)\\n"
        ),
        "app/async/route.py": (
            "import asyncio\\n"
            "async def GET():\\n"
            "    await asyncio.sleep(0)\\n"
            "    return {'async': True}\\n"
        ),
        "app/stream/route.py": (
            "from minirouter import Response\\n"
            "async def pieces():\\n"
            "    yield b'a'\\n"
            "    yield b'b'\\n"
            "def GET():\\n"
            "    return Response(pieces())\\n"
        ),
        "app/form/route.py": (
            "def POST(request):\\n"
            "    form = request.form()\\n"
            "    return {'t': form.get('t'), 'f': form.get('f').read().decode()}\\n"
        ),
        "app/none/route.py": "def GET():\\n    return None\\n",
        "app/shop/[...slug]/route.py": "def GET(request, context):\\n    return context.params\\n",
    }
    for name, text in files.items():
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as out:
            out.write(text)
    client = TestClient(App(os.path.join(folder, "app")))
    seen = {}
    r = client.get("/sync/7?q=x")
    seen["sync"] = [r.status, r.json(), r.headers.get("x-mw"), r.cookies]
    r = client.post("/sync/7", json={"a": [1, 2]})
    seen["post"] = [r.status, r.json()]
    seen["async"] = client.get("/async").json()
    seen["stream"] = client.get("/stream").text
    r = client.post("/form", data={"t": "v"}, files={"f": ("a.txt", b"file")})
    seen["form"] = r.json()
    seen["none"] = client.get("/none").status
    seen["catchall"] = client.get("/shop/a%2Fb/c").json()
    seen["head"] = [client.head("/async").status, client.head("/async").text]
    seen["missing"] = [client.get("/nowhere").status, client.request("FOO", "/async").status]
    print(json.dumps(seen))
''')


def test_the_request_path_on_python_3_9(tmp_path: Path) -> None:
    interpreter = python39()
    if interpreter is None:
        pytest.skip("no Python 3.9 found (set MINIROUTER_PYTHON39)")
    script = tmp_path / "smoke.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [interpreter, str(script), str(ROOT), str(tmp_path)], capture_output=True, text=True, timeout=120,
        check=False
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "sync": [200, {"id": "7", "q": "x"}, "1", {"seen": "7"}],
        "post": [201, {"a": [1, 2]}],
        "async": {"async": True},
        "stream": "ab",
        "form": {"t": "v", "f": "file"},
        "none": 500,
        "catchall": {"slug": ["a/b", "c"]},
        "head": [200, ""],
        "missing": [404, 501],
    }
