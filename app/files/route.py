"""/files: upload a file (POST, multipart/form-data) and list the uploads (GET).

    curl -F file=@notes.txt http://127.0.0.1:8000/files
    curl -F file=@notes.txt -F name=todo.txt http://127.0.0.1:8000/files
"""
from minirouter import HTTPError, Response

from app._lib.validate import safe_filename
from app.files import storage


def GET():
    return storage.list_files()  # a list is sent as JSON


def POST(request):
    form = request.form()  # parsed as it streams in; large files go to a temporary file
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise HTTPError(400, 'send the file in a multipart field named "file"')
    # A plain field beside the file is a str: "name" saves it under another
    # name. Both names come from the client, so neither is used as a path.
    wanted = form.get("name")
    if wanted is not None and not isinstance(wanted, str):
        raise HTTPError(400, '"name" must be a text field, not a file')
    name = safe_filename(wanted or upload.filename)
    saved = storage.save(upload, name)
    return Response.json(saved, status=201, headers={"Location": f"{request.base_path}/files/{name}"})
