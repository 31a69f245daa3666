"""GET /countdown: an answer sent line by line, as a generator yields it.

A Response body may be a generator (or any iterable) of str or bytes. Each
piece goes to the client as soon as it is yielded, without Content-Length, so
the answer starts before it is complete and is never held whole in memory.

    curl 'http://127.0.0.1:8000/countdown?from=5'
"""
import time

from minirouter import HTTPError, Response


def GET(request):
    # Check the request before returning: once the first line is on its way,
    # the status is sent and can no longer become a 400.
    start = request.search_params.get("from") or "3"
    # The length first: int() of thousands of digits is slow, and past 4,300 an error.
    digits = start.lstrip("0") or "0"
    if not (start.isascii() and start.isdigit()) or len(digits) > 2 or int(digits) > 10:
        raise HTTPError(400, "from must be a whole number from 0 to 10")
    count = int(digits)

    def lines():
        for n in range(count, 0, -1):
            yield f"{n}\n"
            time.sleep(0.1)  # a slow producer: each line is sent before the next exists
        yield "liftoff\n"

    # A streamed body is application/octet-stream unless told otherwise.
    return Response(lines(), headers={"Content-Type": "text/plain; charset=utf-8"})
