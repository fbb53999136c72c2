-- 0011: the consistency check's verdict on a reply (persona/runtime/consistency.py):
-- {"outcome": none|supported|contradicted|unsupported, "claim", "sentence", "memory_ids"}.
-- NULL: the reply was not checked (PERSONA_CONSISTENCY=off, or it was a "not sure").
-- The sentence is the owner's, from a memory listed in the reply's memory_ids, so a
-- forget that deletes that memory deletes the reply (and this) with it.
ALTER TABLE replies ADD COLUMN verdict jsonb;
