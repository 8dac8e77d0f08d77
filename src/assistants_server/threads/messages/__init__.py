"""Messages of a thread: create, list (with a run_id filter), retrieve, modify, delete."""
