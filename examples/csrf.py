"""CSRF protection for a form, and a webhook exempted from it."""

import html
import os

from tremolo.middleware.csrf import CSRF

from tremolo import Tremolo

SECRET_KEY = os.environ.get('SECRET_KEY', 'change me: secrets.token_urlsafe(32)')

# --8<-- [start:install]
app = Tremolo()
app.install(CSRF(SECRET_KEY))


@app.route('/profile')
async def profile_form(csrf_token):
    return (f'<form method="post" action="/profile">'
            f'<input type="hidden" name="csrf_token" value="{html.escape(csrf_token)}">'
            f'<input name="name"><button>Save</button></form>')


@app.post('/profile')
async def save_profile(request):
    form = await request.form()  # the middleware read it already: it is kept
    return f'saved {html.escape(form["name"])}'


@app.post('/webhooks/payment', csrf_exempt=True)  # called by a server, authenticated otherwise
async def payment_webhook(request):
    return 'received'
# --8<-- [end:install]
