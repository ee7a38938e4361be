-- Tokens get a name, a scope and a revocation time. Tokens made before keep what they
-- could do: scope 'admin' is the full power of their user (admin or not).
ALTER TABLE api_tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE api_tokens ADD COLUMN revoked_at TIMESTAMP;
