-- 0017: which conversation frame each adapter was trained on (persona/prompts.py). Frame 2
-- puts the recalled memories next to the new message instead of in the system prompt, so
-- the engines can reuse a channel's prompt prefix; adapters trained before keep frame 1
-- and are served in it. Adding a column with a constant default is instant (no rewrite).
ALTER TABLE adapter_versions ADD COLUMN prompt_frame smallint NOT NULL DEFAULT 1 CHECK (prompt_frame IN (1, 2));
