-- A digest of a song file's audio alone (tags left out): a rescan recognises a file that was
-- both retagged and renamed or moved (what taggers that rename by tags do), so its song keeps
-- its id. NULL for songs imported before it, and for files whose audio cannot be told apart.
ALTER TABLE songs ADD COLUMN audio_sha256 CHAR(64) NULL;
CREATE INDEX ix_songs_audio ON songs (audio_sha256);
