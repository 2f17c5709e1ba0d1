"""CORS: a single-page application on another origin calls this API with its cookies."""

from tremolo.middleware.cors import CORS

from tremolo import Tremolo

app = Tremolo()
# --8<-- [start:install]
app.install(CORS(
    allow_origins=['https://app.example.com', 'http://localhost:5173'],
    allow_credentials=True,              # cookies go along; never with '*'
    allow_headers=['Authorization', 'X-Requested-With'],
    expose_headers=['X-Total-Count'],    # response headers the page may read
    max_age=3600,                        # preflights cached for an hour
))
# --8<-- [end:install]


@app.route('/api/items', methods=['GET', 'POST'])
async def items(response, **server):
    response.headers['X-Total-Count'] = '2'
    return [{'id': 1}, {'id': 2}]
