-- 0006: a server scope is the whole server. `guild:<guild_id>/<channel_id>` was allowed
-- by 0001 but nothing ever wrote it, and recall never narrows a server to one channel
-- (everyone in the server reads the answer). The check now says what the code does.
ALTER TABLE channels DROP CONSTRAINT channels_scope_check;
ALTER TABLE channels ADD CONSTRAINT channels_scope_check
    CHECK (scope ~ '^(dm:-?[0-9]+|group:-?[0-9]+|guild:-?[0-9]+|private)$');
