-- The catalogue: images, artists, albums, songs and featured artists.
CREATE TABLE images (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    sha256 CHAR(64) NOT NULL,
    width INT UNSIGNED NOT NULL,
    height INT UNSIGNED NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_images_sha (sha256)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE artists (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    name_canon VARCHAR(255) NOT NULL,
    bio TEXT NULL,
    image_id BIGINT UNSIGNED NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_artists_name (name_canon),
    KEY ix_artists_created (created_at),
    CONSTRAINT fk_artists_image FOREIGN KEY (image_id) REFERENCES images (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE albums (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    title VARCHAR(255) NOT NULL,
    title_canon VARCHAR(255) NOT NULL,
    artist_id BIGINT UNSIGNED NOT NULL,
    album_type ENUM('album', 'single', 'ep', 'compilation') NOT NULL DEFAULT 'album',
    year SMALLINT UNSIGNED NULL,
    genre VARCHAR(100) NULL,
    cover_image_id BIGINT UNSIGNED NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_albums_artist_title (artist_id, title_canon),
    KEY ix_albums_year (year),
    KEY ix_albums_created (created_at),
    CONSTRAINT fk_albums_artist FOREIGN KEY (artist_id) REFERENCES artists (id) ON DELETE RESTRICT,
    CONSTRAINT fk_albums_cover FOREIGN KEY (cover_image_id) REFERENCES images (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE songs (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    title VARCHAR(500) NOT NULL,
    artist_id BIGINT UNSIGNED NOT NULL,
    album_id BIGINT UNSIGNED NULL,
    track_number SMALLINT UNSIGNED NULL,
    disc_number SMALLINT UNSIGNED NOT NULL DEFAULT 1,
    duration_ms INT UNSIGNED NOT NULL,
    bitrate INT UNSIGNED NOT NULL,
    sample_rate INT UNSIGNED NOT NULL,
    codec VARCHAR(16) NOT NULL,
    mime_type VARCHAR(64) NOT NULL,
    size BIGINT UNSIGNED NOT NULL,
    sha256 CHAR(64) NOT NULL,
    file_path VARCHAR(1024) NOT NULL,
    in_place TINYINT(1) NOT NULL DEFAULT 0,
    source_mtime DOUBLE NULL,
    genre VARCHAR(100) NULL,
    year SMALLINT UNSIGNED NULL,
    explicit TINYINT(1) NOT NULL DEFAULT 0,
    cover_image_id BIGINT UNSIGNED NULL,
    play_count BIGINT UNSIGNED NOT NULL DEFAULT 0,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_songs_sha (sha256),
    KEY ix_songs_album (album_id, disc_number, track_number),
    KEY ix_songs_artist (artist_id, play_count),
    KEY ix_songs_genre (genre),
    KEY ix_songs_year (year),
    KEY ix_songs_created (created_at),
    KEY ix_songs_plays (play_count),
    KEY ix_songs_path (file_path(255)),
    CONSTRAINT fk_songs_artist FOREIGN KEY (artist_id) REFERENCES artists (id) ON DELETE RESTRICT,
    CONSTRAINT fk_songs_album FOREIGN KEY (album_id) REFERENCES albums (id) ON DELETE SET NULL,
    CONSTRAINT fk_songs_cover FOREIGN KEY (cover_image_id) REFERENCES images (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE song_artists (
    song_id BIGINT UNSIGNED NOT NULL,
    artist_id BIGINT UNSIGNED NOT NULL,
    position SMALLINT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (song_id, artist_id),
    KEY ix_song_artists_artist (artist_id),
    CONSTRAINT fk_sa_song FOREIGN KEY (song_id) REFERENCES songs (id) ON DELETE CASCADE,
    CONSTRAINT fk_sa_artist FOREIGN KEY (artist_id) REFERENCES artists (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

ALTER TABLE users ADD CONSTRAINT fk_users_avatar FOREIGN KEY (avatar_image_id) REFERENCES images (id) ON DELETE SET NULL;
