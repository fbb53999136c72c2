-- 0002: which provenance carries the richer record of the same Discord message.
-- The data package holds only the owner's text; DiscordChatExporter and the bot's own
-- capture (backfill, live) also carry replies, mentions and edits. When a message
-- arrives again through a richer source, ingest replaces the poorer record.
CREATE FUNCTION source_richness(source text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE source
        WHEN 'package' THEN 1
        WHEN 'dce' THEN 3
        WHEN 'backfill' THEN 3
        WHEN 'live' THEN 3
        ELSE 2
    END
$$;
