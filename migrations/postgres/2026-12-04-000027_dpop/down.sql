ALTER TABLE authorization_codes DROP COLUMN dpop_jkt;
ALTER TABLE clients DROP COLUMN require_dpop;
ALTER TABLE grants DROP COLUMN dpop_jkt;
DROP TABLE dpop_proofs;
