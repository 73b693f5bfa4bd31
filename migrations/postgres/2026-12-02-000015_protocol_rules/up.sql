-- Browser sessions' idle timeout and per-client PKCE (issue 15). Keep in step with ../../sqlite/.

-- When the session was last used (a page that read it), kept to the minute: a session unused
-- for `tokens.session_idle_timeout_secs` is over. Sessions open at the upgrade count as used now.
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET last_seen_at = CAST(EXTRACT(EPOCH FROM now()) AS BIGINT);

-- PKCE is required of every client (RFC 9700 section 2.1.1) unless it is registered as a
-- legacy client that cannot send it. Confidential clients registered before this version were
-- allowed to skip it: they keep that, visibly (`pkce_optional` in the admin API's client list).
ALTER TABLE clients ADD COLUMN pkce_optional BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE clients SET pkce_optional = TRUE WHERE secret_hash IS NOT NULL;
