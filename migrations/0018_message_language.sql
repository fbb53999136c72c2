-- The language each message is written in (ISO 639-1, persona/languages.py), detected
-- when it is stored; NULL: too short to tell, or stored before this migration
-- (`persona languages detect` fills those in, a batch at a time). A nullable column
-- without a default: no table rewrite, the lock is momentary.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS language text;
