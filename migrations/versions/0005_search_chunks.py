"""search chunks: vector store files' text, with full-text search and embeddings

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The FTS5 index reads its text from search_chunks (external content); these triggers keep it
# in step with every insert, delete and change of text.
SQLITE_FTS = [
    """CREATE VIRTUAL TABLE search_chunks_fts USING fts5(
        text, content='search_chunks', content_rowid='pk',
        tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER search_chunks_fts_insert AFTER INSERT ON search_chunks BEGIN
        INSERT INTO search_chunks_fts (rowid, text) VALUES (new.pk, new.text);
    END""",
    """CREATE TRIGGER search_chunks_fts_delete AFTER DELETE ON search_chunks BEGIN
        INSERT INTO search_chunks_fts (search_chunks_fts, rowid, text)
        VALUES ('delete', old.pk, old.text);
    END""",
    """CREATE TRIGGER search_chunks_fts_update AFTER UPDATE OF text ON search_chunks BEGIN
        INSERT INTO search_chunks_fts (search_chunks_fts, rowid, text)
        VALUES ('delete', old.pk, old.text);
        INSERT INTO search_chunks_fts (rowid, text) VALUES (new.pk, new.text);
    END""",
]

# Unqualified names: the connection's search_path names the server's schema.
POSTGRESQL_FTS = [
    """ALTER TABLE search_chunks ADD COLUMN text_search tsvector
        GENERATED ALWAYS AS (to_tsvector('english', text)) STORED""",
    "CREATE INDEX ix_search_chunks_text_search ON search_chunks USING gin (text_search)",
    # Ranking reads the tsvector of every matching row. Kept inline and uncompressed (the
    # embedding, read only to fill the in-process vector cache, moves out of line first), it
    # costs no decompression; compressed, ranking was several times slower.
    """ALTER TABLE search_chunks
        ALTER COLUMN embedding SET STORAGE EXTERNAL,
        ALTER COLUMN text_search SET STORAGE MAIN,
        SET (toast_tuple_target = 8160)""",
]


def upgrade() -> None:
    op.create_table(
        "search_chunks",
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("vector_store_id", sa.String(64), nullable=False),
        sa.Column("file_id", sa.String(64), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary()),
        # Never reuse a pk: the vector cache takes a store's highest pk as its version.
        sqlite_autoincrement=True,
    )
    op.create_index("ix_search_chunks_store_file", "search_chunks",
                    ["vector_store_id", "file_id"])
    op.create_index("ix_search_chunks_store_pk", "search_chunks", ["vector_store_id", "pk"])
    statements = SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_FTS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE search_chunks_fts")  # its triggers go with search_chunks
    op.drop_table("search_chunks")
