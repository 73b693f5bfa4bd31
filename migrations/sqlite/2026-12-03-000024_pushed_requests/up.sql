-- Pushed authorization requests (RFC 9126): the parameters a client pushed, until the
-- browser brings their request_uri to /authorize (once) or they expire.
CREATE TABLE pushed_requests (
    uri_hash BLOB PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    params TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pushed_requests_expiry ON pushed_requests (expires_at);
-- A client that must push its authorization requests (RFC 9126 section 6).
ALTER TABLE clients ADD COLUMN require_par BOOLEAN NOT NULL DEFAULT FALSE;
