"""A static site with the ``StaticFiles`` extension."""

from pathlib import Path

from tremolo.extensions.static import StaticFiles

from tremolo import Tremolo

SITE = Path(__file__).parent / '_site'

# --8<-- [start:install]
app = Tremolo()
app.install(StaticFiles(SITE, prefix='/static'))
# The stylesheets again, under a second prefix, cached for a year:
app.install(StaticFiles(SITE / 'css', prefix='/assets', name='assets',
                        cache_control='public, max-age=31536000, immutable'))


@app.route('/')
async def home(response):
    return response.redirect('/static/')
# --8<-- [end:install]
