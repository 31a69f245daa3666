"""/comments: list the comments (GET) and add one (POST)."""
from minirouter import Response

from app._lib.validate import comment_text
from app.comments.data import store


def GET(request):
    # /comments?query=first keeps the comments whose text contains "first".
    query = request.search_params.get("query")
    return Response.json(store.list(query))


def POST(request):
    comment = store.add(comment_text(request))
    # 201 Created, and where the new comment lives.
    return Response.json(comment, status=201, headers={"Location": f"{request.base_path}/comments/{comment['id']}"})
