"""Sessions: a shopping cart in a signed cookie, and logins kept in a server-side store."""

import os
import tempfile

from tremolo.extensions.sessions import FileSessionStore, Sessions

from tremolo import Forbidden, Tremolo

SECRET_KEY = os.environ.get('SECRET_KEY', 'change me: secrets.token_urlsafe(32)')
SESSIONS = os.environ.get('SESSIONS_DIR', os.path.join(tempfile.gettempdir(), 'tremolo-sessions'))

# --8<-- [start:cookie]
shop = Tremolo()
shop.install(Sessions(SECRET_KEY))  # the whole session in a signed cookie (4 KB at most)


@shop.post('/cart/{item}')
async def add_to_cart(item, session):
    session['cart'] = session.get('cart', []) + [item]  # assigned again: saved
    return {'cart': session['cart']}
# --8<-- [end:cookie]


# --8<-- [start:store]
app = Tremolo()
app.install(Sessions(
    [SECRET_KEY, 'the previous key'],        # rotation: sign with the first, accept both
    store=FileSessionStore(SESSIONS),        # shared by the workers of this machine
    max_age=8 * 3600,
))


@app.post('/login')
async def login(request, session):
    form = await request.form()
    if form.get('password') != 'secret':
        raise Forbidden('wrong password')
    session.regenerate()                     # a new id at login: no session fixation
    session['user'] = form['user']
    return 'logged in'


@app.route('/me')
async def me(session):
    return {'user': session.get('user')}


@app.post('/logout')
async def logout(session):
    session.clear()                          # deleted from the store, cookie removed
    return 'bye'
# --8<-- [end:store]
