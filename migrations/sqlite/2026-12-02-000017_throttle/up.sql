-- Password-guessing budgets (issue 12). Keep in step with ../../postgres/.

-- One counter per budget and fixed window: `key` names the budget and what it counts (a
-- source address, an account as an HMAC of its e-mail, a known browser, or everyone), never
-- an e-mail in clear. Attempts are counted before the password is checked and given back when
-- it was right, so a full budget is refused before any Argon2 work. Rows whose window ended
-- are deleted by the hourly retention task.
CREATE TABLE throttle_counters (
    key TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL
);
CREATE INDEX throttle_counters_window ON throttle_counters (window_start);

-- Password failures were counted per user and locked the account (anyone could keep a user
-- locked out); the budgets above replace them. Code failures stay per user.
DELETE FROM auth_failures WHERE kind = 'password';
