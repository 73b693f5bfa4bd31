-- Administration: system administrators (all labs, clients, keys), lab administrators (their
-- own lab only), automation clients bound to one of those scopes, and invitations.
ALTER TABLE users ADD COLUMN system_admin BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE memberships ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE;
-- `*`: the client administers everything; a lab id: that lab only; NULL: no admin API access.
ALTER TABLE clients ADD COLUMN admin_of TEXT;

CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
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
