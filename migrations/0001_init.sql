-- 0001: the schema every part of persona stands on.
--
-- Ids: Discord snowflakes where Discord gave one. Sources without ids (WhatsApp, notes,
-- journals) use deterministic negative ids derived from a hash of what identifies the
-- row, so re-importing finds the same id and nothing is stored twice.
--
-- Scopes (see the privacy model): 'dm:<user_id>', 'group:<channel_id>',
-- 'guild:<guild_id>' or 'guild:<guild_id>/<channel_id>', and 'private'. Every message and
-- memory carries one, and retrieval filters on it in SQL.

CREATE EXTENSION IF NOT EXISTS vector;

-- One row per import (`persona ingest ...`); written in its own transaction so a failed
-- import is recorded even though none of its data was committed.
CREATE TABLE import_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       text NOT NULL,
    path         text NOT NULL,
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    counts       jsonb NOT NULL DEFAULT '{}'::jsonb,
    error        text
);

CREATE TABLE people (
    id            bigint PRIMARY KEY,
    name          text NOT NULL,
    display_name  text,
    is_owner      boolean NOT NULL DEFAULT false,
    is_bot        boolean NOT NULL DEFAULT false,
    -- Set by /persona optout: their messages and memories are deleted, new ones refused.
    opted_out_at  timestamptz,
    first_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX people_one_owner ON people ((true)) WHERE is_owner;

CREATE TABLE channels (
    id          bigint PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('dm', 'group_dm', 'guild_text', 'thread', 'voice', 'forum', 'notes', 'other')),
    name        text,
    guild_id    bigint,
    guild_name  text,
    parent_id   bigint,
    scope       text NOT NULL CHECK (scope ~ '^(dm:-?[0-9]+|group:-?[0-9]+|guild:-?[0-9]+(/-?[0-9]+)?|private)$'),
    recipients  bigint[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX channels_scope ON channels (scope);
CREATE INDEX channels_guild ON channels (guild_id) WHERE guild_id IS NOT NULL;

CREATE TABLE messages (
    id             bigint PRIMARY KEY,
    -- Arrival order; the trainer's data watermark ("everything after seq N is new").
    seq            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    channel_id     bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    author_id      bigint NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    -- Provenance decides what may be trained on (Discord developer policy).
    source         text NOT NULL CHECK (source IN ('package', 'dce', 'obsidian', 'whatsapp', 'text', 'backfill', 'live')),
    scope          text NOT NULL,
    kind           text NOT NULL DEFAULT 'default',
    created_at     timestamptz NOT NULL,
    edited_at      timestamptz,
    content        text NOT NULL,  -- scrubbed before it was stored
    reply_to_id    bigint,         -- no foreign key: the target may never be imported
    attachments    jsonb NOT NULL DEFAULT '[]'::jsonb,
    mentions       bigint[] NOT NULL DEFAULT '{}',
    import_run_id  bigint,         -- lineage only; no foreign key (a per-row check on every bulk load)
    inserted_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_channel_time ON messages (channel_id, created_at);
CREATE INDEX messages_author_time ON messages (author_id, created_at);

-- Chunks of conversation or notes, embedded for recall. The embedding's dimension is
-- not fixed here: it follows the embedding model (`embed_model`), and the memory code
-- indexes it per dimension.
CREATE TABLE memories (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope        text NOT NULL,
    channel_id   bigint REFERENCES channels (id) ON DELETE CASCADE,
    content      text NOT NULL,
    embedding    vector,
    embed_model  text,
    tsv          tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz NOT NULL,
    message_ids  bigint[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX memories_scope ON memories (scope);
CREATE INDEX memories_tsv ON memories USING gin (tsv);
CREATE INDEX memories_message_ids ON memories USING gin (message_ids);

CREATE TABLE adapter_versions (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id           bigint REFERENCES adapter_versions (id),
    base_model          text NOT NULL,
    path                text NOT NULL,
    status              text NOT NULL DEFAULT 'candidate' CHECK (status IN ('candidate', 'active', 'retired', 'failed')),
    status_reason       text,
    data_watermark      bigint NOT NULL DEFAULT 0,  -- highest messages.seq trained on
    feedback_watermark  bigint NOT NULL DEFAULT 0,  -- highest feedback.id trained on
    hyperparams         jsonb NOT NULL DEFAULT '{}'::jsonb,
    metrics             jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    activated_at        timestamptz
);
CREATE UNIQUE INDEX adapter_versions_one_active ON adapter_versions ((true)) WHERE status = 'active';

CREATE TABLE training_runs (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('train', 'retrain', 'feedback')),
    trigger             text NOT NULL DEFAULT 'cli' CHECK (trigger IN ('cli', 'command', 'schedule', 'demo')),
    status              text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    adapter_version_id  bigint REFERENCES adapter_versions (id) ON DELETE SET NULL,
    params              jsonb NOT NULL DEFAULT '{}'::jsonb,
    metrics             jsonb NOT NULL DEFAULT '{}'::jsonb,
    error               text,
    started_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz
);

-- Every reply the bot sent, so feedback can point at it and training can replay it.
CREATE TABLE replies (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_ids         bigint[] NOT NULL DEFAULT '{}',  -- the Discord messages it was sent as
    trigger_message_id  bigint,
    channel_id          bigint,
    guild_id            bigint,
    asker_id            bigint,
    scope               text NOT NULL,
    prompt              jsonb NOT NULL,  -- the chat messages the model saw
    completion          text NOT NULL,
    memory_ids          bigint[] NOT NULL DEFAULT '{}',
    adapter_version_id  bigint REFERENCES adapter_versions (id) ON DELETE SET NULL,
    base_model          text NOT NULL,
    latency_ms          integer,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX replies_message_ids ON replies USING gin (message_ids);
CREATE INDEX replies_channel_time ON replies (channel_id, created_at);

CREATE TABLE feedback (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reply_id    bigint NOT NULL REFERENCES replies (id) ON DELETE CASCADE,
    rater_id    bigint NOT NULL,
    rating      smallint NOT NULL CHECK (rating IN (-1, 1)),
    correction  text,
    via         text NOT NULL CHECK (via IN ('command', 'context_menu', 'reaction')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (reply_id, rater_id)  -- a rater's latest rating of a reply replaces the earlier one
);
