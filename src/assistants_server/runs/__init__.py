"""Runs and run steps: the API surface, the state machine and the rules around them."""
