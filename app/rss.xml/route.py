"""GET /rss.xml: a route handler for something that is not a page or JSON.

A folder name may hold a dot, so `app/rss.xml/route.py` answers /rss.xml.
Set the Content-Type yourself: the body is whatever text you return.
"""
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from minirouter import Response

ITEMS = [("Hello World!", "/hello"), ("The comments API", "/comments")]


def GET(request):
    url = urlsplit(request.url)  # links use the scheme and host the client asked for
    site = f"{url.scheme}://{url.netloc}{request.base_path}"
    items = "".join(
        f"\n    <item><title>{escape(title)}</title><link>{escape(site + path)}</link></item>"
        for title, path in ITEMS
    )
    return Response(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">\n  <channel>\n'
        f"    <title>minirouter example</title>{items}\n  </channel>\n</rss>\n",
        headers={"Content-Type": "text/xml; charset=utf-8"},
    )
