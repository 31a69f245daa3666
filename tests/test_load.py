"""Load: the example comments API under waitress with 8 threads, hit by 8
keep-alive clients x 500 mixed requests on 127.0.0.1.

No request may get a 5xx or fail at the connection level, and afterwards the
store must hold exactly what the 2xx writes imply: every 201 POST present once
(with the text of its owner's last 200 PATCH), every 200 DELETE gone, the
seeds untouched, no id reused, no comment duplicated.

Each client patches only its own comments, so their final text is known; it
also deletes other clients' comments now and then, so deletes race with
patches and reads (a 404 there is fine, as long as someone's DELETE got 200).
Bounded: 500 requests per client, a 30 s timeout per request, a 120 s join.
"""
from __future__ import annotations

import http.client
import json
import random
import sqlite3
import threading
import time
from typing import Any, Iterator

import pytest

from conftest import LiveServer

CLIENTS = 8
REQUESTS = 500
SEEDS = {1: "This is the first comment", 2: "This is the second comment", 3: "This is the third comment"}


@pytest.fixture
def server(example_app) -> Iterator[LiveServer]:
    live = LiveServer(example_app, threads=8)
    try:
        yield live
    finally:
        live.settle()
        live.stop()




class Ledger:
    """What the 2xx answers say happened, shared by the client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.all_ids: list[int] = []
        self.created: dict[int, int] = {}  # id -> client that created it
        self.deleted_by: dict[int, int] = {}  # id -> client whose DELETE got 200
        self.problems: list[str] = []
        self.statuses: dict[int, int] = {}
        self.missing_own: list[int] = []  # own ids that answered 404/307: someone must have deleted them

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


class Client:
    def __init__(self, number: int, port: int, ledger: Ledger, requests: int = REQUESTS) -> None:
        self.number = number
        self.requests = requests
        self.port = port
        self.ledger = ledger
        self.random = random.Random(1000 + number)
        self.mine: dict[int, str] = {}  # own live comments: id -> current text
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.conn.request(method, path, body=payload, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        with self.ledger.lock:
            self.ledger.statuses[response.status] = self.ledger.statuses.get(response.status, 0) + 1
        if response.status >= 500:
            self.ledger.problem(f"{method} {path} -> {response.status} {raw[:200]!r}")
        data = json.loads(raw) if raw and response.getheader("Content-Type", "").startswith("application/json") else None
        return response.status, data

    def run(self) -> None:
        try:
            for i in range(self.requests):
                self.step(i)
        except Exception as exc:  # noqa: BLE001 - a connection error is a failure too
            self.ledger.problem(f"client {self.number}: {type(exc).__name__}: {exc}")
        finally:
            self.conn.close()

    def own_id(self) -> int | None:
        return self.random.choice(sorted(self.mine)) if self.mine else None

    def lost_own(self, comment_id: int) -> None:
        self.mine.pop(comment_id, None)
        with self.ledger.lock:
            self.ledger.missing_own.append(comment_id)

    def step(self, i: int) -> None:
        roll = self.random.random()
        ledger = self.ledger
        if roll < 0.35 or not self.mine:
            text = f"client {self.number} comment {i}"
            status, data = self.send("POST", "/comments", {"text": text})
            if status == 201:
                if data != {"id": data["id"], "text": text}:
                    ledger.problem(f"POST answered {data}")
                with ledger.lock:
                    if data["id"] in ledger.created or data["id"] in SEEDS:
                        ledger.problems.append(f"id {data['id']} handed out twice")
                    ledger.created[data["id"]] = self.number
                    ledger.all_ids.append(data["id"])
                self.mine[data["id"]] = text
            else:
                ledger.problem(f"POST -> {status}")
        elif roll < 0.55:
            comment_id = self.own_id()
            text = f"client {self.number} comment {comment_id} patched at {i}"
            status, data = self.send("PATCH", f"/comments/{comment_id}", {"text": text})
            if status == 200:
                self.mine[comment_id] = text
            elif status == 404:
                self.lost_own(comment_id)
            else:
                ledger.problem(f"PATCH -> {status}")
        elif roll < 0.65:
            self.delete(self.own_id(), own=True)
        elif roll < 0.70 and self.others():
            self.delete(self.random.choice(self.others()), own=False)
        elif roll < 0.85:
            comment_id = self.own_id()
            status, data = self.send("GET", f"/comments/{comment_id}")
            if status == 200:
                if data != {"id": comment_id, "text": self.mine[comment_id]}:
                    ledger.problem(f"GET {comment_id} -> {data}, expected {self.mine[comment_id]!r}")
            elif status == 307:
                self.lost_own(comment_id)
            else:
                ledger.problem(f"GET one -> {status}")
        elif roll < 0.95:
            status, data = self.send("GET", f"/comments?query=client%20{self.number}%20")
            if status != 200 or not isinstance(data, list):
                ledger.problem(f"GET query -> {status}")
            else:
                listed = {c["id"]: c["text"] for c in data}
                if any(not t.startswith(f"client {self.number} ") for t in listed.values()):
                    ledger.problem("the query returned another client's comments")
        else:
            status, data = self.send("GET", "/comments")
            if status != 200 or not isinstance(data, list):
                ledger.problem(f"GET list -> {status}")

    def others(self) -> list[int]:
        """Recent ids created by other clients."""
        with self.ledger.lock:
            return [c for c in self.ledger.all_ids[-200:] if self.ledger.created.get(c) != self.number]

    def delete(self, comment_id: int, own: bool) -> None:
        ledger = self.ledger
        status, data = self.send("DELETE", f"/comments/{comment_id}")
        if status == 200:
            if not data or data.get("id") != comment_id:
                ledger.problem(f"DELETE {comment_id} answered {data}")
            with ledger.lock:
                if comment_id in ledger.deleted_by:
                    ledger.problems.append(f"id {comment_id} deleted twice (200 both times)")
                ledger.deleted_by[comment_id] = self.number
            self.mine.pop(comment_id, None)
        elif status == 404:
            if own:
                self.lost_own(comment_id)
        else:
            ledger.problem(f"DELETE -> {status}")


def run_clients(port: int, count: int, requests: int, timeout: float = 120) -> tuple[Ledger, list[Client]]:
    """`count` client threads x `requests` requests each; joined within `timeout` s."""
    ledger = Ledger()
    clients = [Client(n, port, ledger, requests) for n in range(count)]
    threads = [threading.Thread(target=c.run, name=f"load-client-{c.number}") for c in clients]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, timeout - (time.monotonic() - started)))
    assert not any(t.is_alive() for t in threads), f"clients still running after {timeout} s"
    return ledger, clients


def verify_final_state(ledger: Ledger, clients: list[Client], port: int, db_path) -> None:
    """No 5xx, no problem seen, and the store holds exactly what the 2xx writes imply."""
    assert ledger.problems == [], ledger.problems[:20]
    assert sum(ledger.statuses.values()) == sum(c.requests for c in clients)
    assert not any(status >= 500 for status in ledger.statuses), ledger.statuses

    expected = dict(SEEDS)
    for client in clients:
        # A client's own view, less what other clients deleted (with a 200).
        expected.update({i: t for i, t in client.mine.items() if i not in ledger.deleted_by})
    for comment_id, owner in ledger.created.items():
        if comment_id not in ledger.deleted_by:
            assert comment_id in clients[owner].mine, f"id {comment_id} vanished from its owner's view"
    for comment_id in ledger.missing_own:
        assert comment_id in ledger.deleted_by, f"id {comment_id} was lost without a 200 DELETE"

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/comments")
        response = conn.getresponse()
        listed = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 200
    ids = [c["id"] for c in listed]
    assert len(ids) == len(set(ids)), "a comment is listed twice"
    assert {c["id"]: c["text"] for c in listed} == expected

    # And the file itself agrees with the API.
    db = sqlite3.connect(db_path)
    try:
        rows = dict(db.execute("SELECT id, text FROM comments").fetchall())
    finally:
        db.close()
    assert rows == expected
    assert ledger.deleted_by and len(ledger.created) > sum(c.requests for c in clients) // 4  # the mix ran


def test_mixed_load_loses_nothing_and_duplicates_nothing(server, example_env):
    port = int(server.server.effective_port)
    ledger, clients = run_clients(port, CLIENTS, REQUESTS)
    verify_final_state(ledger, clients, port, example_env / "comments.db")


# --- no request sees another's data under concurrency ----------------------

ISOLATION_FILES = {
    "who/route.py": """
        import time

        from minirouter import cookies, headers


        def GET(request):
            first = cookies().get("user")
            time.sleep(0.001)  # let other threads run in between
            return {"cookie": first, "again": cookies().get("user"), "header": headers().get("x-user"),
                    "request": request.cookies.get("user"), "query": request.search_params.get("user")}
        """,
    "who-async/route.py": """
        import asyncio

        from minirouter import cookies, headers


        async def GET(request):
            first = cookies().get("user")
            await asyncio.sleep(0.001)
            return {"cookie": first, "again": cookies().get("user"), "header": headers().get("x-user"),
                    "request": request.cookies.get("user"), "query": request.search_params.get("user")}
        """,
    "set/route.py": """
        from minirouter import Response, cookies


        def GET(request):
            user = request.search_params.get("user")
            cookies().set("seen", user)
            return Response.json({"user": user})
        """,
}


def test_concurrent_requests_never_see_each_others_cookies_or_headers(tmp_path):
    # cookies() and headers() find the request in a context variable; under
    # 8 server threads (and the per-thread event loop of async handlers) each
    # request must see only its own cookies, headers and Set-Cookie.
    from helpers import make_app

    app = make_app(tmp_path, ISOLATION_FILES)
    live = LiveServer(app, threads=8)
    problems: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", int(live.server.effective_port), timeout=30)
        try:
            for i in range(60):
                user = f"user-{n}-{i}"
                path = ("/who", "/who-async", "/set")[i % 3]
                conn.request("GET", f"{path}?user={user}", headers={"Cookie": f"user={user}", "X-User": user})
                response = conn.getresponse()
                data = json.loads(response.read())
                if path == "/set":
                    seen = response.getheader("Set-Cookie", "")
                    ok = data == {"user": user} and seen.startswith(f"seen={user};")
                else:
                    ok = set(data.values()) == {user}
                if response.status != 200 or not ok:
                    with lock:
                        problems.append(f"{path} as {user}: {response.status} {data}")
        except Exception as exc:  # noqa: BLE001
            with lock:
                problems.append(f"client {n}: {exc!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        live.settle()
        live.stop()
    assert not any(t.is_alive() for t in threads)
    assert problems == [], problems[:10]
