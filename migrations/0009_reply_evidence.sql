-- 0009: what grounding pulled a reply towards (persona/runtime/grounding.py): the owner's
-- remembered sentences with their memory id and similarity, so the owner can see why a
-- reply said what it said. They come from the reply's own recalled memories, so a forget
-- that deletes those memories deletes the reply (and this) with them.
ALTER TABLE replies ADD COLUMN evidence jsonb NOT NULL DEFAULT '[]'::jsonb;
