"""Extensions shipped with Tremolo, imported as ``tremolo.extensions``.

Each extension lives in a module of its own, is installed with ``app.install(...)`` and uses
only the public ``tremolo`` API.
"""
