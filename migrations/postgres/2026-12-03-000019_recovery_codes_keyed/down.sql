DROP TABLE server_secrets;
ALTER TABLE recovery_codes DROP COLUMN keyed;
