"""Settings: declared once (name, default, help), read from the environment, then `.env`, then defaults."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

PREFIX = "SONORA_"
WEAK_SECRETS = {"secret", "changeme", "not so secret", "password", "sonora"}
MIN_SECRET_BYTES = 32


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line saying how to fix it."""


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _mbps(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value < float("inf"):
        raise ValueError(f"expected a number of Mbit/s >= 0, got {raw!r}")
    return value


def setting(default: Any, help: str, cast: Callable[[str], Any] = str, secret: bool = False) -> Any:
    """Declare a setting: its default, a one-line help and how the raw string is cast."""
    return field(default=default, metadata={"help": help, "cast": cast, "secret": secret})


@dataclass(frozen=True)
class Config:
    """Every setting of Sonora. The environment variable is `SONORA_` + the upper-case name."""

    database_url: str = setting(
        "mysql://root@127.0.0.1:3306/sonora",
        "MySQL/MariaDB URL; the database is created if missing",
        secret=True,
    )
    redis_url: str = setting(
        "", "Redis URL (redis://host:port/db); empty uses an in-process cache", secret=True
    )
    amqp_url: str = setting(
        "", "RabbitMQ URL (amqp://user:pass@host:port/); empty uses an in-process bus", secret=True
    )
    meili_url: str = setting("", "Meilisearch URL; empty uses the embedded search index")
    meili_key: str = setting("", "Meilisearch API key", secret=True)
    data_dir: str = setting("./data", "Directory for generated secrets, search index and state")
    media_dir: str = setting("", "Directory for audio and images (default: <data_dir>/media)")
    secret_key: str = setting(
        "", "Signing key for tokens (>= 32 bytes); generated in the data dir when unset", secret=True
    )
    host: str = setting("127.0.0.1", "Address the web server binds to")
    port: int = setting(8080, "Port the web server listens on", int)
    namespace: str = setting(
        "sonora", "Prefix of the exchange, queues and Redis keys of this instance"
    )
    worker_db_pool: int = setting(
        24, "MySQL connections of the worker; each consumer's prefetch is derived from it", int
    )
    consumer_stall_seconds: float = setting(
        30.0, "Seconds a consumer may have work waiting without acking before health degrades",
        float,
    )
    open_registration: bool = setting(True, "Whether anyone may register at /register", _bool)
    bcrypt_rounds: int = setting(12, "bcrypt cost factor (tests may lower it)", int)
    trusted_proxies: tuple[str, ...] = setting(
        (), "Comma-separated peer addresses whose X-Forwarded-For, -Proto and -Host are trusted", _list
    )
    access_token_ttl: int = setting(900, "Lifetime of an access token, in seconds", int)
    refresh_token_ttl: int = setting(
        30 * 24 * 3600, "Lifetime of a refresh token, in seconds", int
    )
    refresh_reuse_grace_seconds: int = setting(
        10, "Seconds a spent refresh token still yields the same successor (two tabs)", int
    )
    login_max_failures_account_address: int = setting(
        10, "Failed logins per account from one client address per window before 429", int
    )
    login_max_failures_account: int = setting(
        100, "Failed logins per account from all addresses together per window before 429", int
    )
    login_max_failures_address: int = setting(
        100, "Failed logins per client address per window before 429", int
    )
    login_window_seconds: int = setting(900, "Window of the login rate limits, in seconds", int)
    register_max_per_address: int = setting(20, "Registrations per client address per hour", int)
    stream_burst_seconds: int = setting(
        30, "Seconds of audio a stream is owed at full speed (its floor) before the pace", int
    )
    stream_pace: float = setting(
        2.0, "A stream's floor after the burst, as a multiple of its bitrate (0 = none)", float
    )
    stream_egress_mbps: float = setting(
        0.0, "Upstream for all streams together, in Mbit/s: past it they share it max-min "
        "fairly above their floors (0 = no limit, no pacing)", _mbps
    )
    stream_max_per_user: int = setting(16, "Concurrent streams allowed per user", int)
    stream_url_ttl: int = setting(21600, "Validity of a signed stream URL, in seconds", int)
    max_upload_mb: int = setting(200, "Largest accepted audio upload, in MiB", int)
    request_head_timeout: float = setting(
        20.0, "Seconds a client has to send a request's head before the connection is closed", float
    )
    request_body_grace_seconds: float = setting(
        10.0, "Seconds a request body may arrive at any pace before the minimum rate applies", float
    )
    request_body_min_rate: float = setting(
        1024.0, "Bytes per second a request body must keep arriving at after the grace period "
        "(0 = off)", float
    )
    image_decode_slots: int = setting(
        2, "Uploaded images decoded at once (each may take ~200 MiB); the rest wait their turn", int
    )
    log_level: str = setting("INFO", "Logging level (DEBUG, INFO, WARNING, ERROR)")
    secure_cookies: bool = setting(
        False, "Mark cookies Secure (set true behind HTTPS)", _bool
    )

    @property
    def media_path(self) -> Path:
        return Path(self.media_dir) if self.media_dir else Path(self.data_dir) / "media"

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata["secret"] and value:
                value = "***"
            parts.append(f"{f.name}={value!r}")
        return "Config(" + ", ".join(parts) + ")"

    def replace(self, **changes: Any) -> Config:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Config(**values)


def settings_help() -> list[tuple[str, str, str]]:
    """(variable, default, help) for every setting, in declaration order."""
    rows = []
    for f in fields(Config):
        default = f.default
        if isinstance(default, tuple):
            default = ",".join(default)
        elif isinstance(default, bool):
            default = "true" if default else "false"
        rows.append((PREFIX + f.name.upper(), str(default), f.metadata["help"]))
    return rows


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a `.env` file: KEY=VALUE lines, `#` comments, optional quotes."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_config(
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = Path(".env"),
    **overrides: Any,
) -> Config:
    """Build the configuration: environment first, then `.env`, then defaults; overrides win."""
    env = dict(os.environ if environ is None else environ)
    file_values = read_env_file(env_file) if env_file is not None else {}
    values: dict[str, Any] = {}
    explicit_secret = False
    for f in fields(Config):
        name = PREFIX + f.name.upper()
        raw = env.get(name, file_values.get(name))
        if raw is None:
            continue
        if f.name == "secret_key":
            explicit_secret = True
        try:
            values[f.name] = f.metadata["cast"](raw)
        except ValueError as exc:
            raise ConfigError(f"{name} is invalid ({exc}); fix it in the environment or .env") from exc
    values.update(overrides)
    if "secret_key" in overrides:
        explicit_secret = True
    config = Config(**values)
    _validate(config)
    if explicit_secret:
        check_secret(config.secret_key)
    return config


def _validate(config: Config) -> None:
    if not config.database_url.startswith(("mysql://", "mariadb://")):
        raise ConfigError(
            "SONORA_DATABASE_URL must look like mysql://user:password@host:port/database"
        )
    if not 4 <= config.bcrypt_rounds <= 31:
        raise ConfigError("SONORA_BCRYPT_ROUNDS must be between 4 and 31")
    if not 0 < config.port < 65536:
        raise ConfigError("SONORA_PORT must be between 1 and 65535")
    if not config.namespace.replace("_", "").replace("-", "").isalnum():
        raise ConfigError("SONORA_NAMESPACE may hold only letters, digits, '-' and '_'")


def check_secret(key: str) -> None:
    """Refuse an empty, known-weak or short secret key."""
    if not key:
        raise ConfigError(
            "SONORA_SECRET_KEY is set but empty; unset it to have one generated, or set >= 32 bytes"
        )
    if key.strip().lower() in WEAK_SECRETS or len(key.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(
            "SONORA_SECRET_KEY is too weak; use at least 32 random bytes "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )


def ensure_secret(config: Config) -> Config:
    """Return the config with a secret key: the configured one, or one kept in the data dir."""
    if config.secret_key:
        return config
    path = Path(config.data_dir) / "secret_key"
    try:
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            key = secrets.token_urlsafe(48)
            # Written in full under a temporary name, then linked: a process starting at the
            # same moment (serve and worker) either wins or reads the winner's complete key.
            tmp = path.with_name(f".secret_key.{os.getpid()}")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(key + "\n")
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        key = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot keep the generated secret key in {path} ({exc.strerror or exc}); "
            "make SONORA_DATA_DIR writable or set SONORA_SECRET_KEY"
        ) from exc
    check_secret(key)
    return config.replace(secret_key=key)
