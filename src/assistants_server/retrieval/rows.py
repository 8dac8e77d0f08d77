"""The ORM row of the search index: one chunk of a file in a vector store.

The full-text side is not mapped: on SQLite it is the FTS5 table `search_chunks_fts`, kept in
step by triggers; on PostgreSQL the generated `text_search` tsvector column. Both are created by
migration 0005 and read with SQL in `retrieval.fulltext`.
"""

from __future__ import annotations

from sqlalchemy import Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assistants_server.db.models import Base, PrimaryKey


class ChunkRow(Base):
    """A chunk's text and token count, and its embedding when an embedder is configured:
    float32 little-endian, normalised to unit length."""

    __tablename__ = "search_chunks"
    __table_args__ = (
        Index("ix_search_chunks_store_file", "vector_store_id", "file_id"),
        Index("ix_search_chunks_store_pk", "vector_store_id", "pk"),
        # pks are never reused: a store's highest pk versions the in-process vector cache.
        {"sqlite_autoincrement": True},
    )

    pk: Mapped[int] = mapped_column(PrimaryKey, primary_key=True, autoincrement=True)
    vector_store_id: Mapped[str] = mapped_column(String(64))
    file_id: Mapped[str] = mapped_column(String(64))
    chunk_index: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    tokens: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
