"""/profile/api: reading request headers and cookies, setting cookies.

Two ways to read each: through the `request` the handler receives, or through
headers() and cookies(), which work anywhere while a request is handled (in
a helper function, say) without passing the request along.
"""
from html import escape

from minirouter import Response, cookies, headers


def GET(request):
    authorization = headers().get("Authorization")  # read-only, case-insensitive
    user_agent = request.headers.get("User-Agent")
    theme = request.cookies.get("theme")  # the cookie the browser sent, or None

    # cookies().set() is added to whatever response this handler returns, and
    # cookies().get() sees it at once, later in the same request.
    cookies().set("resultsPerPage", "20")
    results_per_page = cookies().get("resultsPerPage")

    lines = [
        ("Authorization", authorization),
        ("User-Agent", user_agent),
        ("theme cookie", theme),
        ("resultsPerPage cookie", results_per_page),
    ]
    items = "".join(f"<li>{name}: {escape(value or '(none)')}</li>\n" for name, value in lines)
    return Response(
        f"<h1>Profile API data</h1>\n<ul>\n{items}</ul>\n",
        headers={
            # Our own Content-Type replaces the text/plain a str body gets.
            "Content-Type": "text/html; charset=utf-8",
            # A header written by hand works too. Path=/ makes the browser send
            # theme=dark to every page; without it the cookie would stay under /profile.
            "Set-Cookie": "theme=dark; Path=/",
        },
    )
