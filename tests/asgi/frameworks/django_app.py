"""The behaviour suite's application, written with Django (its ASGI handler).

Django serves no WebSocket and has no lifespan protocol: the suite checks that Tremolo refuses
the handshake cleanly (the application raises) and serves it without lifespan.
"""

from __future__ import annotations

import asyncio
import hashlib

import django
from django.conf import settings

settings.configure(
    DEBUG=False, SECRET_KEY='tremolo-asgi-suite', ROOT_URLCONF=__name__, ALLOWED_HOSTS=['*'],
    MIDDLEWARE=[], INSTALLED_APPS=[], USE_TZ=True, LOGGING_CONFIG=None,
)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import (  # noqa: E402
    FileResponse,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path  # noqa: E402

from .common import FILE_PATH, HELLO, PIECES, Record, upload_summary  # noqa: E402

record = Record()
_tasks: set = set()


async def hello(request):
    return HttpResponse(HELLO, content_type='text/plain; charset=utf-8')


async def json_answer(request):
    return JsonResponse({'message': HELLO})


async def item(request, item_id):
    return JsonResponse({'item_id': item_id, 'q': request.GET.get('q')})


async def stream(request):
    async def pieces():
        for piece in PIECES:
            yield piece
            await asyncio.sleep(0)
    return StreamingHttpResponse(pieces(), content_type='text/plain')


async def file(request):
    return FileResponse(open(FILE_PATH, 'rb'))


async def upload(request):
    digest, size, pieces = hashlib.sha256(), 0, 0
    while True:
        chunk = request.read(65536)
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
        pieces += 1
    return JsonResponse(upload_summary(size, digest, pieces))


async def form(request):
    document = request.FILES['document']
    return JsonResponse({'name': request.POST['name'], 'filename': document.name,
                         'size': len(document.read())})


async def state(request):
    return HttpResponse('no lifespan', content_type='text/plain')


async def background(request):
    if request.method == 'GET':
        return HttpResponse(record.get('background'), content_type='text/plain')

    async def task():
        await asyncio.sleep(0.05)
        record.set('background')
    scheduled = asyncio.get_running_loop().create_task(task())
    _tasks.add(scheduled)
    scheduled.add_done_callback(_tasks.discard)
    return HttpResponse('scheduled', content_type='text/plain')


async def error(request):
    raise RuntimeError('handler failed')


async def infinite(request):
    async def forever():
        try:
            while True:
                yield b'x' * 1024
                await asyncio.sleep(0.005)
        finally:
            record.set('infinite', 'stopped')
    return StreamingHttpResponse(forever())


async def recorded(request, name):
    return HttpResponse(record.get(name), content_type='text/plain')


urlpatterns = [
    path('', hello), path('json', json_answer), path('items/<int:item_id>', item),
    path('stream', stream), path('file', file), path('upload', upload), path('form', form),
    path('state', state), path('background', background), path('error', error),
    path('infinite', infinite), path('record/<str:name>', recorded),
]

app = get_asgi_application()
