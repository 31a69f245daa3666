"""GET /hello: the smallest route handler there is.

A folder under app/ is a URL segment, and a `route.py` in it answers for that
URL. Export a function named after the HTTP method and return a Response.
"""
from minirouter import Response


def GET():
    # A handler may take (request, context), (request) or nothing at all.
    return Response("Hello World!")
