-- Where a browser session was started, for the user's list of signed-in browsers (issue 14).
-- Keep in step with ../../postgres/. Sessions started before stay without them.
ALTER TABLE sessions ADD COLUMN source TEXT;       -- personal (the client's address)
ALTER TABLE sessions ADD COLUMN user_agent TEXT;   -- personal
