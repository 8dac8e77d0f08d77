"""The vector stores API: stores, their files, file batches and search."""
