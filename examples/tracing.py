"""OpenTelemetry: a span per request, printed to the console by the SDK's exporter.

Needs ``pip install opentelemetry-sdk`` (a real deployment exports to a collector instead).
"""

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from tremolo.extensions.opentelemetry import OpenTelemetry

from tremolo import Tremolo

# --8<-- [start:tracing]
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))

app = Tremolo()
app.install(OpenTelemetry(provider, excluded_paths=('/ready', '/metrics')))
tracer = provider.get_tracer('shop')


@app.route('/orders/{id:int}')
async def order(id, **server):
    with tracer.start_as_current_span('load order'):  # a child of the request's span
        return {'order': id}
# --8<-- [end:tracing]


if __name__ == '__main__':
    app.run('127.0.0.1', 8000)
