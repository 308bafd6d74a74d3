-- Listening history: one row per counted play, unique per user and client-chosen play_id.
CREATE TABLE plays (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT UNSIGNED NOT NULL,
    song_id BIGINT UNSIGNED NOT NULL,
    play_id VARCHAR(64) NOT NULL,
    played_ms INT UNSIGNED NOT NULL,
    played_at DATETIME(6) NOT NULL,
    UNIQUE KEY uq_plays_user_play (user_id, play_id),
    KEY ix_plays_user_time (user_id, played_at),
    KEY ix_plays_time_song (played_at, song_id),
    KEY ix_plays_song (song_id),
    CONSTRAINT fk_plays_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT fk_plays_song FOREIGN KEY (song_id) REFERENCES songs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

ALTER TABLE users ADD COLUMN history_cleared_at DATETIME(6) NULL;
