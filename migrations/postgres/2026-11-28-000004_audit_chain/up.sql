-- Tamper-evident audit log: each entry carries its place in the chain (`seq`, 1, 2, …), the
-- hash of the previous entry and its own hash over a canonical encoding (see
-- crates/latchkey-server/src/audit_chain.rs). Rows written before this migration are chained
-- at the next start, in the order they were written.
ALTER TABLE audit_events ADD COLUMN seq BIGINT;
ALTER TABLE audit_events ADD COLUMN prev_hash BYTEA;
ALTER TABLE audit_events ADD COLUMN hash BYTEA;
CREATE UNIQUE INDEX audit_events_seq ON audit_events (seq);
