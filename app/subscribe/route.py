"""POST /subscribe: read a form, as an HTML <form method="post"> sends it.

request.form() reads URL-encoded and multipart bodies alike; get() gives a
field's value, or None when the form has no such field.
"""
from minirouter import HTTPError


def POST(request):
    form = request.form()
    name, email = form.get("name"), form.get("email")
    # A multipart form may send any field as a file (an UploadFile): check the type.
    if not isinstance(email, str) or "@" not in email:
        raise HTTPError(400, "send an email field with an address")
    if name is not None and not isinstance(name, str):
        raise HTTPError(400, "send the name as text, not as a file")
    return {"name": name, "email": email}
