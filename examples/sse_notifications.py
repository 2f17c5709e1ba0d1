"""Live notifications with server-sent events: ``POST /notify`` publishes a message, every
client of ``GET /events`` receives it at once, whichever worker serves it, and a client that
reconnects gets what it missed."""

import asyncio
import json
import uuid
from collections import deque

from tremolo.extensions.broadcast import Broadcast

from tremolo import Tremolo

app = Tremolo()
broadcast = app.install(Broadcast())  # Broadcast(store=Redis(...)) to span several hosts


# --8<-- [start:hub]
class History:
    """The last messages, for clients that reconnect: every worker keeps the same, from the
    broadcast."""

    def __init__(self):
        self.events: deque[tuple[str, str]] = deque(maxlen=100)  # (id, message)

    def missed(self, last_id):
        ids = [event_id for event_id, _ in self.events]
        if last_id not in ids:
            return []
        return list(self.events)[ids.index(last_id) + 1:]


async def record(history):
    async with broadcast.subscribe('notifications') as notifications:
        async for notification in notifications:
            history.events.append(tuple(json.loads(notification)))


@app.on_worker_start
async def keep_history(globals):
    globals.history = History()
    globals.recording = asyncio.ensure_future(record(globals.history))


@app.on_worker_stop
async def stop_history(globals):
    globals.recording.cancel()
# --8<-- [end:hub]


# --8<-- [start:events]
@app.get('/events')
async def events(sse, globals):
    async with broadcast.subscribe('notifications') as notifications:
        await sse.send(retry=3000)  # reconnect after 3 s if the connection drops
        replayed = set()
        for event_id, message in globals.history.missed(sse.last_event_id):
            await sse.send(message, event='notification', id=event_id)
            replayed.add(event_id)
        async for notification in notifications:  # until the client leaves (cancelled)
            event_id, message = json.loads(notification)
            if event_id not in replayed:
                await sse.send(message, event='notification', id=event_id)
# --8<-- [end:events]


# --8<-- [start:notify]
@app.post('/notify')
async def notify(request):
    message = await request.json()  # a string is sent as it is, any other value as JSON
    event_id = uuid.uuid4().hex
    await broadcast.publish('notifications', json.dumps([event_id, message]))
    return {'id': event_id}
# --8<-- [end:notify]


# --8<-- [start:generator]
@app.get('/countdown')
async def countdown(sse):
    for n in range(3, 0, -1):
        yield sse.event(n, event='tick')  # the generator style: yield formatted events
        await asyncio.sleep(0.1)
    yield sse.event('liftoff', event='done')
# --8<-- [end:generator]


@app.get('/')
async def page():
    return PAGE


PAGE = """<!doctype html>
<title>Notifications</title>
<ul id="list"></ul>
<script>
  const source = new EventSource('/events');
  source.addEventListener('notification', (event) => {
    const item = document.createElement('li');
    item.textContent = event.data;
    document.getElementById('list').append(item);
  });
</script>
"""

if __name__ == '__main__':
    app.run('127.0.0.1', 8000, worker_num=2)
