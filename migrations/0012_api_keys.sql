-- 0012: keys for `persona serve` (persona/api_keys.py). Each key is made for an audience:
-- who asks (NULL: the owner) and where (the place kind, channel, server), which decide
-- what memory a reply may read, exactly as in Discord. Only a SHA-256 of the key is kept.
CREATE TABLE api_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL DEFAULT '',
    token_sha256  bytea NOT NULL UNIQUE,
    asker_id      bigint,                 -- NULL: the owner's key
    place_kind    text NOT NULL CHECK (place_kind IN ('terminal', 'dm', 'group_dm', 'guild')),
    channel_id    bigint,
    guild_id      bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    CHECK (place_kind <> 'guild' OR guild_id IS NOT NULL),
    CHECK (place_kind <> 'group_dm' OR channel_id IS NOT NULL),
    CHECK (place_kind <> 'terminal' OR asker_id IS NULL)
);
CREATE INDEX api_keys_asker ON api_keys (asker_id);
