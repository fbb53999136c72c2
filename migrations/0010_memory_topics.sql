-- 0010: topics — what the owner's history covers (persona/memory/topics.py).
--
-- A topic is a cluster of the memories in which the owner speaks: its centroid (the
-- embedding model's space, as a plain array: the vector column's dimension follows the
-- model at run time) assigns memories built later without clustering again. Names and
-- counts are not stored: they are computed when listed, from the memories the asker may
-- read, so nothing from a scope they cannot read is ever summarised for them.
CREATE TABLE memory_topics (
    id         integer PRIMARY KEY,
    centroid   real[] NOT NULL,
    built_at   timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE memories ADD COLUMN topic_id integer REFERENCES memory_topics (id) ON DELETE SET NULL;
CREATE INDEX memories_topic ON memories (topic_id) WHERE topic_id IS NOT NULL;
