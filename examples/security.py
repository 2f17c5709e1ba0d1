"""Security headers, HTTPS everywhere and the hosts this application answers for."""

from tremolo.middleware.security import HTTPSRedirect, SecurityHeaders, TrustedHosts

from tremolo import Tremolo

app = Tremolo()
# --8<-- [start:install]
app.install(TrustedHosts(['example.com', '*.example.com']))  # 400 for any other Host
app.install(HTTPSRedirect())                                  # http:// -> https:// (308)
app.install(SecurityHeaders(
    content_security_policy="default-src 'self'; frame-ancestors 'none'",
    frame_options='DENY',
    hsts_max_age=63072000,                                    # two years, HTTPS only
))
# --8<-- [end:install]


@app.route('/')
async def index(**server):
    return '<h1>Secure</h1>'
