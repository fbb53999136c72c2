-- 0007: forgetting reaches what was derived from the forgotten messages.
--
-- Each adapter version records what it was trained on (message ids of every example
-- window, the messages behind the memories put in its prompts, the ratings of KTO and
-- corrections) and which held-out messages its evaluation files hold. Forgetting
-- intersects these with what it deletes: a version trained on forgotten data (or
-- started from one that was) is tainted; a version whose files hold forgotten text has
-- them rewritten (files_pending) by persona/adapter_files.py. A version trained before
-- this migration has no record and counts as trained on anything that is forgotten.
ALTER TABLE adapter_versions
    ADD COLUMN trained_message_ids  bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN heldout_message_ids  bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN trained_feedback_ids bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN data_recorded        boolean NOT NULL DEFAULT false,  -- false: trained before 0007, its data is unknown
    ADD COLUMN tainted_at           timestamptz,
    ADD COLUMN tainted_reason       text,
    ADD COLUMN files_pending        boolean NOT NULL DEFAULT false;
CREATE INDEX adapter_versions_trained ON adapter_versions USING gin (trained_message_ids);
CREATE INDEX adapter_versions_heldout ON adapter_versions USING gin (heldout_message_ids);
CREATE INDEX adapter_versions_feedback ON adapter_versions USING gin (trained_feedback_ids);

-- Whose lines were in the conversation a reply was prompted with: forgetting a person
-- also deletes the replies whose prompt quoted them.
ALTER TABLE replies ADD COLUMN context_author_ids bigint[] NOT NULL DEFAULT '{}';
CREATE INDEX replies_memory_ids ON replies USING gin (memory_ids);
CREATE INDEX replies_context_authors ON replies USING gin (context_author_ids);
