"""Projects' tests drive runs too: the fake backend of the runs' tests."""

from tests.runs.conftest import backend, script, sent

__all__ = ["backend", "script", "sent"]
