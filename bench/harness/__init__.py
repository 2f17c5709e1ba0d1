"""The benchmark harness: servers, processes, validation, load, memory, startup and reports."""
