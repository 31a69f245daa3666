"""GET /dashboard: folders nest, so app/dashboard/route.py answers /dashboard."""
from minirouter import Response


def GET():
    return Response("Dashboard data")
