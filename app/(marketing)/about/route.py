"""/about: a folder in parentheses, like (marketing), groups routes
without adding a segment to their URL. It is for tidying app/, nothing more.
"""
from minirouter import Response


def GET():
    return Response("minirouter turns a folder of route.py files into a web app.")
