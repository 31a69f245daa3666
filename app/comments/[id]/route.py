"""/comments/[id]: one comment. The folder name [id] is a URL parameter.

For /comments/2, context.params == {"id": "2"}. Parameters are always strings,
so the route turns it into an integer itself (400 when it is not one).
"""
from minirouter import not_found, redirect

from app._lib.validate import comment_text, integer_id
from app.comments.data import store


def GET(request, context):
    comment = store.get(integer_id(context.params["id"]))
    if comment is None:
        # A path of the app's own: request.base_path ("" at the root) keeps it right when mounted.
        redirect(request.base_path + "/comments")  # raises: a 307 to the list
    return comment  # a dict is sent as JSON


async def PATCH(request, context):
    # async def works too; request.json() is a plain call all the same. The
    # store's calls block (SQLite waits out a lock); that holds up only this
    # request, since each server thread runs its own event loop.
    # Two clients editing one comment: the last save wins.
    comment = store.update(integer_id(context.params["id"]), comment_text(request))
    if comment is None:
        not_found()  # raises: 404 with {"error": ...}
    return comment


def DELETE(request, context):
    comment = store.delete(integer_id(context.params["id"]))
    if comment is None:
        not_found()
    return comment  # the comment that was deleted
