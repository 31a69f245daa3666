"""app/middleware.py: runs before the routes it matches, as Next.js middleware does.

It runs before the route lookup, so it can answer for a URL that has no route
(/old-comments below). It returns None or Response.next(...) to go on to the
route, Response.rewrite(path) to serve another route under the same URL, or
any other Response to answer at once.
"""
from urllib.parse import urlsplit

from minirouter import Response

# Pages served from these origins may call the comments API from a browser.
ALLOWED_ORIGINS = {"http://localhost:3000", "https://comments.example"}

# Next.js matcher syntax: :path* is zero or more segments. Other URLs never
# reach this function.
config = {"matcher": ["/old-comments/:path*", "/comments/:path*"]}


def middleware(request):
    if request.path == "/old-comments" or request.path.startswith("/old-comments/"):
        # The API moved: old links keep working and clients learn the new URL.
        # Built from the URL as the client sent it (request.url), still
        # percent-encoded: request.path is decoded, and an encoded "?" or
        # newline in it would change the URL or break the header.
        # request.base_path is where the app is mounted ("" at the root).
        url = urlsplit(request.url)
        path = url.path[len(request.base_path):]
        rest = path.split("/", 2)[2:]  # after the first segment, however it was encoded
        new_path = request.base_path + ("/comments/" + rest[0] if rest else "/comments")
        return Response.redirect(f"{new_path}?{url.query}" if url.query else new_path, 308)

    cors = cors_headers(request.headers.get("Origin"))
    if request.method == "OPTIONS" and cors and request.headers.get("Access-Control-Request-Method"):
        # A preflight from an allowed origin: answered here, the route never runs.
        return Response(status=204, headers={
            **cors,
            "Vary": "Origin",
            "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "600",
        })
    # Go on to the route; these headers are added to whatever it answers.
    # Vary: Origin because the CORS headers depend on who asks.
    return Response.next(headers={**cors, "Vary": "Origin", "X-API-Version": "1"})


def cors_headers(origin):
    """The CORS headers for a request from `origin`: none for other origins,
    so their browsers refuse to hand the answer to the page."""
    if origin not in ALLOWED_ORIGINS:
        return {}
    return {"Access-Control-Allow-Origin": origin}
