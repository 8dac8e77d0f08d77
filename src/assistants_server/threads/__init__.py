"""Threads: create (with initial messages), retrieve, modify, delete."""
