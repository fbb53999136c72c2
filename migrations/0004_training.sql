-- 0004: what training needs.
--
-- The held-out split: owner messages whose examples are never trained on. Chosen once
-- (the latest share of each channel) and then kept, so evaluations of every adapter
-- version compare on the same data; a channel seen for the first time adds its own.
CREATE TABLE heldout_messages (
    message_id  bigint PRIMARY KEY,
    channel_id  bigint NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX heldout_messages_channel ON heldout_messages (channel_id);
