ALTER TABLE webauthn_credentials DROP COLUMN attestation_root;
