"""POST /echo: the request body piped straight back, chunk by chunk.

request.stream() yields the body as it is read, so a handler can pass on a
large upload (to a file, another service, or here the response) without
holding it in memory. Returning it as the body sends each chunk on as it
is read. (waitress reads a whole request body before it calls the app, so
under run.py the body comes from waitress's buffer; a server that streams
request bodies hands it over as it arrives.)

A body whose Content-Length is over App(max_body_size=...) is a 413 before
anything is read. A chunked one (no Content-Length) is cut off at the limit:
a 413 if that comes before the first chunk is sent back, else the connection
is closed, since the 200 has already gone out.

    curl --data-binary @notes.txt http://127.0.0.1:8000/echo
"""
from minirouter import Response


def POST(request):
    return Response(
        request.stream(),
        headers={
            # Whatever the client sent, it comes back as bytes to save, never
            # as a page: a browser must not render someone's HTML here.
            "Content-Type": "application/octet-stream",
            "X-Content-Type-Options": "nosniff",
        },
    )
