"""assistants-server: the OpenAI Assistants API v2, self-hosted, on any Chat Completions model."""

__version__ = "0.1.0"
