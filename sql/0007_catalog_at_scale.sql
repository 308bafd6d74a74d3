-- The catalogue at a million songs (issue 12): counts and sums kept in the rows they describe,
-- and the composite indexes every list reads its page from (no filesort, no temporary table).
--
-- Maintained figures, kept current by the triggers below (they also catch the command-line
-- importer and any hand-written SQL); `python -m app repair-counts` recomputes them all:
--   albums.song_count, albums.duration_ms     the album's songs and their length
--   artists.album_count, artists.song_count   albums and songs (as main artist) of the artist
--   catalog_totals (one row)                  songs, albums, artists, bytes, duration_ms
--   genre_song_counts, year_song_counts       songs per genre (as spelled) and per year
-- The counters are signed: a corrupted figure never makes a later write fail (it is repaired).
--
-- MariaDB fires no trigger for a foreign key's cascade. The only cascade under counted rows is
-- songs.album_id ON DELETE SET NULL: the deleted album's own figures go with its row, and no
-- other figure counts songs by album, so nothing is left to correct. (song_artists and the
-- image links cascade too, but nothing counts them.)
--
-- Song triggers run BEFORE the row is written: they take the exclusive lock on the album and
-- artist rows before the foreign-key check takes a shared one, so two writers adding songs to
-- one album queue instead of deadlocking on a lock upgrade. A failed statement rolls the
-- trigger's changes back with it.
--
-- A bulk loader (bench/scale_data.py, say) may run `SET @sonora_counts_deferred = 1` on its own
-- connection: the triggers then do nothing for it (a million rows load several times faster),
-- and it runs `python -m app repair-counts` (CatalogRepo.repair_counts) when done. Nothing in
-- the application sets it.

ALTER TABLE albums
    ADD COLUMN song_count BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN duration_ms BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN genre_canon VARCHAR(100) AS (LOWER(genre)) VIRTUAL,
    ADD KEY ix_albums_title (title_canon),
    ADD KEY ix_albums_artist_year (artist_id, year),
    ADD KEY ix_albums_genre_created (genre_canon, created_at),
    ADD KEY ix_albums_genre_title (genre_canon, title_canon),
    ADD KEY ix_albums_year_created (year, created_at);

ALTER TABLE artists
    ADD COLUMN album_count BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN song_count BIGINT NOT NULL DEFAULT 0;

ALTER TABLE songs
    ADD COLUMN genre_canon VARCHAR(100) AS (LOWER(genre)) VIRTUAL,
    ADD KEY ix_songs_title (title),
    ADD KEY ix_songs_popular (play_count DESC, id),
    ADD KEY ix_songs_artist_popular (artist_id, play_count DESC, id),
    ADD KEY ix_songs_artist_created (artist_id, created_at),
    ADD KEY ix_songs_genre_created (genre_canon, created_at),
    ADD KEY ix_songs_genre_popular (genre_canon, play_count DESC, id),
    ADD KEY ix_songs_year_created (year, created_at),
    ADD KEY ix_songs_year_popular (year, play_count DESC, id),
    DROP KEY ix_songs_artist,
    DROP KEY ix_songs_genre,
    DROP KEY ix_songs_plays,
    DROP KEY ix_songs_year;

CREATE TABLE catalog_totals (
    id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    songs BIGINT NOT NULL DEFAULT 0,
    albums BIGINT NOT NULL DEFAULT 0,
    artists BIGINT NOT NULL DEFAULT 0,
    bytes BIGINT NOT NULL DEFAULT 0,
    duration_ms BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO catalog_totals (id) VALUES (1);

CREATE TABLE genre_song_counts (
    genre VARCHAR(100) NOT NULL PRIMARY KEY,
    songs BIGINT NOT NULL DEFAULT 0,
    KEY ix_genre_counts_songs (songs DESC, genre)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE year_song_counts (
    year SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
    songs BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TRIGGER songs_counts_insert BEFORE INSERT ON songs FOR EACH ROW
BEGIN
    IF @sonora_counts_deferred IS NULL THEN
        UPDATE albums SET song_count = song_count + 1, duration_ms = duration_ms + NEW.duration_ms
            WHERE id = NEW.album_id; -- no row for a song without an album
        UPDATE artists SET song_count = song_count + 1 WHERE id = NEW.artist_id; -- main artist
        UPDATE catalog_totals SET songs = songs + 1, bytes = bytes + NEW.size,
            duration_ms = duration_ms + NEW.duration_ms WHERE id = 1; -- the library
        IF NEW.genre IS NOT NULL AND NEW.genre <> '' THEN
            INSERT INTO genre_song_counts (genre, songs) VALUES (NEW.genre, 1)
                ON DUPLICATE KEY UPDATE songs = songs + 1; -- per genre
        END IF; -- genre
        IF NEW.year IS NOT NULL THEN
            INSERT INTO year_song_counts (year, songs) VALUES (NEW.year, 1)
                ON DUPLICATE KEY UPDATE songs = songs + 1; -- per year
        END IF; -- year
    END IF; -- deferred: a bulk load runs repair-counts after it
END;

CREATE TRIGGER songs_counts_update BEFORE UPDATE ON songs FOR EACH ROW
BEGIN
    IF @sonora_counts_deferred IS NULL THEN
        IF NOT (OLD.album_id <=> NEW.album_id) OR OLD.duration_ms <> NEW.duration_ms THEN
            UPDATE albums SET song_count = song_count - 1, duration_ms = duration_ms - OLD.duration_ms
                WHERE id = OLD.album_id; -- out of the old album
            UPDATE albums SET song_count = song_count + 1, duration_ms = duration_ms + NEW.duration_ms
                WHERE id = NEW.album_id; -- into the new one
        END IF; -- album
        IF OLD.artist_id <> NEW.artist_id THEN
            UPDATE artists SET song_count = song_count - 1 WHERE id = OLD.artist_id; -- old artist
            UPDATE artists SET song_count = song_count + 1 WHERE id = NEW.artist_id; -- new artist
        END IF; -- artist
        IF OLD.size <> NEW.size OR OLD.duration_ms <> NEW.duration_ms THEN
            UPDATE catalog_totals SET bytes = bytes - OLD.size + NEW.size,
                duration_ms = duration_ms - OLD.duration_ms + NEW.duration_ms WHERE id = 1; -- sums
        END IF; -- library
        IF NOT (OLD.genre <=> NEW.genre) THEN
            UPDATE genre_song_counts SET songs = songs - 1 WHERE genre = OLD.genre; -- old genre
            IF NEW.genre IS NOT NULL AND NEW.genre <> '' THEN
                INSERT INTO genre_song_counts (genre, songs) VALUES (NEW.genre, 1)
                    ON DUPLICATE KEY UPDATE songs = songs + 1; -- new genre
            END IF; -- new genre
        END IF; -- genre
        IF NOT (OLD.year <=> NEW.year) THEN
            UPDATE year_song_counts SET songs = songs - 1 WHERE year = OLD.year; -- old year
            IF NEW.year IS NOT NULL THEN
                INSERT INTO year_song_counts (year, songs) VALUES (NEW.year, 1)
                    ON DUPLICATE KEY UPDATE songs = songs + 1; -- new year
            END IF; -- new year
        END IF; -- year
    END IF; -- deferred: a bulk load runs repair-counts after it
END;

CREATE TRIGGER songs_counts_delete AFTER DELETE ON songs FOR EACH ROW
BEGIN
    IF @sonora_counts_deferred IS NULL THEN
        UPDATE albums SET song_count = song_count - 1, duration_ms = duration_ms - OLD.duration_ms
            WHERE id = OLD.album_id; -- its album
        UPDATE artists SET song_count = song_count - 1 WHERE id = OLD.artist_id; -- its artist
        UPDATE catalog_totals SET songs = songs - 1, bytes = bytes - OLD.size,
            duration_ms = duration_ms - OLD.duration_ms WHERE id = 1; -- the library
        UPDATE genre_song_counts SET songs = songs - 1 WHERE genre = OLD.genre; -- its genre
        UPDATE year_song_counts SET songs = songs - 1 WHERE year = OLD.year; -- its year
    END IF; -- deferred: a bulk load runs repair-counts after it
END;

CREATE TRIGGER albums_counts_insert BEFORE INSERT ON albums FOR EACH ROW
BEGIN
    IF @sonora_counts_deferred IS NULL THEN
        UPDATE artists SET album_count = album_count + 1 WHERE id = NEW.artist_id; -- its artist
        UPDATE catalog_totals SET albums = albums + 1 WHERE id = 1; -- the library
    END IF; -- deferred: a bulk load runs repair-counts after it
END;

CREATE TRIGGER albums_counts_update BEFORE UPDATE ON albums FOR EACH ROW
BEGIN
    IF @sonora_counts_deferred IS NULL THEN
        IF OLD.artist_id <> NEW.artist_id THEN
            UPDATE artists SET album_count = album_count - 1 WHERE id = OLD.artist_id; -- old artist
            UPDATE artists SET album_count = album_count + 1 WHERE id = NEW.artist_id; -- new artist
        END IF; -- artist
    END IF; -- deferred: a bulk load runs repair-counts after it
END;

CREATE TRIGGER albums_counts_delete AFTER DELETE ON albums FOR EACH ROW
BEGIN
    IF @sonora_counts_deferred IS NULL THEN
        UPDATE artists SET album_count = album_count - 1 WHERE id = OLD.artist_id; -- its artist
        UPDATE catalog_totals SET albums = albums - 1 WHERE id = 1; -- the library
    END IF; -- deferred: a bulk load runs repair-counts after it
END;

CREATE TRIGGER artists_counts_insert AFTER INSERT ON artists FOR EACH ROW
BEGIN
    IF @sonora_counts_deferred IS NULL THEN
        UPDATE catalog_totals SET artists = artists + 1 WHERE id = 1; -- the library
    END IF; -- deferred: a bulk load runs repair-counts after it
END;

CREATE TRIGGER artists_counts_delete AFTER DELETE ON artists FOR EACH ROW
BEGIN
    IF @sonora_counts_deferred IS NULL THEN
        UPDATE catalog_totals SET artists = artists - 1 WHERE id = 1; -- the library
    END IF; -- deferred: a bulk load runs repair-counts after it
END;

-- Figures for a catalogue that existed before this migration (the same SQL as repair-counts).
UPDATE albums al SET
    song_count = (SELECT COUNT(*) FROM songs s WHERE s.album_id = al.id),
    duration_ms = (SELECT COALESCE(SUM(s.duration_ms), 0) FROM songs s WHERE s.album_id = al.id);

UPDATE artists ar SET
    album_count = (SELECT COUNT(*) FROM albums al WHERE al.artist_id = ar.id),
    song_count = (SELECT COUNT(*) FROM songs s WHERE s.artist_id = ar.id);

UPDATE catalog_totals SET
    songs = (SELECT COUNT(*) FROM songs), albums = (SELECT COUNT(*) FROM albums),
    artists = (SELECT COUNT(*) FROM artists),
    bytes = (SELECT COALESCE(SUM(size), 0) FROM songs),
    duration_ms = (SELECT COALESCE(SUM(duration_ms), 0) FROM songs)
    WHERE id = 1;

INSERT INTO genre_song_counts (genre, songs)
    SELECT genre, COUNT(*) FROM songs WHERE genre IS NOT NULL AND genre <> '' GROUP BY genre;

INSERT INTO year_song_counts (year, songs)
    SELECT year, COUNT(*) FROM songs WHERE year IS NOT NULL GROUP BY year;
