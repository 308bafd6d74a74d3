-- The event backbone (SPEC 7): the transactional outbox, the consumers' idempotency keys and the
-- audit log. Depends on no other migration's tables (0002, the catalogue, may be applied later).

-- Events written in the same transaction as the change that caused them; the relay publishes them.
CREATE TABLE outbox (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id CHAR(36) NOT NULL,
    type VARCHAR(120) NOT NULL,
    payload MEDIUMTEXT NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    published_at DATETIME(6) NULL,
    attempts INT UNSIGNED NOT NULL DEFAULT 0,
    last_error VARCHAR(255) NULL,
    UNIQUE KEY uq_outbox_event (event_id),
    KEY ix_outbox_pending (published_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per (consumer, event) whose effect was applied: what makes redeliveries harmless.
CREATE TABLE processed_events (
    consumer VARCHAR(64) NOT NULL,
    event_id CHAR(36) NOT NULL,
    processed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (consumer, event_id),
    KEY ix_processed_at (processed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Every admin action (admin.# events). No foreign key on actor_id: actors may be deleted later
-- and their past actions must stay.
CREATE TABLE audit_log (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id CHAR(36) NOT NULL,
    actor_id BIGINT UNSIGNED NULL,
    actor_username VARCHAR(64) NOT NULL DEFAULT '',
    action VARCHAR(120) NOT NULL,
    target_type VARCHAR(32) NOT NULL DEFAULT '',
    target_id BIGINT UNSIGNED NULL,
    summary VARCHAR(500) NOT NULL DEFAULT '',
    details MEDIUMTEXT NOT NULL,
    occurred_at DATETIME(6) NOT NULL,
    UNIQUE KEY uq_audit_event (event_id),
    KEY ix_audit_occurred (occurred_at),
    KEY ix_audit_action (action)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
