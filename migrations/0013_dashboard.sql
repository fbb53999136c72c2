-- 0013: the owner's dashboard (`persona web`).
-- Its password (`persona web set-password`, web/password.py): one row at most, an
-- argon2id hash, never the password. No row: only the one-time link printed when
-- `persona web` starts logs in.
CREATE TABLE web_login (
    id             smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    password_hash  text NOT NULL,
    set_at         timestamptz NOT NULL DEFAULT now()
);

-- The owner rates replies from the dashboard too.
ALTER TABLE feedback DROP CONSTRAINT feedback_via_check;
ALTER TABLE feedback ADD CONSTRAINT feedback_via_check CHECK (via IN ('command', 'context_menu', 'reaction', 'dashboard'));

-- A retrain can be started from the dashboard.
ALTER TABLE training_runs DROP CONSTRAINT training_runs_trigger_check;
ALTER TABLE training_runs ADD CONSTRAINT training_runs_trigger_check CHECK (trigger IN ('cli', 'command', 'schedule', 'demo', 'dashboard'));
