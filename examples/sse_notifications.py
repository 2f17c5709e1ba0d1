"""Live notifications with server-sent events: ``POST /notify`` publishes a message, every
client of ``GET /events`` receives it at once, and a client that reconnects gets what it missed."""

import asyncio
import itertools
from collections import deque

from tremolo import Tremolo

app = Tremolo()


# --8<-- [start:hub]
class Hub:
    """The subscribers of one worker and its last messages (for clients that reconnect)."""

    def __init__(self):
        self.subscribers = set()
        self.history: deque[tuple[str, str]] = deque(maxlen=100)  # (id, message)
        self.ids = itertools.count(1)

    def publish(self, message):
        event = (str(next(self.ids)), message)
        self.history.append(event)
        for queue in self.subscribers:
            if not queue.full():  # a subscriber that is far behind misses messages
                queue.put_nowait(event)
        return event[0]

    def missed(self, last_id):
        if last_id is None or not last_id.isdigit():
            return []
        return [event for event in self.history if int(event[0]) > int(last_id)]


@app.on_worker_start
async def create_hub(globals):
    globals.hub = Hub()
# --8<-- [end:hub]


# --8<-- [start:events]
@app.get('/events')
async def events(sse, globals):
    hub = globals.hub
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=100)
    hub.subscribers.add(queue)
    try:
        await sse.send(retry=3000)  # reconnect after 3 s if the connection drops
        for event_id, message in hub.missed(sse.last_event_id):
            await sse.send(message, event='notification', id=event_id)
        while True:  # ends when the client leaves: the handler is cancelled
            event_id, message = await queue.get()
            await sse.send(message, event='notification', id=event_id)
    finally:
        hub.subscribers.discard(queue)
# --8<-- [end:events]


# --8<-- [start:notify]
@app.post('/notify')
async def notify(request, globals):
    message = await request.json()  # a string is sent as it is, any other value as JSON
    event_id = globals.hub.publish(message)
    return {'id': event_id, 'subscribers': len(globals.hub.subscribers)}
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
    app.run('127.0.0.1', 8000)
