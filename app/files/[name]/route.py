"""/files/[name]: one uploaded file, sent back with a Content-Type from its name.

serve_file() answers as public/ files are answered: ETag and Last-Modified,
a 304 when the client's copy is current, one Range (a video seeking, a
download resuming), and the server's own fast way to send a file.
"""
from minirouter import not_found, serve_file

from app.files import storage


def GET(request, context):
    path = storage.find(context.params["name"])
    if path is None:
        not_found()
    response = serve_file(request.environ, str(path), storage.content_type(path.name))
    # Uploads are other people's content: the browser must not guess another
    # type, and an uploaded HTML page must not run scripts here.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    return response
