-- 0014: one-time dashboard login links made by `persona web login-link` (web/login_links.py).
-- Only a token's sha256 is kept; a link logs in once, before it expires, whatever the
-- failed-login limit says (the owner, at this machine's shell, is never locked out).
CREATE TABLE web_login_links (
    token_sha256  bytea PRIMARY KEY,
    made_at       timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);
