-- Key rotation: a staged key carries the time it may start signing.
ALTER TABLE signing_keys ADD COLUMN activate_at BIGINT;

-- Security events (key lifecycle now; logins, admin changes and the hash chain come later).
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
