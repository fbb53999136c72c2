-- The language each message is written in (ISO 639-1, persona/languages.py), detected
-- by `persona memory build` before it chunks (and `persona languages detect`); `und`: too
-- short to tell; NULL: not looked at yet (every row stored before this migration, and a
-- message whose words changed). A nullable column without a default: no table rewrite,
-- the lock is momentary.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS language text;
