"""Small applications started in real processes by the running tests."""
