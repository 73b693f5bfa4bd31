ALTER TABLE consents DROP COLUMN resources;
ALTER TABLE grants DROP COLUMN resources;
ALTER TABLE device_authorizations DROP COLUMN resources;
ALTER TABLE authorization_codes DROP COLUMN resources;
ALTER TABLE clients DROP COLUMN resources;
DROP INDEX clients_resource_uri;
ALTER TABLE clients DROP COLUMN resource_uri;
