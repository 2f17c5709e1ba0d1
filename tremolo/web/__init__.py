"""The native framework: applications, routes, middleware hooks, injection, results and errors.

`tremolo.web.app.Tremolo` is where everything is registered; `compile` turns it into a
`tremolo.web.compiled.CompiledApp`, and `tremolo.web.dispatch.Runtime` runs it in each
worker as the server's `tremolo.types.Dispatcher`.
"""
