-- 0008: the bot's catch-up on reconnect asks, per channel, for the newest message it
-- stored itself (`live` or `backfill`); without this it read every message of the
-- channel. Partial: imports (package, dce, ...) do not maintain it.
CREATE INDEX messages_captured ON messages (channel_id, id) WHERE source IN ('live', 'backfill');
