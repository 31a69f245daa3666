"""The current time, computed at most once every 10 seconds per URL.

`revalidate = 10` keeps the response in memory for 10 seconds, as in Next.js:
ask twice within that window and the second answer is the first one again.
"""
from datetime import datetime, timezone

revalidate = 10


def GET(request):
    return {"time": datetime.now(timezone.utc).isoformat(), "query": request.search_params.to_dict()}
