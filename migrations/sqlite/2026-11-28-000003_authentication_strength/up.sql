-- Authentication strength: second factors, the factors a session has used, and MFA policy.
-- Keep in step with ../../postgres/ (same tables, columns and meaning).

-- The factors a session has proven and when ([{"m":"pwd","at":...}, ...]); acr/amr stay as
-- the strength computed over all of them at the last change.
ALTER TABLE sessions ADD COLUMN factors TEXT NOT NULL DEFAULT '[]';

-- A minimum acr for tokens issued to this client (NULL: none).
ALTER TABLE clients ADD COLUMN min_acr TEXT;

-- One TOTP authenticator per user (RFC 6238). The secret is sealed (AES-256-GCM) under a key
-- derived from the KEK; last_step is the last accepted time step (one use per step).
CREATE TABLE totp_credentials (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret BLOB NOT NULL,
    confirmed BOOLEAN NOT NULL DEFAULT 0,
    last_step BIGINT,
    created_at BIGINT NOT NULL
);

-- WebAuthn credentials: passkeys (discoverable, user verification) and security keys.
-- `credential` is webauthn-rs's public credential record (public key, counter, flags).
CREATE TABLE webauthn_credentials (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    credential TEXT NOT NULL,
    sign_count BIGINT NOT NULL,
    backup_eligible BOOLEAN NOT NULL,
    backup_state BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- Ten single-use recovery codes per user, SHA-256 hashed.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- Consecutive failed attempts per user and kind (`code`: second-factor codes, `password`),
-- across flows and nodes: past a threshold, attempts of that kind are refused without being
-- checked until locked_until (see store/factors.rs for the thresholds and back-off).
CREATE TABLE auth_failures (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    failures BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind)
);

-- A WebAuthn ceremony in progress (challenge state), bound to the browser that began it.
CREATE TABLE webauthn_ceremonies (
    id TEXT PRIMARY KEY,
    browser_hash BLOB NOT NULL,
    user_id TEXT,
    purpose TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- A lab's MFA policy: the minimum acr for its members, and the grace a member without a
-- suitable factor gets to enrol one (days since the policy first applied to them, or logins).
CREATE TABLE lab_policies (
    lab_id TEXT PRIMARY KEY REFERENCES labs (id) ON DELETE CASCADE,
    min_acr TEXT NOT NULL,
    grace_days BIGINT,
    grace_logins BIGINT,
    updated_at BIGINT NOT NULL
);

-- Roles of a lab (features come with the admin issue); a role may demand a minimum acr.
CREATE TABLE roles (
    lab_id TEXT NOT NULL REFERENCES labs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    min_acr TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (lab_id, name)
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lab_id TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, lab_id, role),
    FOREIGN KEY (lab_id, role) REFERENCES roles (lab_id, name) ON DELETE CASCADE
);

-- A member's enrolment deferrals under their lab's policy: when they first chose "Not now" and
-- how many sign-ins they deferred (the grace in days counts from the policy's `updated_at` or
-- the membership, whichever is later).
CREATE TABLE mfa_grace (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lab_id TEXT NOT NULL REFERENCES labs (id) ON DELETE CASCADE,
    started_at BIGINT NOT NULL,
    logins BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, lab_id)
);
