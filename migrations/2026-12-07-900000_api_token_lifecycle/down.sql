-- Revoked tokens must not come back to life when the columns go.
DELETE FROM api_tokens WHERE revoked_at IS NOT NULL;
ALTER TABLE api_tokens DROP COLUMN revoked_at;
ALTER TABLE api_tokens DROP COLUMN scope;
ALTER TABLE api_tokens DROP COLUMN name;
