-- One SFTP login per tenant on its backup server: a chrooted user of its
-- own, made by the server's helper, that reaches that tenant's repository
-- and nothing else. The user's name, its private key (sealed with the
-- secrets key like the repository's password; the public half is derived
-- from it) and when the helper last confirmed the login. A repository
-- recorded before this gets its login on its next use.
ALTER TABLE backup_repositories ADD COLUMN login_user TEXT;
ALTER TABLE backup_repositories ADD COLUMN login_key TEXT;
ALTER TABLE backup_repositories ADD COLUMN login_ready_at timestamptz;
CREATE UNIQUE INDEX backup_repositories_login ON backup_repositories (server_id, login_user);
