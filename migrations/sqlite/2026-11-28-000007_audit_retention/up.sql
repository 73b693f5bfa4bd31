-- Audit retention and personal-data erasure. Keep in step with ../../postgres/.

-- A signed record that the audit entries up to `seq` were pruned on purpose: `hash` is the hash
-- of entry `seq` (the `prev_hash` the first remaining entry must carry), `pruned` how many
-- entries this prune removed (`seq - pruned` is the previous checkpoint's `seq`, or 0), and
-- `mac` an HMAC-SHA256 over these fields under a key derived from the KEK (see
-- crates/latchkey-server/src/audit_chain.rs), so database access alone cannot forge one.
CREATE TABLE audit_checkpoints (
    seq BIGINT PRIMARY KEY,
    hash BLOB NOT NULL,
    pruned BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    mac BLOB NOT NULL
);

-- When a user's personal data was erased (the row stays, pseudonymous, so the audit log's
-- opaque user ids keep pointing at something).
ALTER TABLE users ADD COLUMN erased_at BIGINT;
