-- Scheduled backups (`[backup]`): one row per interval, claimed by the node that takes it,
-- so several nodes on one database make one backup per interval between them.
CREATE TABLE backup_runs (
    slot BIGINT PRIMARY KEY,
    node TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    status TEXT NOT NULL,
    file TEXT,
    bytes BIGINT,
    rows BIGINT,
    error TEXT
);
