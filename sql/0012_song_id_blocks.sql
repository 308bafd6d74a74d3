-- How many songs each block of 10,000 ids holds (block = id DIV 10000), kept by triggers as the
-- other counts are (sql/0007). A position in id order - a page of Subsonic's empty-query search3
-- that an app jumps to by offset - is then found by summing the blocks before it (a hundred rows
-- at a million songs) and counting inside one block along ix_songs_position (at most 10,000
-- entries), instead of counting up to half the catalogue: 1-2 ms at any size, not 50+ ms.
-- Ids never change, so an update moves no song between blocks. Empty blocks stay (count 0).
CREATE TABLE song_id_blocks (
    block INT UNSIGNED NOT NULL PRIMARY KEY,
    songs BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO song_id_blocks (block, songs) SELECT id DIV 10000, COUNT(*) FROM songs GROUP BY id DIV 10000;

CREATE TRIGGER songs_blocks_insert AFTER INSERT ON songs FOR EACH ROW
BEGIN
    IF @sonora_counts_deferred IS NULL THEN
        INSERT INTO song_id_blocks (block, songs) VALUES (NEW.id DIV 10000, 1)
            ON DUPLICATE KEY UPDATE songs = songs + 1; -- its block (AFTER: the id is known)
    END IF; -- deferred: a bulk load runs repair-counts after it
END;

CREATE TRIGGER songs_blocks_delete AFTER DELETE ON songs FOR EACH ROW
BEGIN
    IF @sonora_counts_deferred IS NULL THEN
        UPDATE song_id_blocks SET songs = songs - 1 WHERE block = OLD.id DIV 10000; -- its block
    END IF; -- deferred: a bulk load runs repair-counts after it
END;
