-- App passwords (SPEC 13): one secret per device for the Subsonic API at /rest, where the
-- account's bcrypt password is never accepted. Nothing here reveals a secret to whoever reads a
-- dump of the database without the server's secret key:
--   lookup_hash  HMAC-SHA256 of the secret under a key derived from SONORA_SECRET_KEY, in hex:
--                finds the app password of a `p` or `apiKey` in one indexed read;
--   secret_box   the secret encrypted (AES-256-GCM, a key derived from SONORA_SECRET_KEY, the
--                owner's id as associated data), base64 of the 12-byte nonce, the ciphertext and
--                the tag: token authentication (`t = md5(secret + s)`) needs the secret itself.
-- Text, not binary columns: the driver (aiomysql over PyMySQL 1.2) cannot send bytes parameters.
-- Changing SONORA_SECRET_KEY therefore invalidates every app password (make new ones).
CREATE TABLE app_passwords (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT UNSIGNED NOT NULL,
    label VARCHAR(64) NOT NULL,
    lookup_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    secret_box VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    last_used_at DATETIME(6) NULL,
    last_client VARCHAR(64) NULL,
    UNIQUE KEY uq_app_passwords_lookup (lookup_hash),
    KEY ix_app_passwords_user (user_id, id),
    CONSTRAINT fk_app_passwords_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
