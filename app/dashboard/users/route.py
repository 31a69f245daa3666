"""GET /dashboard/users: a folder inside a folder is a path inside a path."""
from minirouter import Response


def GET():
    return Response("Users data")
