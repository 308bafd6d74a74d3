-- Accounts, login sessions (refresh-token families) and their refresh tokens.
CREATE TABLE users (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(254) NOT NULL,
    email_canon VARCHAR(254) NOT NULL,
    username VARCHAR(32) NOT NULL,
    username_canon VARCHAR(32) NOT NULL,
    display_name VARCHAR(64) NOT NULL,
    bio VARCHAR(500) NOT NULL DEFAULT '',
    password_hash VARCHAR(100) NOT NULL,
    role ENUM('member', 'admin') NOT NULL DEFAULT 'member',
    disabled TINYINT(1) NOT NULL DEFAULT 0,
    token_version INT UNSIGNED NOT NULL DEFAULT 0,
    avatar_image_id BIGINT UNSIGNED NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_users_email (email_canon),
    UNIQUE KEY uq_users_username (username_canon),
    KEY ix_users_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sessions (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT UNSIGNED NOT NULL,
    token_version INT UNSIGNED NOT NULL,
    user_agent VARCHAR(255) NOT NULL DEFAULT '',
    ip VARCHAR(45) NOT NULL DEFAULT '',
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    last_used_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    revoked_at DATETIME(6) NULL,
    revoked_reason VARCHAR(32) NULL,
    KEY ix_sessions_user (user_id),
    CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE refresh_tokens (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    session_id BIGINT UNSIGNED NOT NULL,
    token_hash CHAR(64) NOT NULL,
    issued_at DOUBLE NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    spent_at DATETIME(6) NULL,
    UNIQUE KEY uq_refresh_hash (token_hash),
    KEY ix_refresh_session (session_id),
    CONSTRAINT fk_refresh_session FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
