-- The device authorization grant (RFC 8628): a device's pending request, found by the hash
-- of its device_code (the device polls the token endpoint with it) or of its user_code (the
-- user types it at /device). Approving it records the sign-in the grant will carry; the first
-- poll after that takes it (once). Rows live until they expire (`device_authorization.ttl_secs`).
CREATE TABLE device_authorizations (
    id TEXT PRIMARY KEY,
    device_code_hash BYTEA NOT NULL UNIQUE,
    user_code_hash BYTEA NOT NULL UNIQUE,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    acr_values TEXT NOT NULL,
    lab_hint TEXT,
    -- pending, approved, denied or used
    status TEXT NOT NULL,
    interval_secs BIGINT NOT NULL,
    last_polled_at BIGINT,
    -- Set when the user approved: the sign-in the grant carries.
    grant_id TEXT,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    session_id TEXT,
    auth_time BIGINT,
    acr TEXT,
    amr TEXT,
    lab_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX device_authorizations_expiry ON device_authorizations (expires_at);
