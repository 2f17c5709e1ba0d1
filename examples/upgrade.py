"""Switching protocols: a route that hands its connection over to a tiny echo protocol."""

from tremolo import Tremolo

app = Tremolo()


@app.route('/echo')
async def echo(request, response):
    if request.headers.get('upgrade', '').lower() != 'echo':
        response.set_status(426)  # RFC 9110 §15.5.22: the client must upgrade
        response.set_header('Upgrade', 'echo')
        return 'this resource speaks the echo protocol\n'
    stream = await response.upgrade('echo')  # sends 101 Switching Protocols
    while True:
        data = await stream.read()  # b'' once the client closes its side
        if not data:
            break
        stream.write(data.upper())
        await stream.drain()
    # Returning closes the connection.
