"""Uploads streamed to disk: each file part is written piece by piece as it arrives, so a
file of any size takes constant memory."""

import os
import tempfile
import uuid
from pathlib import Path

from tremolo import Tremolo

app = Tremolo()

UPLOAD_DIR = Path(os.environ.get('UPLOAD_DIR') or tempfile.gettempdir()) / 'tremolo-uploads'


@app.on_worker_start
async def create_upload_dir():
    UPLOAD_DIR.mkdir(parents=True, exist_ok=True)


# --8<-- [start:upload]
@app.post('/upload', max_body_size=1024 ** 3, max_part_size=512 * 1024 ** 2)
async def upload(request):
    fields, files = {}, []
    async for part in request.parts():
        if part.filename is None:
            fields[part.name] = await part.text()  # a plain field: small, read whole
            continue
        # Never use the client's file name as a path: store under a name of our own.
        path = UPLOAD_DIR / uuid.uuid4().hex
        size = await part.save(path)  # written piece by piece, removed if the upload fails
        files.append({'field': part.name, 'filename': part.filename, 'size': size,
                      'stored_as': path.name})
    return {'fields': fields, 'files': files}
# --8<-- [end:upload]


# --8<-- [start:pieces]
@app.post('/checksum', max_body_size=1024 ** 3)
async def checksum(request):
    import hashlib

    sums = {}
    async for part in request.parts():
        digest = hashlib.sha256()
        async for piece in part:  # each piece as it arrives
            digest.update(piece)
        sums[part.name] = {'size': part.size, 'sha256': digest.hexdigest()}
    return sums
# --8<-- [end:pieces]

if __name__ == '__main__':
    app.run('127.0.0.1', 8000)
