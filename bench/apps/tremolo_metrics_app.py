"""The benchmark application for Tremolo with the Metrics extension installed: the same routes,
hooks and handlers as ``tremolo_app.py``, each exchange counted by route, method and status.

Measured next to the bare application in one run (``--only tremolo,tremolo-metrics``), it
shows what the metrics cost per request.
"""

from tremolo.extensions.metrics import Metrics
from tremolo_app import app

app.install(Metrics())
