-- Client life cycle: a client can be disabled (and enabled again), an automation client
-- expires, and a rotated secret keeps working beside its successor until its overlap ends.
-- Deleting a client deletes its row (and with it its grants, refresh tokens, codes, consents).
ALTER TABLE clients ADD COLUMN disabled_at BIGINT;
-- After this time the client cannot authenticate (default for admin clients: 90 days).
ALTER TABLE clients ADD COLUMN expires_at BIGINT;
-- The secret being replaced (SHA-256, like secret_hash) and when it stops working.
ALTER TABLE clients ADD COLUMN previous_secret_hash BYTEA;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at BIGINT;
