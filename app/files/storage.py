"""Where uploaded files are kept: a folder named by UPLOADS_DIR.

The default is uploads/ in the repository root, beside run.py. Like
comments/data.py this file is not a route; the two /files routes share it.
"""
from __future__ import annotations

import mimetypes
import os
import uuid
from pathlib import Path

from minirouter import HTTPError

from app._lib.validate import is_safe_filename

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "uploads"


def uploads_dir() -> Path:
    # Read at each call, so tests can point UPLOADS_DIR at a temporary folder.
    return Path(os.environ.get("UPLOADS_DIR") or DEFAULT_DIR)


def content_type(name: str) -> str:
    # The type comes from the name we chose, never from what the client
    # claimed: a file uploaded as "image/png" cannot come back as text/html.
    # A compressed file (.tar.gz, .svgz) is guessed as what it holds, with an
    # encoding: its own bytes are none of those types, so send them as bytes.
    guessed, encoding = mimetypes.guess_type(name)
    return guessed if guessed and not encoding else "application/octet-stream"


def describe(path: Path) -> dict:
    return {"name": path.name, "size": path.stat().st_size, "type": content_type(path.name)}


def save(upload, name: str) -> dict:
    """Store an uploaded file as `name` (already made safe) and describe it.

    The file is written under a temporary dot-name first and linked to its
    name when complete, so a reader never sees half a file. Two client names
    may become one safe name ("é.txt" and "ü.txt" are both "_.txt"), so an
    upload never replaces a file: 409, and the client picks another name.
    """
    folder = uploads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".partial-{uuid.uuid4().hex}"
    target = folder / name
    try:
        upload.save(partial)
        _give_name(partial, target)
    except FileExistsError:
        raise HTTPError(409, f'a file named {name} exists already: send another name in the "name" field') from None
    finally:
        partial.unlink(missing_ok=True)
    return describe(target)


def _give_name(partial: Path, target: Path) -> None:
    """Name the complete file `target`, or FileExistsError if that is taken.

    The check and the naming are one step, so of two uploads of one name at
    once only one is kept, never half of each: a hard link fails where the
    name exists. Where the filesystem has no hard links (FAT, some network
    mounts), the name is claimed with an empty file first, then replaced.
    """
    try:
        os.link(partial, target)
        return
    except FileExistsError:
        raise
    except OSError:
        pass  # no hard links here
    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    os.replace(partial, target)


def list_files() -> list[dict]:
    folder = uploads_dir()
    if not folder.is_dir():
        return []
    return [
        describe(path)
        for path in sorted(folder.iterdir())
        if is_safe_filename(path.name) and path.is_file()
    ]


def find(name: str) -> Path | None:
    """The stored file called `name`, or None.

    `name` comes from the URL, so it must look exactly like a name we would
    have saved: no "..", no "/", no dotfiles. Nothing else can be reached.
    """
    if not is_safe_filename(name):
        return None
    path = uploads_dir() / name
    return path if path.is_file() else None
