-- 0016: the owner in the loop. `send_modes`: per place, whether the persona replies by
-- itself (auto), drafts a reply for the owner to send, edit or discard (draft), or stays
-- quiet (off); `drafts`: those replies, made exactly as a sent one (prompt, memories,
-- verdict) and held until the owner decides; `guard_terms`: the owner's never-say list, a
-- reply holding one becomes a draft (persona/send_modes.py, persona/drafts.py, persona/guard.py).
CREATE TABLE send_modes (
    place       text NOT NULL CHECK (place IN ('channel', 'guild', 'user', 'dms')),
    place_id    bigint NOT NULL,  -- the channel, server or person; 0 for all DMs
    mode        text NOT NULL CHECK (mode IN ('auto', 'draft', 'off')),
    set_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (place, place_id)
);

CREATE TABLE drafts (
    id                  bigserial PRIMARY KEY,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'approved', 'sending', 'sent', 'discarded', 'expired', 'failed')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    decided_at          timestamptz,
    decided_via         text CHECK (decided_via IN ('discord', 'dashboard', 'cli')),
    decision_seq        bigint,         -- order of decisions (drafts_decisions): training's watermark
    sent_at             timestamptz,
    -- who and where: what forget matches, as it matches replies
    scope               text NOT NULL,
    channel_id          bigint NOT NULL,
    guild_id            bigint,
    trigger_message_id  bigint NOT NULL,
    asker_id            bigint NOT NULL,
    asker_name          text NOT NULL,
    asker_text          text NOT NULL,
    place_label         text NOT NULL,
    context_author_ids  bigint[] NOT NULL DEFAULT '{}',
    memory_ids          bigint[] NOT NULL DEFAULT '{}',
    held_because        text NOT NULL DEFAULT 'draft mode',  -- or the hourly limit, or what the guard found
    draft_text          text NOT NULL,  -- what the model wrote
    final_text          text,           -- what the owner chose to send (the draft, or their edit)
    reply               jsonb NOT NULL, -- the reply as it would be logged: prompt, memories, evidence, verdict, adapter
    notice_channel_id   bigint,         -- the owner's DM that shows it, with its buttons
    notice_message_id   bigint,
    reply_id            bigint REFERENCES replies (id) ON DELETE CASCADE,  -- the logged reply once sent
    failure             text
);
CREATE INDEX drafts_open ON drafts (expires_at) WHERE status IN ('pending', 'approved', 'sending');
CREATE INDEX drafts_asker ON drafts (asker_id);
CREATE INDEX drafts_channel ON drafts (channel_id);

CREATE TABLE guard_terms (
    term        text PRIMARY KEY CHECK (length(term) BETWEEN 1 AND 200),  -- case-folded
    added_at    timestamptz NOT NULL DEFAULT now()
);

-- Decisions become training data (trainer/lessons.py): sent unchanged = a desirable example,
-- discarded = an undesirable one, edited = an SFT target and a preference pair. Each
-- adapter records which decisions it learned from, so forgetting a draft reaches it.
CREATE SEQUENCE drafts_decisions;
ALTER TABLE adapter_versions ADD COLUMN trained_draft_ids bigint[] NOT NULL DEFAULT '{}';
ALTER TABLE adapter_versions ADD COLUMN draft_watermark bigint NOT NULL DEFAULT 0;
