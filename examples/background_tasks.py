"""Background tasks: the answer goes out first, the slow work follows."""

import asyncio
import logging

from tremolo.extensions.background import BackgroundTasks

from tremolo import Tremolo

logger = logging.getLogger('signup')
sent: list[str] = []  # what the "mail server" got (the tests read it)

# --8<-- [start:install]
app = Tremolo()
app.install(BackgroundTasks())


async def send_welcome_email(address):
    await asyncio.sleep(0.05)  # a slow mail server
    sent.append(address)


def write_audit_line(event):  # a plain function runs in the thread pool
    logger.info('audit: %s', event)


@app.post('/signup')
async def signup(request, background):
    form = await request.form()
    background.add(send_welcome_email, form['email'])
    background.add(write_audit_line, f'signup {form["email"]}')
    return 'Welcome! Check your mail.'  # sent before the tasks run
# --8<-- [end:install]
