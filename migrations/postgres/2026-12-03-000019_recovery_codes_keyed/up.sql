-- Recovery codes hashed under a key outside the database (issue 14). Keep in step with ../../sqlite/.

-- TRUE: code_hash is HMAC-SHA256 under the server secret `recovery_codes` (80-bit codes). FALSE: a code
-- made before, stored as SHA-256 salted with the user id (about 50 bits). Old codes keep working
-- until the user makes new ones; the account page asks them to.
ALTER TABLE recovery_codes ADD COLUMN keyed BOOLEAN NOT NULL DEFAULT FALSE;

-- Random keys the service needs beyond the signing keys (the recovery codes' HMAC key), sealed
-- under the KEK (AES-256-GCM, the name as associated data): shared by every node, useless
-- without the KEK, re-sealed by `latchkey keys rewrap`.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    sealed BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
