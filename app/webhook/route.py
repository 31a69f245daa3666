"""POST /webhook: receive a webhook, as the Next.js docs show one.

Another service (a payment provider, a Git host) POSTs its event here. Read
the body as text: a real handler would check the sender's signature against
these exact bytes before it trusts the payload, then act on it.
"""
from minirouter import HTTPError, Response


def POST(request):
    text = request.text()  # a body that is not valid text is a 400 already
    if not text.strip():
        raise HTTPError(400, "Webhook error: the payload is empty")
    # Process the webhook payload here.
    return Response("Success!")
