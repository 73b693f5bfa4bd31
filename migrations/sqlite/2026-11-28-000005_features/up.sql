-- Feature grants: a role is a named set of features its lab defines; an administrator can also
-- allow or deny one feature to one member. The effective set is computed in one place
-- (crates/latchkey-server/src/protocol/grants.rs) and goes into every token as `features`.
CREATE TABLE role_features (
    lab_id TEXT NOT NULL,
    role TEXT NOT NULL,
    feature TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (lab_id, role, feature),
    FOREIGN KEY (lab_id, role) REFERENCES roles (lab_id, name) ON DELETE CASCADE
);

CREATE TABLE member_features (
    user_id TEXT NOT NULL,
    lab_id TEXT NOT NULL,
    feature TEXT NOT NULL,
    allow BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, lab_id, feature),
    FOREIGN KEY (user_id, lab_id) REFERENCES memberships (user_id, lab_id) ON DELETE CASCADE
);
