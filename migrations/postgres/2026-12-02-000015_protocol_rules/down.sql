ALTER TABLE clients DROP COLUMN pkce_optional;
ALTER TABLE sessions DROP COLUMN last_seen_at;
