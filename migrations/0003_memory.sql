-- 0003: what memory building needs.
--
-- messages.memory_id: the memory a message was chunked into; NULL = not chunked yet.
-- Building memory picks up exactly the NULL ones (resumable, never twice), and
-- forgetting a memory sets its messages back to NULL so the rest is re-chunked.
ALTER TABLE messages ADD COLUMN memory_id bigint;
CREATE INDEX messages_unchunked ON messages (channel_id, created_at) WHERE memory_id IS NULL;

-- Who spoke in a memory: recall refuses memories of opted-out people in SQL, even if a
-- deletion was missed.
ALTER TABLE memories ADD COLUMN author_ids bigint[] NOT NULL DEFAULT '{}';
CREATE INDEX memories_unembedded ON memories (id) WHERE embedding IS NULL;

-- The embedding model the stored vectors came from. The vector column's dimension and
-- its HNSW index follow the model, so persona sets them at run time (memory.py) from
-- this row, not in a migration.
CREATE TABLE memory_config (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    embed_model text NOT NULL,
    dimension   integer NOT NULL CHECK (dimension > 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
