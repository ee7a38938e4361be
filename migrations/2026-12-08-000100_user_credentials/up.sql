-- Huginn's user credentials: a named value per user, read by `{% credential NAME %}`.
-- The value is stored sealed (enc:v1:..., see src/secrets), never in clear.
CREATE TABLE user_credentials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_name TEXT NOT NULL,
    sealed_value TEXT NOT NULL,
    mode TEXT NOT NULL DEFAULT 'text' CHECK (mode IN ('text', 'java_script')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX user_credentials_user_name ON user_credentials (user_id, credential_name);
