-- Outgoing e-mail (docs/email.md): a durable queue that each node's sender drains, and the
-- single-use links mailed to people (password reset, address confirmation).

-- When the account's e-mail address was last confirmed (a link mailed to it was opened);
-- NULL: not confirmed. Tokens say email_verified only when it is set.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;

-- When the person asked, on the account page, for their account to be deleted; it is erased
-- after `account.deletion_grace_days` unless they cancel (or an administrator erases it
-- sooner). NULL: no request.
ALTER TABLE users ADD COLUMN deletion_requested_at BIGINT;

-- Whether the invitation's link was ever shown to someone (a system administrator, the
-- operator) rather than only mailed to the address: accepting a link only mailed confirms
-- the address. Invitations made before e-mail were all handed out.
ALTER TABLE invitations ADD COLUMN link_disclosed BOOLEAN NOT NULL DEFAULT 0;
UPDATE invitations SET link_disclosed = 1;

-- One message to send. Its body (text and HTML, which may hold a link that acts as a
-- password) is sealed under the key-encryption key and dropped once the message is sent or
-- given up. A node claims a message for a lease before sending it; a message whose lease ran
-- out (its node died) is claimed again.
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    body BLOB,
    user_id TEXT,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    sent_at BIGINT,
    last_error TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (state, next_attempt_at);
CREATE INDEX mail_outbox_user ON mail_outbox (user_id);

-- Single-use links mailed to a person: a password reset, the confirmation of an address
-- (at invitation or on request), and the two confirmations of an address change (to the
-- old and the new address, paired by change_id). Stored as SHA-256 of the token.
CREATE TABLE account_links (
    token_hash BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    email TEXT NOT NULL,
    change_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX account_links_user ON account_links (user_id, purpose);
