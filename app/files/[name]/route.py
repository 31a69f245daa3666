"""/files/[name]: one uploaded file, sent back with a Content-Type from its name."""
from minirouter import Response, not_found

from app.files import storage


def GET(request, context):
    path = storage.find(context.params["name"])
    if path is None:
        not_found()
    info = storage.describe(path)
    return Response(
        storage.read_chunks(path),  # any iterable of bytes is a body, sent as it comes
        headers={
            "Content-Type": info["type"],
            "Content-Length": str(info["size"]),
            # Uploads are other people's content: the browser must not guess
            # another type, and an uploaded HTML page must not run scripts here.
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        },
    )
