"""Run events: what a run does, as the ordered event log that streams are served from."""
