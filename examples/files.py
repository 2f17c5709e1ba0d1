"""Serving files from handlers with ``response.sendfile()``."""

from pathlib import Path

from tremolo import NotFound, Tremolo

app = Tremolo()
DATA = Path(__file__).parent / '_site'


# --8<-- [start:sendfile]
@app.route('/report.csv')
async def report(response):
    # Content-Type, Content-Length, ETag, Last-Modified; ranges and conditional requests.
    return await response.sendfile(DATA / 'report.csv')
# --8<-- [end:sendfile]


# --8<-- [start:download]
REPORTS = {'latest': 'report.csv'}  # never build a path from what the client sends


@app.route('/download/{name}')
async def download(name, response):
    if name not in REPORTS:
        raise NotFound()
    response.headers['Cache-Control'] = 'no-store'
    await response.sendfile(DATA / REPORTS[name], filename=f'report-{name}.csv')
    # returning None is fine: the response is finished
# --8<-- [end:download]
