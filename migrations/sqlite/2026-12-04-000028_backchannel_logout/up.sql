-- OpenID Connect Back-Channel Logout 1.0. Keep in step with the other backend's migration.
-- Where a client receives logout tokens (section 2.2, backchannel_logout_uri).
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
-- One row per ended session and client that got tokens from it: queued in the transaction
-- that ends the session, `pending` until the client answers 2xx (`delivered`) or the last
-- attempt failed (`failed`). `next_attempt_at` is when a node may try it next (a node that
-- takes it moves it forward first, so two nodes do not send it at once). The logout token is
-- signed at each attempt, so nothing secret is kept.
CREATE TABLE logout_deliveries (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    url TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT,
    last_result TEXT,
    delivered_at BIGINT
);
CREATE INDEX logout_deliveries_due ON logout_deliveries (status, next_attempt_at);
CREATE INDEX logout_deliveries_client ON logout_deliveries (client_id, created_at);
