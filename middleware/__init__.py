"""Middleware shipped with Tremolo, imported as ``tremolo.middleware``.

Each middleware lives in a module of its own and uses only the public ``tremolo`` API.
"""
