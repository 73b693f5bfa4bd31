ALTER TABLE recovery_codes DROP COLUMN keyed;
