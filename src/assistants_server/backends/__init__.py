"""Clients of the OpenAI-compatible endpoints the server relies on (chat completions, models)."""
