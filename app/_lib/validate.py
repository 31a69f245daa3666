"""Small checks shared by several routes.

A folder whose name starts with `_` is private: minirouter never routes
anything inside it, so it is the place for helpers. Routes import it like any
module of the app package:

    from app._lib.validate import comment_text, integer_id
"""
from __future__ import annotations

import unicodedata

from minirouter import HTTPError

_MAX_ID = 2**63 - 1  # the largest integer SQLite stores
# Characters (code points). The page's inputs say maxlength="2000" too, but a
# browser counts UTF-16 units there (an emoji is two), so the page is the stricter.
MAX_COMMENT_LENGTH = 2000
MAX_FILENAME_LENGTH = 120
_FILENAME_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
)
# Names Windows keeps for devices, whatever the extension: "CON.txt" opens the console.
_DEVICE_NAMES = frozenset(["CON", "PRN", "AUX", "NUL"] + [f"{port}{n}" for port in ("COM", "LPT") for n in range(10)])


def integer_id(text: str) -> int:
    """The URL segment as a positive integer id, or a 400 error.

    Only ASCII digits: int() alone would also accept " 7", "+7", "1_000" and
    digits from other scripts.
    """
    # Leading zeros aside, an id in range has at most 19 digits: int() never
    # sees a long string of digits, whose conversion takes quadratic time.
    digits = text.lstrip("0") if text.isascii() and text.isdigit() else ""
    if not digits:
        raise HTTPError(400, f"the id must be a positive integer, not {text[:40]!r}")
    if len(digits) > 19 or int(digits) > _MAX_ID:
        raise HTTPError(400, f"the id must be at most {_MAX_ID}, not {text[:40]!r}")
    return int(digits)


def safe_filename(name: str | None) -> str:
    """A client's file name made safe to use as a file name on this server.

    The client chooses the name, so it is never used as a path: keep only the
    last component (after any / or \\), replace every character other than
    letters, digits, ".", "_" and "-" with "_", cut it to 120 characters
    (keeping the extension), and refuse names that are empty or start with a
    dot (".", "..", ".htaccess"). 400 when refused.
    """
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base:
        raise HTTPError(400, "the file needs a name")
    if base.startswith("."):
        raise HTTPError(400, "a file name may not start with a dot")
    cleaned = "".join(c if c in _FILENAME_CHARACTERS else "_" for c in base)
    if _is_device_name(cleaned):
        raise HTTPError(400, f"{cleaned.split('.')[0]} is the name of a device on Windows: pick another name")
    if len(cleaned) <= MAX_FILENAME_LENGTH:
        return cleaned
    # Cut the stem, not the extension (".pdf", ".tar.gz"): the type is guessed from it.
    tail = cleaned[-16:]
    dot = tail.find(".")
    if dot == -1:
        return cleaned[:MAX_FILENAME_LENGTH]
    extension = tail[dot:]
    return cleaned[: MAX_FILENAME_LENGTH - len(extension)] + extension


def is_safe_filename(name: str) -> bool:
    """True when `name` is already a name that safe_filename() could produce."""
    return (
        0 < len(name) <= MAX_FILENAME_LENGTH
        and not name.startswith(".")
        and all(c in _FILENAME_CHARACTERS for c in name)
        and not _is_device_name(name)
    )


def _is_device_name(name: str) -> bool:
    return name.split(".")[0].upper() in _DEVICE_NAMES


def comment_text(request) -> str:
    """The "text" string of a JSON body like {"text": "Hi"}, or a 400 error.

    request.json() itself answers 415 when the body is not sent as JSON and
    400 when it is not valid JSON.
    """
    body = request.json()
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise HTTPError(400, 'send a JSON object with a "text" string')
    if len(text) > MAX_COMMENT_LENGTH:
        raise HTTPError(400, f"the text is longer than {MAX_COMMENT_LENGTH} characters")
    if _is_blank(text):
        raise HTTPError(400, 'send a JSON object with a "text" string')
    return text


# Characters that show nothing but are letters, marks or symbols to Python:
# Hangul fillers, variation selectors, the grapheme joiner, the braille blank.
_INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u2800\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)


def _is_blank(text: str) -> bool:
    # Spaces, and characters that show nothing (a zero-width space, say), which strip() keeps.
    return all(c.isspace() or c in _INVISIBLE or unicodedata.category(c) in ("Cf", "Cc") for c in text)
