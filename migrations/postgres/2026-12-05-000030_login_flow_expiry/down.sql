DROP INDEX login_flows_expires_at;
