DROP TABLE account_links;
DROP TABLE mail_outbox;
ALTER TABLE invitations DROP COLUMN link_disclosed;
ALTER TABLE users DROP COLUMN deletion_requested_at;
ALTER TABLE users DROP COLUMN email_verified_at;
