-- Finding the expired login flows (each new flow's clean-up, the retention purge) reads only
-- them, not the whole table: anonymous requests can make the table large.
CREATE INDEX login_flows_expires_at ON login_flows (expires_at);
