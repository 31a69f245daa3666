"""The comments page (app/page.html at /) driven in a real headless Chromium.

Each test gets the example app served by waitress on 127.0.0.1 with a fresh
comments database (the `live_server` fixture of conftest.py, seeded with
three comments) and a fresh browser context (no cookies, no storage). It
acts as a person would (types, clicks, presses Enter) and then checks the
state through the JSON API, not only through what the page shows.

The browser is Debian's Chromium (`apt-get install chromium chromium-driver`)
driven by Playwright for Python (`pip install playwright`); nothing here
downloads a browser, so never run `playwright install`. Without Chromium or
Playwright the tests skip, saying how to install them; under CI=true that is
a failure instead. A failing test leaves a screenshot in
tests/screenshots/failures/. test_readme_screenshot writes
docs/screenshot.png, the picture in the README.
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import struct
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # the skip (or, under CI, the failure) happens in the fixture
    sync_playwright = None

ROOT = Path(__file__).resolve().parent.parent
FAILURE_DIR = ROOT / "tests" / "screenshots" / "failures"
README_SCREENSHOT = ROOT / "docs" / "screenshot.png"

SEEDED = [
    "This is the first comment",
    "This is the second comment",
    "This is the third comment",
]

# A fresh temporary profile comes with every launch (Playwright makes one and
# removes it afterwards); these flags keep Chromium from calling home or
# updating anything while it runs. --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-proxy-server",
]
TIMEOUT_MS = 10_000
INSTALL_HINT = (
    "install Debian's Chromium with `apt-get install -y chromium chromium-driver` (as root) "
    "and the driver with `pip install playwright`; never `playwright install`"
)

if sync_playwright is not None:
    expect.set_options(timeout=TIMEOUT_MS)

# Talk to the server directly, never through a proxy from the environment.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _unavailable(what: str) -> None:
    message = f"{what}: {INSTALL_HINT}"
    if _in_ci():
        pytest.fail(f"browser tests cannot run under CI=true, {message}", pytrace=False)
    pytest.skip(message)


def _chromium_path() -> str | None:
    """The system Chromium: $CHROMIUM if set, else /usr/bin/chromium, else the PATH."""
    for candidate in (
        os.environ.get("CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        _unavailable("Playwright for Python is not installed")
    executable = _chromium_path()
    if executable is None:
        _unavailable("Chromium is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


# Uncaught JavaScript errors of each open page, checked after every test.
_page_errors: dict[int, list[str]] = {}


@pytest.fixture
def page(browser: Browser, live_server: str) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server, viewport={"width": 900, "height": 760})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    _page_errors[id(tab)] = errors
    try:
        yield tab
    finally:
        _page_errors.pop(id(tab), None)
        context.close()


def browser_test(test: Callable[..., None]) -> Callable[..., None]:
    """Run a test that uses `page`; on failure save a screenshot of the page.

    Also fails the test when the page threw an uncaught JavaScript error.
    """

    @functools.wraps(test)
    def run(*args: Any, page: Page, **kwargs: Any) -> None:
        try:
            test(*args, page=page, **kwargs)
            errors = _page_errors.get(id(page), [])
            assert not errors, f"JavaScript errors on the page: {errors}"
        except (Exception, pytest.fail.Exception):
            FAILURE_DIR.mkdir(parents=True, exist_ok=True)
            target = FAILURE_DIR / f"{test.__name__}.png"
            try:
                page.screenshot(path=str(target), full_page=True)
                print(f"screenshot of the failure: {target}")
            except Exception as error:  # the browser may be what failed
                print(f"no screenshot of the failure: {error}")
            raise

    return run


def api(base_url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Call the JSON API directly: (status, decoded JSON body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _direct.open(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"null")


def comments_in_api(base_url: str) -> list[dict]:
    status, comments = api(base_url, "GET", "/comments")
    assert status == 200
    return comments


def texts(comments: list[dict]) -> list[str]:
    return [comment["text"] for comment in comments]


def open_page(page: Page, path: str = "/") -> None:
    page.goto(path)
    expect(page.locator("#comments")).to_have_attribute("data-loaded", "true")


def item(page: Page, comment_id: int):
    return page.locator(f'#comments li[data-id="{comment_id}"]')


# --- the tests ----------------------------------------------------------------


@browser_test
def test_page_loads_with_the_seeded_comments(page: Page, live_server: str) -> None:
    open_page(page)
    expect(page).to_have_title("Comments · minirouter")
    expect(page.locator("#comments li .comment-text")).to_have_text(SEEDED)
    expect(page.locator("#summary")).to_have_text("3 comments")
    ids = [comment["id"] for comment in comments_in_api(live_server)]
    assert page.locator("#comments li").evaluate_all("items => items.map(li => Number(li.dataset.id))") == ids

    # The stylesheet and the icon come from public/ and are really applied.
    assert page.locator(".card").evaluate("el => getComputedStyle(el).borderTopLeftRadius") == "14px"
    stylesheet = page.request.get("/style.css")
    assert stylesheet.status == 200 and stylesheet.headers["content-type"].startswith("text/css")
    icon = page.request.get("/favicon.svg")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert page.locator(".brand img").evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"


@browser_test
def test_add_a_comment(page: Page, live_server: str) -> None:
    open_page(page)
    page.fill("#new-text", "Hello from Chromium, café ☕")
    page.press("#new-text", "Enter")

    expect(page.locator("#comments li")).to_have_count(4)
    expect(page.locator("#comments li .comment-text").last).to_have_text("Hello from Chromium, café ☕")
    expect(page.locator("#new-text")).to_have_value("")
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#summary")).to_have_text("4 comments")

    comments = comments_in_api(live_server)
    assert texts(comments) == SEEDED + ["Hello from Chromium, café ☕"]
    expect(item(page, comments[-1]["id"])).to_have_class(re.compile(r"\bfresh\b"))

    # A second one with the button, and it survives a reload.
    page.fill("#new-text", "Second one")
    page.click("#add-button")
    expect(page.locator("#comments li")).to_have_count(5)
    page.reload()
    expect(page.locator("#comments li .comment-text")).to_have_text(texts(comments_in_api(live_server)))
    assert texts(comments_in_api(live_server))[-1] == "Second one"


@browser_test
def test_search_filters_through_the_query_parameter(page: Page, live_server: str) -> None:
    open_page(page)
    page.fill("#search", "second")
    page.press("#search", "Enter")

    expect(page.locator("#comments li .comment-text")).to_have_text(["This is the second comment"])
    expect(page.locator("#summary")).to_have_text("1 comment matching “second”")
    expect(page).to_have_url(f"{live_server}/?query=second")
    status, found = api(live_server, "GET", "/comments?query=second")
    assert status == 200 and texts(found) == ["This is the second comment"]

    # Typing searches too, without pressing Enter.
    page.fill("#search", "nothing like this")
    expect(page.locator("#comments li")).to_have_count(0)
    expect(page.locator("#summary")).to_have_text("No comment matches “nothing like this”")

    # The query in the address is the search: a link to it works.
    open_page(page, "/?query=third")
    expect(page.locator("#search")).to_have_value("third")
    expect(page.locator("#comments li .comment-text")).to_have_text(["This is the third comment"])

    page.fill("#search", "")
    page.press("#search", "Enter")
    expect(page.locator("#comments li")).to_have_count(3)
    expect(page).to_have_url(f"{live_server}/")
    assert texts(comments_in_api(live_server)) == SEEDED  # searching changed nothing


@browser_test
def test_edit_a_comment_in_place(page: Page, live_server: str) -> None:
    open_page(page)
    second = item(page, 2)
    second.locator('[data-action="edit"]').click()
    editor = second.locator(".edit-input")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("This is the second comment")

    editor.fill("Edited in the browser")
    editor.press("Enter")
    expect(second.locator(".comment-text")).to_have_text("Edited in the browser")
    expect(second.locator(".edit-form")).to_have_count(0)
    assert api(live_server, "GET", "/comments/2") == (200, {"id": 2, "text": "Edited in the browser"})

    # Escape (or Cancel) leaves the comment as it was, on the page and on the server.
    third = item(page, 3)
    third.locator('[data-action="edit"]').click()
    third.locator(".edit-input").fill("Never saved")
    third.locator(".edit-input").press("Escape")
    expect(third.locator(".comment-text")).to_have_text("This is the third comment")
    third.locator('[data-action="edit"]').click()
    third.locator(".edit-input").fill("Never saved either")
    third.locator('[data-action="cancel"]').click()
    expect(third.locator(".comment-text")).to_have_text("This is the third comment")

    page.reload()
    expect(page.locator("#comments li .comment-text")).to_have_text(
        ["This is the first comment", "Edited in the browser", "This is the third comment"]
    )
    assert texts(comments_in_api(live_server)) == [
        "This is the first comment",
        "Edited in the browser",
        "This is the third comment",
    ]


@browser_test
def test_delete_a_comment(page: Page, live_server: str) -> None:
    open_page(page)
    item(page, 1).locator('[data-action="delete"]').click()

    expect(page.locator("#comments li")).to_have_count(2)
    expect(item(page, 1)).to_have_count(0)
    expect(page.locator("#summary")).to_have_text("2 comments")
    assert [comment["id"] for comment in comments_in_api(live_server)] == [2, 3]

    # Deleting them all leaves an invitation, not an empty box.
    item(page, 2).locator('[data-action="delete"]').click()
    expect(page.locator("#comments li")).to_have_count(1)
    item(page, 3).locator('[data-action="delete"]').click()
    expect(page.locator("#comments li")).to_have_count(0)
    expect(page.locator("#summary")).to_have_text("No comments yet: add the first one.")
    assert comments_in_api(live_server) == []


@browser_test
def test_server_errors_are_shown(page: Page, live_server: str) -> None:
    # What the API answers to an empty text, asked directly.
    status, body = api(live_server, "POST", "/comments", {"text": ""})
    assert status == 400, "the API must refuse an empty comment"
    message = body["error"]
    assert message

    open_page(page)
    error = page.locator("#error")
    expect(error).to_be_hidden()
    page.click("#add-button")  # nothing typed
    expect(error).to_be_visible()
    expect(error).to_have_text(f"Could not add the comment: {message}")
    expect(page.locator("#comments li")).to_have_count(3)

    page.fill("#new-text", "   ")  # only spaces
    page.click("#add-button")
    expect(error).to_have_text(f"Could not add the comment: {message}")
    assert texts(comments_in_api(live_server)) == SEEDED

    # Saving an empty edit shows the server's answer and keeps the editor open.
    first = item(page, 1)
    first.locator('[data-action="edit"]').click()
    first.locator(".edit-input").fill("")
    first.locator(".edit-input").press("Enter")
    expect(error).to_contain_text("Could not save the comment: ")
    status, patch_body = api(live_server, "PATCH", "/comments/1", {"text": ""})
    assert status == 400
    expect(error).to_have_text(f"Could not save the comment: {patch_body['error']}")
    expect(first.locator(".edit-input")).to_be_visible()
    assert api(live_server, "GET", "/comments/1") == (200, {"id": 1, "text": "This is the first comment"})

    # A comment deleted behind the page's back: the 404 is shown.
    assert api(live_server, "DELETE", "/comments/3")[0] == 200
    item(page, 3).locator('[data-action="delete"]').click()
    expect(error).to_contain_text("Could not delete the comment: ")
    assert error.text_content() != "Could not delete the comment: "

    # The next thing that works clears the message.
    first.locator('[data-action="cancel"]').click()
    page.fill("#new-text", "Fine now")
    page.click("#add-button")
    expect(error).to_be_hidden()
    assert texts(comments_in_api(live_server)) == SEEDED[:2] + ["Fine now"]


@browser_test
def test_a_failed_load_is_cleared_by_the_next_one_that_works(page: Page, live_server: str) -> None:
    open_page(page)
    page.route("**/comments?query=*", lambda route: route.abort())
    page.fill("#search", "first")
    expect(page.locator("#error")).to_have_text("Could not load the comments: Could not reach the server.")
    page.unroute("**/comments?query=*")
    page.fill("#search", "second")
    expect(page.locator("#comments li .comment-text")).to_have_text(["This is the second comment"])
    expect(page.locator("#error")).to_be_hidden()


@browser_test
def test_editing_keeps_line_breaks(page: Page, live_server: str) -> None:
    assert api(live_server, "POST", "/comments", {"text": "line one\nline two"})[0] == 201
    open_page(page)
    fourth = item(page, 4)
    fourth.locator('[data-action="edit"]').click()
    editor = fourth.locator(".edit-input")
    expect(editor).to_have_value("line one\nline two")
    editor.press("End")
    editor.press("Shift+Enter")  # a new line; Enter alone saves
    editor.type("line three")
    editor.press("Enter")
    expect(fourth.locator(".edit-form")).to_have_count(0)
    assert api(live_server, "GET", "/comments/4")[1]["text"] == "line one\nline two\nline three"


@browser_test
def test_enter_saves_once_and_never_while_an_input_method_composes(page: Page, live_server: str) -> None:
    open_page(page)
    patches: list[str] = []
    held: list[Any] = []

    def hold(route: Any) -> None:  # keep the save in flight while Enter is pressed again
        patches.append(route.request.method)
        held.append(route)

    page.route("**/comments/2", hold)
    second = item(page, 2)
    second.locator('[data-action="edit"]').click()
    editor = second.locator(".edit-input")
    # Enter that confirms an input method's word (isComposing) must not save.
    editor.evaluate(
        "el => el.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', isComposing: true, bubbles: true}))"
    )
    editor.fill("Saved once")
    editor.press("Enter")
    expect(second.locator('[data-action="save"]')).to_be_disabled()
    editor.press("Enter")
    page.wait_for_timeout(300)
    assert patches == ["PATCH"]
    held[0].continue_()
    expect(second.locator(".comment-text")).to_have_text("Saved once")
    page.unroute("**/comments/2")


@browser_test
def test_keyboard_focus_after_a_delete_goes_to_the_next_comment(page: Page, live_server: str) -> None:
    open_page(page)
    item(page, 2).locator('[data-action="delete"]').focus()
    page.keyboard.press("Enter")
    expect(page.locator("#comments li")).to_have_count(2)
    expect(item(page, 3).locator('[data-action="delete"]')).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#comments li")).to_have_count(1)
    expect(item(page, 1).locator('[data-action="delete"]')).to_be_focused()  # none after it: the one before
    # Each button says which comment it acts on.
    expect(item(page, 1).locator('[data-action="edit"]')).to_have_accessible_description(SEEDED[0])


@browser_test
def test_editing_on_a_phone_sized_screen_stays_inside_the_page(page: Page, live_server: str) -> None:
    page.set_viewport_size({"width": 360, "height": 700})
    open_page(page)
    item(page, 2).locator('[data-action="edit"]').click()
    expect(item(page, 2).locator('[data-action="cancel"]')).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling


@browser_test
def test_a_theme_cookie_that_does_not_decode_does_not_stop_the_page(page: Page, live_server: str) -> None:
    page.context.add_cookies([{"name": "theme", "value": "%E0%A4%A", "url": live_server}])
    open_page(page)  # the list still loads (the fixture also fails on any uncaught page error)
    expect(page.locator("#comments li .comment-text")).to_have_text(SEEDED)
    expect(page.locator("#theme-value")).to_have_text("not set")


@browser_test
def test_text_is_shown_as_text_never_as_html(page: Page, live_server: str) -> None:
    open_page(page)
    sneaky = '<img src="x" onerror="window.injected = true"><b>bold</b>'
    page.fill("#new-text", sneaky)
    page.click("#add-button")
    expect(page.locator("#comments li .comment-text").last).to_have_text(sneaky)
    expect(page.locator("#comments li img, #comments li b")).to_have_count(0)
    assert page.evaluate("window.injected") is None
    assert texts(comments_in_api(live_server))[-1] == sneaky


@browser_test
def test_theme_cookie_is_shown_and_toggled(page: Page, live_server: str) -> None:
    open_page(page)
    value = page.locator("#theme-value")
    expect(value).to_have_text("not set")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")

    page.click("#theme-toggle")
    expect(value).to_have_text("dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert _cookie(page, "theme") == "dark"
    background = page.locator(".card").evaluate("el => getComputedStyle(el).backgroundColor")
    assert background == "rgb(24, 27, 37)"  # the dark card colour of style.css

    page.reload()  # the cookie, not the page, remembers it
    expect(value).to_have_text("dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")

    page.click("#theme-toggle")
    expect(value).to_have_text("light")
    assert _cookie(page, "theme") == "light"
    # The server sees the cookie the page set: /profile/api prints it.
    profile = page.request.get("/profile/api")
    assert profile.status == 200
    assert "theme cookie: light" in profile.text()


@browser_test
def test_theme_cookie_set_by_the_server_is_shown(page: Page, live_server: str) -> None:
    # /profile/api is the tutorial's cookie lesson: it answers Set-Cookie theme=dark.
    open_page(page)
    expect(page.locator("#theme-value")).to_have_text("not set")
    page.click("#theme-server")
    expect(page.locator("#theme-value")).to_have_text("dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.reload()
    expect(page.locator("#theme-value")).to_have_text("dark")


@browser_test
def test_readme_screenshot(page: Page, live_server: str) -> None:
    """Write docs/screenshot.png, the README's picture of the page."""
    page.emulate_media(reduced_motion="reduce")  # no half-faded highlight in the picture
    open_page(page)
    page.fill("#new-text", "Written by the browser test that took this picture")
    page.click("#add-button")
    expect(page.locator("#comments li")).to_have_count(4)
    page.mouse.move(0, 0)
    page.locator("#new-text").blur()
    page.evaluate("document.querySelectorAll('.fresh').forEach(li => li.classList.remove('fresh'))")
    png = page.screenshot(full_page=True)

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width == 900 and height >= 760
    assert len(png) > 10_000, "the picture is suspiciously small: is the page blank?"
    README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    if not README_SCREENSHOT.exists() or README_SCREENSHOT.read_bytes() != png:
        README_SCREENSHOT.write_bytes(png)


def _cookie(page: Page, name: str) -> str | None:
    for cookie in page.context.cookies():
        if cookie["name"] == name:
            return cookie["value"]
    return None


def test_a_missing_browser_skips_locally_but_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium chromium-driver"):
        _unavailable("Chromium is not installed")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run under CI=true"):
        _unavailable("Chromium is not installed")
