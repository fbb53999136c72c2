-- 0005: where `persona backfill` got to in each channel, so a second run (or one after a
-- crash) fetches only what is newer.
CREATE TABLE backfill_state (
    channel_id       bigint PRIMARY KEY,
    last_message_id  bigint NOT NULL,
    messages         bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
