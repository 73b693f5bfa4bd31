-- Clients belong to labs (issue 11). Keep in step with ../../postgres/.

-- A client serves every lab (only a system administrator registers such a client), or the labs
-- listed in client_labs. Clients registered before this version served every lab: they keep
-- that, visibly (`all_labs` in the admin API's client list), until an administrator names
-- their labs. New clients name their labs.
ALTER TABLE clients ADD COLUMN all_labs BOOLEAN NOT NULL DEFAULT 0;
UPDATE clients SET all_labs = 1;

-- The features the client's service checks (JSON array of feature names): what administrators
-- pick from when they grant features in the labs it serves.
ALTER TABLE clients ADD COLUMN features TEXT NOT NULL DEFAULT '[]';

CREATE TABLE client_labs (
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    lab_id TEXT NOT NULL REFERENCES labs (id) ON DELETE CASCADE,
    PRIMARY KEY (client_id, lab_id)
);
CREATE INDEX client_labs_lab ON client_labs (lab_id);
