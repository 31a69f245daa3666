"""The comments, kept in SQLite.

This file sits beside route.py but is not a route: only `route.py` and
`page.html` are ever served. Routes share it with

    from app.comments.data import store

and every route gets the same `store` object.

The database file is named by the COMMENTS_DB environment variable (default:
comments.db in the repository root, beside run.py). It is opened at first use,
not at import, so tests can point COMMENTS_DB at a temporary file before they
build the app. A new database is seeded with three comments.
"""
from __future__ import annotations

import os
import queue
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from minirouter import HTTPError

T = TypeVar("T")

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "comments.db"

SEED = [
    "This is the first comment",
    "This is the second comment",
    "This is the third comment",
]


class CommentStore:
    """List, read, add, change and delete comments: dicts like {"id": 1, "text": "..."}.

    waitress runs handlers on several threads. Each operation borrows a
    connection from a small pool, opening one when none is free, and gives it
    back: no two threads use one at once, as SQLite wants, and the pool holds
    no more than were ever busy together. WAL mode lets reads go on while a
    request writes, and busy_timeout plus a retry on "database is locked"
    make writers wait their turn, in this process or another (gunicorn
    workers, a second `python run.py`), each for its own request only.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = path
        # Idle connections, each with the generation it was opened in:
        # close() starts a new one, and older connections are closed, not reused.
        self._idle: queue.SimpleQueue[tuple[sqlite3.Connection, int]] = queue.SimpleQueue()
        self._generation = 0
        self._lock = threading.Lock()  # close() and a give-back never interleave

    @property
    def path(self) -> Path:
        """The database file: the one given, else $COMMENTS_DB, else comments.db."""
        return Path(self._path or os.environ.get("COMMENTS_DB") or DEFAULT_PATH)

    # -- the five operations the routes use ------------------------------

    def list(self, query: str | None = None) -> list[dict]:
        """Every comment in id order; with `query`, those whose text contains it."""
        sql = "SELECT id, text FROM comments"
        args: tuple = ()
        if query:
            # instr() is a plain substring test: no LIKE wildcards to escape.
            sql += " WHERE instr(text, ?) > 0"
            args = (query,)
        rows = self._run(lambda db: db.execute(sql + " ORDER BY id", args).fetchall())
        return [_as_dict(row) for row in rows]

    def get(self, comment_id: int) -> dict | None:
        """The comment with this id, or None."""
        row = self._run(
            lambda db: db.execute(
                "SELECT id, text FROM comments WHERE id = ?", (comment_id,)
            ).fetchone()
        )
        return _as_dict(row) if row else None

    def add(self, text: str) -> dict:
        """Store a new comment and return it with its id."""

        def insert(db: sqlite3.Connection) -> int:
            with _write(db):
                cursor = db.execute("INSERT INTO comments (text) VALUES (?)", (text,))
                assert cursor.lastrowid is not None  # an INSERT always has one
                return cursor.lastrowid

        return {"id": self._run(insert), "text": text}

    def update(self, comment_id: int, text: str) -> dict | None:
        """Replace a comment's text; None when there is no such comment."""

        def change(db: sqlite3.Connection) -> int:
            with _write(db):
                return db.execute(
                    "UPDATE comments SET text = ? WHERE id = ?", (text, comment_id)
                ).rowcount

        return {"id": comment_id, "text": text} if self._run(change) else None

    def delete(self, comment_id: int) -> dict | None:
        """Remove a comment and return it; None when there is no such comment."""

        def remove(db: sqlite3.Connection) -> tuple | None:
            with _write(db):
                row = db.execute(
                    "SELECT id, text FROM comments WHERE id = ?", (comment_id,)
                ).fetchone()
                if row:
                    db.execute("DELETE FROM comments WHERE id = ?", (comment_id,))
                return row

        row = self._run(remove)
        return _as_dict(row) if row else None

    def close(self) -> None:
        """Close the idle connections (a busy one is closed when given back);
        the next call opens one again."""
        with self._lock:
            self._generation += 1
            while True:
                try:
                    db, _ = self._idle.get_nowait()
                except queue.Empty:
                    return
                db.close()

    # -- plumbing ---------------------------------------------------------

    def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run one operation on a borrowed connection, retrying while another writer holds the file."""
        db, generation = self._borrow()
        try:
            return _retry_when_locked(lambda: operation(db))
        finally:
            with self._lock:
                kept = generation == self._generation
                if kept:
                    self._idle.put((db, generation))
            if not kept:
                db.close()  # opened before close(): perhaps on another file

    def _borrow(self) -> tuple[sqlite3.Connection, int]:
        while True:
            try:
                db, generation = self._idle.get_nowait()
            except queue.Empty:
                generation = self._generation  # before the open: a close() meanwhile makes it stale
                return _retry_when_locked(self._open), generation
            if generation == self._generation:
                return db, generation
            db.close()  # opened before close(): perhaps on another file

    def _open(self) -> sqlite3.Connection:
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: a connection serves one thread at a time, not always the same one.
        # isolation_level=None: we say where transactions begin (see _write).
        db = sqlite3.connect(path, timeout=5.0, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout = 5000")
            db.execute("PRAGMA journal_mode = WAL")
            _create_and_seed(db)
        except BaseException:
            db.close()
            raise
        return db


@contextmanager
def _write(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """`with _write(db):` one write transaction, committed at the end.

    BEGIN IMMEDIATE takes the write lock up front, so a reader never has to
    upgrade to a writer halfway through, which is where SQLite gives up with
    "database is locked" instead of waiting.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    finally:
        if db.in_transaction:  # an error above: undo the half-done work
            db.execute("ROLLBACK")


def _create_and_seed(db: sqlite3.Connection) -> None:
    # user_version is 0 in a new file: create the table and seed it once, even
    # when two processes open a new file at the same moment (checked again
    # inside the write). A file already seeded needs no write lock at all.
    if db.execute("PRAGMA user_version").fetchone()[0] != 0:
        return
    with _write(db):
        if db.execute("PRAGMA user_version").fetchone()[0] == 0:
            db.execute(
                "CREATE TABLE IF NOT EXISTS comments ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT,"  # deleted ids are never reused
                " text TEXT NOT NULL)"
            )
            db.executemany("INSERT INTO comments (text) VALUES (?)", [(t,) for t in SEED])
            db.execute("PRAGMA user_version = 1")


def _retry_when_locked(operation: Callable[[], T], attempts: int = 5) -> T:
    # busy_timeout already waits for the lock; this covers the cases where
    # SQLite reports "database is locked" at once instead of waiting.
    for attempt in range(attempts):
        try:
            return operation()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
            if attempt == attempts - 1:
                # Another process has held the file for the whole wait: the
                # client may try again later, which a 500 would not tell it.
                raise HTTPError(
                    503, "the database is busy; try again shortly", {"Retry-After": "5"}
                ) from error
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def _as_dict(row: tuple) -> dict:
    return {"id": row[0], "text": row[1]}


store = CommentStore()
