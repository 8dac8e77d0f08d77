"""Retrieval for the file_search tool: uploaded files turned into text, and text into chunks."""
