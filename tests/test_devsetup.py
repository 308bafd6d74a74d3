"""`make run`'s set-up: .env from the detected services, never overwriting an edited one."""

from pathlib import Path

from app.cli import devsetup


def test_env_written_from_running_services(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    assert "written" in devsetup.write_env(env)
    text = env.read_text()
    # MariaDB, Redis and RabbitMQ run on these machines; Meilisearch cannot.
    assert "SONORA_DATABASE_URL=mysql://root@127.0.0.1:3306/sonora" in text
    assert "SONORA_REDIS_URL=redis://127.0.0.1:6379/0" in text
    assert "SONORA_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/" in text
    assert "\nSONORA_MEILI_URL=" not in text


def test_untouched_env_is_refreshed_but_edited_env_is_kept(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    devsetup.write_env(env)
    assert "written" in devsetup.write_env(env)  # untouched: regenerated
    env.write_text(env.read_text() + "SONORA_PORT=9999\n")
    assert "left as it is" in devsetup.write_env(env)
    assert env.read_text().endswith("SONORA_PORT=9999\n")


def test_hand_written_env_is_kept(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("SONORA_PORT=9000\n")
    assert "left as it is" in devsetup.write_env(env)
    assert env.read_text() == "SONORA_PORT=9000\n"


def test_port_probe_sees_closed_port() -> None:
    assert devsetup.port_open(3306)
    assert not devsetup.port_open(1)
