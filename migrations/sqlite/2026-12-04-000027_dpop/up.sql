-- DPoP (RFC 9449): the proofs seen, one use each until they are too old to be accepted
-- (section 11.1), shared by every node on the database. proof_hash is SHA-256 of the proof
-- key's thumbprint and the proof's jti.
CREATE TABLE dpop_proofs (
    proof_hash BLOB PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dpop_proofs_expiry ON dpop_proofs (expires_at);
-- The key a public client's refresh tokens are bound to (section 5), when it used DPoP.
ALTER TABLE grants ADD COLUMN dpop_jkt TEXT;
-- A client whose tokens must be DPoP-bound (section 5.2, dpop_bound_access_tokens).
ALTER TABLE clients ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT FALSE;
-- The key an authorization code is bound to (section 10: dpop_jkt, or a proof at /par).
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
