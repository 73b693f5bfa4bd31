-- private_key_jwt client authentication (RFC 7523, OIDC Core section 9): the client's public
-- keys, registered as a JWK Set or fetched from its jwks_uri (one or the other).
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
-- The assertions' jti each client used, until the assertion expires: one use each
-- (RFC 7523 section 3, item 7).
CREATE TABLE client_assertions (
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    jti_hash BLOB NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti_hash)
);
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);
