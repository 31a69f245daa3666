"""The time the server first answered: computed once, then kept until restart.

`dynamic = "force-static"` caches the first response for good and, as in
Next.js, the handler sees no query string, headers or cookies.
"""
from datetime import datetime, timezone

dynamic = "force-static"


def GET(request):
    return {
        "built_at": datetime.now(timezone.utc).isoformat(),
        "query": dict(request.search_params.items()),
        "user_agent": request.headers.get("user-agent"),
    }
