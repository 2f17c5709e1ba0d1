"""The middleware library installed together, in the recommended order."""

import os

from tremolo.extensions.background import BackgroundTasks
from tremolo.extensions.sessions import Sessions
from tremolo.middleware.compression import Compression
from tremolo.middleware.cors import CORS
from tremolo.middleware.csrf import CSRF
from tremolo.middleware.ratelimit import RateLimiter
from tremolo.middleware.request_id import RequestID
from tremolo.middleware.security import HTTPSRedirect, SecurityHeaders, TrustedHosts

from tremolo import Tremolo

SECRET_KEY = os.environ.get('SECRET_KEY', 'change me: secrets.token_urlsafe(32)')

# --8<-- [start:install]
app = Tremolo()
app.install(RequestID())                                  # priority 10
app.install(TrustedHosts(['example.com', '*.example.com', 'localhost']))  # 20
app.install(HTTPSRedirect())                              # 30
app.install(Compression())                                # 40
app.install(SecurityHeaders())                            # 50
app.install(RateLimiter('100/minute'))                    # 60
app.install(CORS(['https://app.example.com'], allow_credentials=True))    # 70
app.install(Sessions(SECRET_KEY))                         # no hook: saved before the head
app.install(CSRF(SECRET_KEY))                             # 90
app.install(BackgroundTasks())                            # a provider only
# --8<-- [end:install]


@app.route('/')
async def index(session, request_id):
    session['visits'] = session.get('visits', 0) + 1
    return f'visit {session["visits"]} (request {request_id})\n'
