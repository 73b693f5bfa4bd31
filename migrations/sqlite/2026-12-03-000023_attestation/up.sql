-- The attestation root a WebAuthn credential's attestation chained to when it was registered
-- (lowercase hex SHA-256 of the root certificate's DER), or NULL: none, self or an untrusted
-- root. A credential counts as a hardware key (`amr` hwk) only while that root is trusted.
ALTER TABLE webauthn_credentials ADD COLUMN attestation_root TEXT;
