"""Tools an assistant can use: their wire definitions and (later) their executors."""
