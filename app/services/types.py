"""The fixed shapes the services answer with (SPEC 5.0), and the `Links` they put URLs in with.

TypedDicts, so the JSON is the same plain dicts as ever while mypy checks every key and value.
Free-form parts (event payloads, audit details, validated request bodies) stay `dict[str, Any]`.
"""

from __future__ import annotations

from typing import Generic, NotRequired, Protocol, TypedDict, TypeVar

T = TypeVar("T")


class Links(Protocol):
    """The URLs of the API's resources. Services do not know the URL scheme: the web layer gives
    them this (built from its named routes) when the service graph is wired."""

    def image(self, image_id: int, size: int = 300) -> str:
        """An image at one of its fixed sizes."""
        ...

    def stream(self, song_id: int) -> str:
        """A song's audio."""
        ...


class NoLinks:
    """For processes that answer no API request (the worker, the command line): they build no
    shape with a URL in it, and one that tried would fill the shared cache wrongly, so it fails."""

    def image(self, image_id: int, size: int = 300) -> str:
        raise RuntimeError("this process has no web routes to build an image URL with")

    def stream(self, song_id: int) -> str:
        raise RuntimeError("this process has no web routes to build a stream URL with")


NO_LINKS = NoLinks()


class Page(TypedDict, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Listing(TypedDict, Generic[T]):
    """One page of a catalogue list: its total (`total_is_estimate` when not counted exactly)
    and the keyset cursors of the pages after and before it (None where there is none)."""

    items: list[T]
    total: int
    total_is_estimate: bool
    next: str | None
    prev: str | None


# ---------------------------------------------------------------- the catalogue


class ArtistRef(TypedDict):
    id: int
    name: str


class AlbumRef(TypedDict):
    id: int
    title: str


class Song(TypedDict):
    id: int
    title: str
    artist_id: int
    artist: ArtistRef
    featured_artists: list[ArtistRef]
    album_id: int | None
    album: AlbumRef | None
    track_number: int | None
    disc_number: int
    duration_ms: int
    bitrate: int
    sample_rate: int
    codec: str
    mime_type: str
    size: int
    year: int | None
    genre: str | None
    explicit: bool
    play_count: int
    cover_url: str | None
    stream_url: str
    created_at: str


class Album(TypedDict):
    id: int
    title: str
    artist_id: int
    artist: ArtistRef
    album_type: str
    year: int | None
    genre: str | None
    song_count: int
    duration_ms: int
    cover_url: str | None
    created_at: str
    songs: NotRequired[list[Song]]  # one album's answer has them; lists of albums do not


class Artist(TypedDict):
    id: int
    name: str
    image_url: str | None
    bio: str | None
    created_at: str


class ArtistDetail(Artist):
    """One artist's answer: with its counts."""

    album_count: int
    song_count: int


class GenreCount(TypedDict):
    genre: str
    songs: int


class YearCount(TypedDict):
    year: int
    songs: int


class Browse(TypedDict):
    genres: list[GenreCount]
    years: list[YearCount]


# An artist in the one index of every artist (Subsonic's getArtists): (id, name, image_id,
# album_count). A tuple, not a dict, and the picture's id, not its URL: the index holds tens of
# thousands of them, and the one caller makes its own URLs.
IndexArtist = tuple[int, str, int | None, int]


# ---------------------------------------------------------------- users and playlists


class UserRef(TypedDict):
    id: int
    username: str
    display_name: str


class PublicUser(TypedDict):
    """A user as the API shows them; the email and state only to themselves and admins."""

    id: int
    username: str
    display_name: str
    role: str
    avatar_url: str | None
    bio: str
    created_at: str
    email: NotRequired[str]
    disabled: NotRequired[bool]


class Tokens(TypedDict):
    """A token pair as login, registration and refresh answer it."""

    user: PublicUser
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


class AppPassword(TypedDict):
    """An app password as its owner lists it: never its secret."""

    id: int
    label: str
    created_at: str
    last_used_at: str | None
    last_client: str | None


class NewAppPassword(TypedDict):
    """A new app password: the only answer that carries its secret."""

    id: int
    label: str
    password: str
    created_at: str


class Playlist(TypedDict):
    id: int
    name: str
    description: str
    is_public: bool
    is_collaborative: bool
    owner: UserRef
    cover_url: str | None
    song_count: int
    created_at: str
    updated_at: str


class PlaylistEntry(TypedDict):
    position: int
    added_at: str
    added_by: UserRef | None
    song: Song


class PlaylistWithSongs(Playlist):
    songs: Page[PlaylistEntry]


class Collaborator(TypedDict):
    id: int
    username: str
    display_name: str
    added_at: str


class Share(TypedDict):
    """A playlist's live share link, as its visitors' page shows it (no token: they hold it)."""

    playlist: Playlist
    description: str
    created_at: str
    expires_at: str | None
    visit_count: int
    last_visited_at: str | None


class OwnShare(Share):
    """A share link as its owner manages it: with its token (the web layer builds the URL)."""

    token: str


# ---------------------------------------------------------------- the library


class LikedSong(TypedDict):
    added_at: str
    song: Song


class SavedAlbum(TypedDict):
    added_at: str
    album: Album


class FollowedArtist(TypedDict):
    added_at: str
    artist: ArtistDetail


class FollowedPlaylist(TypedDict):
    added_at: str
    playlist: Playlist


LibraryEntry = LikedSong | SavedAlbum | FollowedArtist | FollowedPlaylist


# ---------------------------------------------------------------- listening


class HistoryEntry(TypedDict):
    played_at: str
    played_ms: int
    play_id: str
    song: Song


class RecentPlay(TypedDict):
    played_at: str
    song: Song


class TopSong(TypedDict):
    plays: int
    song: Song


class TopArtist(TypedDict):
    id: int
    name: str
    plays: int


class DayPlays(TypedDict):
    day: str
    plays: int


class Stats(TypedDict):
    plays: int
    listened_ms: int
    songs: int
    artists: int
    top_artists: list[TopArtist]
    top_songs: list[TopSong]
    per_day: list[DayPlays]


# ---------------------------------------------------------------- search


class Suggestion(TypedDict):
    """A completion for the search box."""

    type: str
    id: int
    text: str
    subtitle: str
