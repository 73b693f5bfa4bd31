-- Security alerts and their webhook deliveries (issue 12). Keep in step with ../../postgres/.

-- One row per alert: `key` names the detector, its subject and the window (or the one audit
-- entry), so nodes that see the same attack raise it once. `payload` is the JSON every
-- receiver is sent.
CREATE TABLE security_alerts (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    at BIGINT NOT NULL,
    detector TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX security_alerts_at ON security_alerts (at);

-- One row per alert and receiver: `pending` until a 2xx answer (`delivered`) or the last
-- attempt failed (`failed`). `next_attempt_at` is when a node may try it next (a node that
-- takes it moves it forward first, so two nodes do not send it at once).
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL REFERENCES security_alerts (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT,
    last_result TEXT,
    delivered_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_alert ON webhook_deliveries (alert_id);
