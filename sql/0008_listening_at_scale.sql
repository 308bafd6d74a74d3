-- Listening, the audit log and the charts at 1,000,000 songs (issue 12): every list reads the rows
-- it returns from an index in its order, and nothing groups the whole plays table per request.
-- Depends only on 0003 (audit_log) and 0004 (plays); not on 0007.

-- A listener's plays in time order (ties by id, as the history pages them) with what their
-- history, tops and totals read (song, listening time, artist): all from the index, no row
-- lookup per play. It replaces ix_plays_user_time, its prefix (the user's foreign key keeps
-- uq_plays_user_play). `artist_id` is the song's artist when it was played (ListeningRepo.record
-- writes it): a listener's top artists and artist count group their plays by it instead of
-- looking up the song of every play. NULL (a play written by other means) falls back to the
-- song's artist.
ALTER TABLE plays
    ADD COLUMN artist_id BIGINT UNSIGNED NULL,
    ADD KEY ix_plays_user_listen (user_id, played_at, id, song_id, played_ms, artist_id),
    DROP KEY ix_plays_user_time;

UPDATE plays p JOIN songs s ON s.id = p.song_id SET p.artist_id = s.artist_id;

-- The charts of the long periods (month, year, all time) group tens of thousands to millions of
-- plays: each is kept here, computed at most every few minutes by the request that finds it
-- stale, and read as one row otherwise (app/services/listening.py, CHART_SNAPSHOT_SECONDS).
-- `entries` is a JSON list of [song_id, plays], most played first.
CREATE TABLE listening_charts (
    period VARCHAR(8) NOT NULL PRIMARY KEY,
    computed_at DATETIME(6) NOT NULL,
    entries MEDIUMTEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The audit log filtered by kind (an action prefix), newest first: the matching ids come from
-- this index alone (the primary key rides in it), then only a page of rows is read.
ALTER TABLE audit_log
    ADD KEY ix_audit_action_time (action, occurred_at);

-- Audit entries by action, kept by AuditRepo.insert in the entry's transaction: the admin list's
-- totals (all, or one kind) add up a few dozen rows instead of counting the whole log.
CREATE TABLE audit_action_counts (
    action VARCHAR(120) NOT NULL PRIMARY KEY,
    entries BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO audit_action_counts (action, entries)
    SELECT action, COUNT(*) FROM audit_log GROUP BY action;

-- The moderation list of every playlist, newest first (the primary key rides in the index).
ALTER TABLE playlists
    ADD KEY ix_playlists_created (created_at);
