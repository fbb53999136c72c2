-- 0020: what is left to detect (messages.language, 0018) and to re-index by language
-- (memories.languages, 0019) is read through partial indexes, as 0003 reads what is left
-- to chunk and embed: every memory build — the bot's refresh every few minutes — asks
-- for those rows, and without these it would read the whole table to find none.
CREATE INDEX IF NOT EXISTS messages_language_pending ON messages (id) WHERE language IS NULL;
CREATE INDEX IF NOT EXISTS memories_languages_pending ON memories (id) WHERE languages IS NULL;
