-- Administration: system administrators (all labs, clients, keys), lab administrators (their
-- own lab only), automation clients bound to one of those scopes, and invitations.
ALTER TABLE users ADD COLUMN system_admin BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE memberships ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE;
-- `*`: the client administers everything; a lab id: that lab only; NULL: no admin API access.
ALTER TABLE clients ADD COLUMN admin_of TEXT;

CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    lab_id TEXT NOT NULL REFERENCES labs (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    roles TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT,
    accepted_by TEXT
);
CREATE INDEX invitations_lab ON invitations (lab_id);

-- The admin console is a built-in public client (its redirect URI follows the issuer and is
-- supplied by the code); the row exists so that its codes and grants reference a client.
INSERT INTO clients (id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types,
                     access_token_ttl_secs, id_token_alg, skip_consent, created_at)
VALUES ('latchkey:admin', 'the Latchkey admin console', NULL, '[]', '[]', '["authorization_code"]',
        900, 'ES256', TRUE, 0);
