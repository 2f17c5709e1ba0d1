"""Request ids: in the response, the access log and every log record of the request."""

import logging

from tremolo.middleware.request_id import RequestID

from tremolo import Tremolo

# --8<-- [start:install]
app = Tremolo()
app.install(RequestID())  # X-Request-ID: the client's if valid, else 32 random hex digits

# Every record gets request_id ('-' outside requests): show it in the log lines.
handler = logging.StreamHandler()
handler.setFormatter(logging.Formatter('%(levelname)s [%(request_id)s] %(name)s: %(message)s'))
logging.getLogger('shop').addHandler(handler)
logger = logging.getLogger('shop')


@app.route('/orders/{number}')
async def order(number, request_id):
    logger.warning('order %s looked up', number)  # WARNING [4f1c...] shop: order 7 looked up
    return {'order': number, 'request': request_id}
# --8<-- [end:install]
