DROP TABLE client_labs;
ALTER TABLE clients DROP COLUMN features;
ALTER TABLE clients DROP COLUMN all_labs;
