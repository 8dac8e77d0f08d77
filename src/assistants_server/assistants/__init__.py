"""Assistants: create, list, retrieve, modify, delete."""
