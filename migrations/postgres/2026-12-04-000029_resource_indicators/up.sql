-- Resource indicators (RFC 8707). A client that is a resource server (a lab service's API)
-- registers the URI other clients name in `resource` to get tokens for it: the `aud` of
-- those tokens. One client per URI.
ALTER TABLE clients ADD COLUMN resource_uri TEXT;
CREATE UNIQUE INDEX clients_resource_uri ON clients (resource_uri);
-- The resource URIs a client may get tokens for (a JSON array; empty: only for itself).
ALTER TABLE clients ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
-- The resources an authorization request named (space-separated; empty: none), carried by
-- its code or device authorization into the grant: its tokens are for one of them.
ALTER TABLE authorization_codes ADD COLUMN resources TEXT NOT NULL DEFAULT '';
ALTER TABLE device_authorizations ADD COLUMN resources TEXT NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN resources TEXT NOT NULL DEFAULT '';
-- The resources the user allowed a client to get tokens for on the consent page: a request
-- naming another shows the page again.
ALTER TABLE consents ADD COLUMN resources TEXT NOT NULL DEFAULT '';
