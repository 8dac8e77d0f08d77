"""The Admin API: projects, service accounts, keys and usage."""
