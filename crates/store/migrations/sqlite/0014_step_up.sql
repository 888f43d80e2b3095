-- When the session's user last proved who they are (the login, or the
-- password or a second factor entered again): sensitive changes need it
-- within the last few minutes. NULL: at the session's creation.
ALTER TABLE sessions ADD COLUMN authenticated_at TEXT;
