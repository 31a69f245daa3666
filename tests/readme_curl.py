"""Run the README's curl lines and check them against the output it shows.

The README shows each command with its output as `#` lines under it:

    curl -i http://127.0.0.1:8000/hello
    # HTTP/1.1 200 OK
    # Content-Type: text/plain; charset=utf-8
    #
    # Hello World!

`read_sections()` collects the commands of each `##` or `###` section, in
order; each section runs on a fresh server.
A command runs either through real curl (when installed) or through an
http.client rendering of the same options, so the check never depends on
curl being there, and is honest about curl when it is.
"""
from __future__ import annotations

import http.client
import json
import mimetypes
import re
import shlex
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

README_HOST = "http://127.0.0.1:8000"


@dataclass
class Step:
    """One command of the README: a curl line or an `echo 'text' > file`."""

    line: int  # 1-based line number in the README
    source: str  # the command as written (continuations joined)
    argv: list[str]
    expected: list[str] = field(default_factory=list)  # the `#` lines, "# " removed

    @property
    def is_curl(self) -> bool:
        return self.argv[:1] == ["curl"]


@dataclass
class Section:
    title: str
    line: int
    steps: list[Step]

    @property
    def curl_steps(self) -> list[Step]:
        return [s for s in self.steps if s.is_curl]


def read_sections(readme: Path) -> list[Section]:
    """Every `##` and `###` section of the README with its commands, in order."""
    sections: list[Section] = [Section("(top)", 1, [])]
    chapter = "(top)"
    lines = readme.read_text(encoding="utf-8").splitlines()
    in_code = False
    index = 0
    while index < len(lines):
        text = lines[index]
        stripped = text.strip()
        if stripped.startswith("```"):
            in_code = not in_code
        elif not in_code and text.startswith("## "):
            chapter = text[3:].strip()
            sections.append(Section(chapter, index + 1, []))
        elif not in_code and text.startswith("### "):
            sections.append(Section(f"{chapter} > {text[4:].strip()}", index + 1, []))
        elif in_code and (stripped.startswith("curl ") or _is_echo(stripped)):
            start = index
            source = stripped
            while source.endswith("\\") and index + 1 < len(lines):
                index += 1
                source = source[:-1].rstrip() + " " + lines[index].strip()
            step = Step(start + 1, source, shlex.split(source))
            while index + 1 < len(lines) and lines[index + 1].strip().startswith("#"):
                index += 1
                comment = lines[index].strip()
                step.expected.append(comment[2:] if comment.startswith("# ") else comment[1:])
            sections[-1].steps.append(step)
        index += 1
    return [s for s in sections if s.steps]


def _is_echo(line: str) -> bool:
    return line.startswith("echo ") and " > " in line


# --- expected output -----------------------------------------------------------

@dataclass
class Expected:
    status: Optional[int]
    reason: Optional[str]
    headers: list[tuple[str, str]]
    body: Optional[str]  # None: not shown, so not checked


def parse_expected(step: Step, include: bool) -> Expected:
    lines = list(step.expected)
    if not include:
        return Expected(None, None, [], "\n".join(lines) if lines else None)
    if not lines:
        raise AssertionError(f"README line {step.line}: curl -i without a status line under it")
    match = re.fullmatch(r"HTTP/[0-9.]+ ([0-9]{3})(?: (.*))?", lines[0])
    if not match:
        raise AssertionError(f"README line {step.line}: {lines[0]!r} is not a status line")
    headers = []
    rest = lines[1:]
    while rest and rest[0] != "":
        name, sep, value = rest.pop(0).partition(":")
        if not sep:
            raise AssertionError(f"README line {step.line}: expected 'Name: value', got {name!r}")
        headers.append((name.strip(), value.strip()))
    body = "\n".join(rest[1:]) if rest else None
    return Expected(int(match.group(1)), match.group(2), headers, body)


def wildcard_match(pattern: str, text: str) -> bool:
    """`pattern` equals `text`, where each `...` in the pattern stands for any text."""
    regex = ".*?".join(re.escape(part) for part in pattern.split("..."))
    return re.fullmatch(regex, text, re.DOTALL) is not None


def json_match(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(json_match(v, actual[k]) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(json_match(e, a) for e, a in zip(expected, actual))
        )
    if isinstance(expected, str) and "..." in expected:
        return isinstance(actual, str) and wildcard_match(expected, actual)
    return type(expected) is type(actual) and expected == actual


@dataclass
class Result:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def describe(self) -> str:
        head = "\n".join(f"{k}: {v}" for k, v in self.headers)
        return f"HTTP/1.1 {self.status} {self.reason}\n{head}\n\n{self.body[:2000]!r}"


def check(step: Step, result: Result, include: bool, exact_names: bool = False) -> None:
    """Assert that `result` is what the README shows under `step`; with
    `exact_names` (real curl, which prints names as the server sent them) a
    header's name must be spelled as the README shows it, case included."""
    expected = parse_expected(step, include)
    where = f"README line {step.line}: {step.source}\ngot:\n{result.describe()}"
    if not step.expected:
        raise AssertionError(f"{where}\nthe README shows no output for this line: add # lines under it")
    if expected.status is not None:
        assert result.status == expected.status, f"status {expected.status} expected\n{where}"
        if expected.reason:
            assert result.reason.lower() == expected.reason.lower(), f"reason {expected.reason!r}\n{where}"
    for name, value in expected.headers:
        values = [v for k, v in result.headers if k == name] if exact_names else result.header_values(name)
        assert any(wildcard_match(value, v) for v in values), f"header {name}: {value} expected\n{where}"
    if expected.body is None:
        return
    text = result.body.decode("utf-8", errors="replace")
    try:
        wanted_json = json.loads(expected.body)
    except ValueError:
        assert wildcard_match(expected.body.strip(), text.strip()), f"body {expected.body!r} expected\n{where}"
        return
    try:
        got_json = json.loads(text)
    except ValueError:
        raise AssertionError(f"a JSON body expected\n{where}") from None
    assert json_match(wanted_json, got_json), f"body {expected.body} expected\n{where}"


# --- running a step --------------------------------------------------------------

@dataclass
class CurlRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: Optional[bytes]
    include: bool  # -i or -I: the output starts with the status line and headers


_FLAGS = {"-i", "--include", "-I", "--head", "-s", "--silent", "-S", "--show-error", "-g", "--globoff"}
_WITH_VALUE = {
    "-X", "--request", "-H", "--header", "-d", "--data", "--data-raw", "--data-binary",
    "--json", "-F", "--form", "-b", "--cookie", "-A", "--user-agent", "--url",
}


def parse_curl(argv: list[str], cwd: Path) -> CurlRequest:
    """The request curl would send for `argv` (the options the README uses)."""
    options: list[tuple[str, Optional[str]]] = []
    urls: list[str] = []
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name in _WITH_VALUE:
                options.append((name, value if eq else args.pop(0)))
            elif name in _FLAGS:
                options.append((name, None))
            else:
                raise AssertionError(f"curl option {arg} is not understood by tests/readme_curl.py")
        elif arg.startswith("-") and len(arg) > 1:
            letters = arg[1:]
            for position, letter in enumerate(letters):
                flag = "-" + letter
                if flag in _WITH_VALUE:
                    rest = letters[position + 1:]
                    options.append((flag, rest if rest else args.pop(0)))
                    break
                if flag not in _FLAGS:
                    raise AssertionError(f"curl option {flag} is not understood by tests/readme_curl.py")
                options.append((flag, None))
        else:
            urls.append(arg)
    if len(urls) != 1:
        raise AssertionError(f"one URL expected in {argv}")

    method: Optional[str] = None
    headers: list[tuple[str, str]] = [("User-Agent", "curl/8.0 (README test)"), ("Accept", "*/*")]
    body: Optional[bytes] = None
    data_parts: list[bytes] = []
    form_parts: list[str] = []
    include = False
    head = False
    content_type: Optional[str] = None
    for name, value in options:
        if name in ("-i", "--include"):
            include = True
        elif name in ("-I", "--head"):
            include = head = True
        elif name in ("-X", "--request"):
            method = value
        elif name in ("-H", "--header"):
            key, _, val = value.partition(":")
            headers = [(k, v) for k, v in headers if k.lower() != key.strip().lower()]
            headers.append((key.strip(), val.strip()))
        elif name in ("-A", "--user-agent"):
            headers = [(k, v) for k, v in headers if k.lower() != "user-agent"] + [("User-Agent", value)]
        elif name in ("-b", "--cookie"):
            if "=" not in value:
                raise AssertionError("curl -b with a cookie file is not supported")
            headers.append(("Cookie", value))
        elif name in ("-d", "--data", "--data-raw", "--data-binary", "--json"):
            raw = value.encode("utf-8")
            if name != "--data-raw" and value.startswith("@"):
                raw = (cwd / value[1:]).read_bytes()
                if name in ("-d", "--data"):
                    raw = raw.replace(b"\r", b"").replace(b"\n", b"")
            data_parts.append(raw)
            content_type = "application/json" if name == "--json" else content_type or "application/x-www-form-urlencoded"
            if name == "--json":
                headers = [(k, v) for k, v in headers if k.lower() != "accept"] + [("Accept", "application/json")]
        elif name in ("-F", "--form"):
            form_parts.append(value)
    if data_parts and form_parts:
        raise AssertionError("curl cannot mix -d and -F")
    if data_parts:
        body = (b"&" if content_type.startswith("application/x-www") else b"").join(data_parts)
    if form_parts:
        boundary = "------------------------" + uuid.uuid4().hex[:22]
        body = _multipart(form_parts, boundary, cwd)
        content_type = f"multipart/form-data; boundary={boundary}"
    if content_type and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", content_type))
    if method is None:
        method = "HEAD" if head else ("POST" if body is not None else "GET")
    return CurlRequest(method, urls[0], headers, body, include)


def _multipart(specs: list[str], boundary: str, cwd: Path) -> bytes:
    out = b""
    for spec in specs:
        name, _, rest = spec.partition("=")
        pieces = rest.split(";")
        value, attributes = pieces[0], dict(p.split("=", 1) for p in pieces[1:] if "=" in p)
        out += f"--{boundary}\r\n".encode()
        if value.startswith("@"):
            path = cwd / value[1:]
            filename = attributes.get("filename", path.name)
            kind = attributes.get("type") or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            out += (
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {kind}\r\n\r\n"
            ).encode()
            out += path.read_bytes() + b"\r\n"
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    return out + f"--{boundary}--\r\n".encode()


def rebase(url: str, base_url: str) -> str:
    """The README's http://127.0.0.1:8000 URL, pointed at the test server."""
    assert url.startswith(README_HOST), f"README URLs start with {README_HOST}: {url}"
    return base_url + url[len(README_HOST):]


def run_with_http_client(step: Step, base_url: str, cwd: Path) -> tuple[Result, bool]:
    request = parse_curl(step.argv, cwd)
    target = urlsplit(rebase(request.url, base_url))
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    try:
        path = target.path + (f"?{target.query}" if target.query else "")
        connection.putrequest(request.method, path or "/", skip_accept_encoding=True)
        for name, value in request.headers:
            connection.putheader(name, value)
        if request.body is not None:
            connection.putheader("Content-Length", str(len(request.body)))
        connection.endheaders(request.body)
        response = connection.getresponse()
        body = response.read()
        return Result(response.status, response.reason, response.getheaders(), body), request.include
    finally:
        connection.close()


def run_with_curl(step: Step, base_url: str, cwd: Path, curl: str) -> tuple[Result, bool]:
    request = parse_curl(step.argv, cwd)  # the same checks on the options
    args = [rebase(a, base_url) if a.startswith(README_HOST) else a for a in step.argv[1:]]
    command = [curl, "--noproxy", "*", "--max-time", "30", "-sS"]
    if not request.include:
        command.append("-i")  # to read the status; the README shows only the body
    completed = subprocess.run(command + args, cwd=cwd, capture_output=True, timeout=60)
    assert completed.returncode == 0, f"curl failed: {completed.stderr.decode(errors='replace')}"
    return _parse_curl_output(completed.stdout), request.include


def _parse_curl_output(output: bytes) -> Result:
    while True:
        head, _, body = output.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        if status_line[1] != "100":
            break
        output = body  # skip an interim "100 Continue"
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
    reason = status_line[2] if len(status_line) > 2 else ""
    return Result(int(status_line[1]), reason, headers, body)


def run_echo(step: Step, cwd: Path) -> None:
    """`echo 'text' > name`: write text and a newline, as the shell would."""
    words = step.argv
    redirect = words.index(">")
    (cwd / words[redirect + 1]).write_text(" ".join(words[1:redirect]) + "\n", encoding="utf-8")
