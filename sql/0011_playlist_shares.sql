-- Share links (SPEC 5.2) as shares the Subsonic API lists and edits (getShares, createShare,
-- updateShare, deleteShare; SPEC 13): a playlist has at most one link, now a row of its own with
-- what the apps show of it. Its visits are counted here, apart from the playlist row, so counting
-- one neither waits for the playlist's writers (who lock that row) nor changes the playlist.
--   token_hash  SHA-256 of the token in hex: what a visitor's link is found by (as before);
--   token_box   the token encrypted (AES-256-GCM, a key derived from SONORA_SECRET_KEY, the
--               playlist's id as associated data), base64 of the 12-byte nonce, the ciphertext and
--               the tag, so its owner can be shown the link again and a dump does not reveal it.
--               NULL for links made before this migration: they keep working, but their URL
--               cannot be shown (getShares leaves them out until the owner makes a new link);
--   expires_at  past it the link answers as if revoked (NULL: never).
-- Changing SONORA_SECRET_KEY leaves every link working; only showing their URLs again stops.
CREATE TABLE playlist_shares (
    playlist_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    token_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    token_box VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NULL,
    description VARCHAR(1000) NOT NULL DEFAULT '',
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    expires_at DATETIME(6) NULL,
    visit_count BIGINT UNSIGNED NOT NULL DEFAULT 0,
    last_visited_at DATETIME(6) NULL,
    UNIQUE KEY uq_playlist_shares_token (token_hash),
    CONSTRAINT fk_playlist_shares_playlist FOREIGN KEY (playlist_id) REFERENCES playlists (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO playlist_shares (playlist_id, token_hash)
    SELECT id, share_hash FROM playlists WHERE share_hash IS NOT NULL;

ALTER TABLE playlists DROP INDEX uq_playlists_share, DROP COLUMN share_hash;
