ALTER TABLE clients DROP COLUMN previous_secret_expires_at;
ALTER TABLE clients DROP COLUMN previous_secret_hash;
ALTER TABLE clients DROP COLUMN expires_at;
ALTER TABLE clients DROP COLUMN disabled_at;
