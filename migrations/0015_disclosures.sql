-- 0015: who has been told, in which channel, that the persona's replies come from an AI
-- (PERSONA_DISCLOSURE=first; persona/disclosure.py). Ids and a time only; forgetting the
-- person, the channel or the time range deletes the row (and the next reply says it again).
CREATE TABLE disclosures (
    person_id   bigint NOT NULL,
    channel_id  bigint NOT NULL,
    told_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, channel_id)
);
CREATE INDEX disclosures_channel ON disclosures (channel_id);
