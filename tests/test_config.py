"""Settings: environment, then `.env`, then defaults; secrets checked, generated and hidden."""

from __future__ import annotations

import stat
from dataclasses import fields
from pathlib import Path

import pytest

from app.config import Config, ConfigError, ensure_secret, load_config, settings_help

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "k" * 48


def test_environment_beats_env_file_beats_default(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\n"
        "SONORA_PORT=9001\n"
        "export SONORA_NAMESPACE='fromfile'\n"
        'SONORA_LOG_LEVEL="DEBUG"\n'
        "SONORA_OPEN_REGISTRATION=false\n"
    )
    config = load_config(environ={"SONORA_PORT": "9002"}, env_file=env_file)
    assert config.port == 9002  # environment
    assert config.namespace == "fromfile" and config.log_level == "DEBUG"  # .env
    assert config.open_registration is False
    assert config.bcrypt_rounds == 12 and config.host == "127.0.0.1"  # defaults
    assert config.refresh_reuse_grace_seconds == 10 and config.trusted_proxies == ()
    assert load_config(environ={}, env_file=env_file).port == 9001
    assert load_config(environ={}, env_file=tmp_path / "missing").port == 8080


def test_values_are_cast(tmp_path: Path) -> None:
    config = load_config(environ={
        "SONORA_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16,,",
        "SONORA_STREAM_PACE": "1.5", "SONORA_SECURE_COOKIES": "YES",
    }, env_file=None)
    assert config.trusted_proxies == ("10.0.0.1", "192.168.0.0/16")
    assert config.stream_pace == 1.5 and config.secure_cookies is True


@pytest.mark.parametrize("key", ["", "secret", "changeme", "not so secret", "CHANGEME",
                                 "x" * 31, "é" * 15])
def test_weak_or_empty_secret_keys_are_refused(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={"SONORA_SECRET_KEY": key}, env_file=None)
    message = str(info.value)
    assert "SONORA_SECRET_KEY" in message and "\n" not in message


def test_weak_secret_in_env_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SONORA_SECRET_KEY=\n")
    with pytest.raises(ConfigError, match="SONORA_SECRET_KEY"):
        load_config(environ={}, env_file=tmp_path / ".env")


def test_a_32_byte_key_is_accepted() -> None:
    assert load_config(environ={"SONORA_SECRET_KEY": "z" * 32}, env_file=None).secret_key == "z" * 32


def test_unset_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = load_config(environ={"SONORA_DATA_DIR": str(data)}, env_file=None)
    assert config.secret_key == ""
    first = ensure_secret(config)
    path = data / "secret_key"
    assert len(first.secret_key.encode()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = ensure_secret(load_config(environ={"SONORA_DATA_DIR": str(data)}, env_file=None))
    assert second.secret_key == first.secret_key
    other = ensure_secret(load_config(environ={"SONORA_DATA_DIR": str(tmp_path / "other")},
                                      env_file=None))
    assert other.secret_key != first.secret_key
    explicit = ensure_secret(load_config(environ={"SONORA_DATA_DIR": str(data),
                                                  "SONORA_SECRET_KEY": GOOD_KEY}, env_file=None))
    assert explicit.secret_key == GOOD_KEY


def test_a_weak_kept_secret_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("changeme\n")
    with pytest.raises(ConfigError):
        ensure_secret(load_config(environ={"SONORA_DATA_DIR": str(tmp_path)}, env_file=None))


def test_secrets_are_hidden_in_repr() -> None:
    config = load_config(environ={
        "SONORA_SECRET_KEY": GOOD_KEY,
        "SONORA_DATABASE_URL": "mysql://root:dbpass123@127.0.0.1/sonora",
        "SONORA_REDIS_URL": "redis://:redispass123@127.0.0.1:6379/0",
        "SONORA_AMQP_URL": "amqp://guest:amqppass123@127.0.0.1/",
        "SONORA_MEILI_KEY": "meilikey123",
    }, env_file=None)
    for text in (repr(config), str(config)):
        for secret in (GOOD_KEY, "dbpass123", "redispass123", "amqppass123", "meilikey123"):
            assert secret not in text
        assert "port=8080" in text and "***" in text


@pytest.mark.parametrize(("name", "raw"), [
    ("SONORA_PORT", "eighty"), ("SONORA_PORT", "0"), ("SONORA_PORT", "70000"),
    ("SONORA_BCRYPT_ROUNDS", "3"), ("SONORA_BCRYPT_ROUNDS", "1.5"),
    ("SONORA_OPEN_REGISTRATION", "maybe"), ("SONORA_STREAM_PACE", "fast"),
    ("SONORA_LOGIN_MAX_FAILURES_ACCOUNT", ""), ("SONORA_DATABASE_URL", "postgres://x/y"),
    ("SONORA_NAMESPACE", "a b"),
])
def test_bad_values_give_one_clear_line(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={name: raw}, env_file=None)
    message = str(info.value)
    assert name in message and "\n" not in message and len(message) < 300


def test_every_setting_has_help_and_a_documented_variable() -> None:
    rows = settings_help()
    assert [r[0] for r in rows] == ["SONORA_" + f.name.upper() for f in fields(Config)]
    assert all(help_text.strip() for _, _, help_text in rows)
    for name in ("SONORA_DATABASE_URL", "SONORA_REDIS_URL", "SONORA_AMQP_URL", "SONORA_MEILI_URL",
                 "SONORA_MEILI_KEY", "SONORA_DATA_DIR", "SONORA_MEDIA_DIR", "SONORA_SECRET_KEY",
                 "SONORA_HOST", "SONORA_PORT", "SONORA_NAMESPACE", "SONORA_OPEN_REGISTRATION",
                 "SONORA_BCRYPT_ROUNDS", "SONORA_TRUSTED_PROXIES", "SONORA_STREAM_BURST_SECONDS",
                 "SONORA_STREAM_PACE", "SONORA_STREAM_MAX_PER_USER", "SONORA_STREAM_URL_TTL",
                 "SONORA_REFRESH_REUSE_GRACE_SECONDS"):
        assert name in {r[0] for r in rows}, name


@pytest.mark.parametrize("document", [".env.example", "README.md"])
def test_every_setting_is_documented(document: str) -> None:
    path = ROOT / document
    assert path.is_file(), f"{document} is missing"
    text = path.read_text()
    missing = [name for name, _, _ in settings_help() if name not in text]
    assert not missing, f"{document} does not mention: {', '.join(missing)}"


def test_env_example_is_a_loadable_env_file() -> None:
    path = ROOT / ".env.example"
    assert path.is_file(), ".env.example is missing"
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            name = stripped.removeprefix("export ").split("=", 1)[0]
            assert name.startswith("SONORA_"), line


def test_a_secret_written_by_another_process_is_used(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text(GOOD_KEY + "\n")
    config = ensure_secret(load_config(environ={"SONORA_DATA_DIR": str(tmp_path)}, env_file=None))
    assert config.secret_key == GOOD_KEY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]


def test_an_unusable_data_dir_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = load_config(environ={"SONORA_DATA_DIR": str(blocker / "data")}, env_file=None)
    with pytest.raises(ConfigError) as info:
        ensure_secret(config)
    message = str(info.value)
    assert "SONORA_DATA_DIR" in message and "SONORA_SECRET_KEY" in message and "\n" not in message
