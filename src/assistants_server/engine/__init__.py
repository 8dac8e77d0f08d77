"""The machinery that performs runs: context building, the runner, the executor."""
