"""`POST /v1/chat/completions` and `POST /v1/embeddings`, passed through to the backend a model
name routes to, for code that shares one client between the Assistants API and these."""
