-- Recovery codes hashed under a key outside the database (issue 14). Keep in step with ../../sqlite/.

-- TRUE: code_hash is HMAC-SHA256 under a key derived from the KEK (80-bit codes). FALSE: a code
-- made before, stored as SHA-256 salted with the user id (about 50 bits). Old codes keep working
-- until the user makes new ones; the account page asks them to.
ALTER TABLE recovery_codes ADD COLUMN keyed BOOLEAN NOT NULL DEFAULT FALSE;
