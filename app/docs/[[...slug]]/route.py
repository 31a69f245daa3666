"""/docs, /docs/routing, /docs/routing/params: an optional catch-all, [[...slug]].

The slug is the list of segments after /docs: [] for /docs itself and
["routing", "params"] for /docs/routing/params. A folder named [...slug]
(single brackets) works the same but needs at least one segment.
"""
from minirouter import not_found

PAGES = {
    "": "minirouter docs. Try /docs/routing or /docs/routing/params.",
    "routing": "A folder under app/ is a URL segment; route.py answers for it.",
    "routing/params": "A folder named [id] matches any one segment: context.params['id'].",
}


def GET(request, context):
    slug = context.params["slug"]
    text = PAGES.get("/".join(slug))
    if text is None:
        not_found()
    return {"slug": slug, "text": text}
