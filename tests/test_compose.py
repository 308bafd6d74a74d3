"""docker-compose.yml describes the whole stack with health checks (no Docker engine runs here)."""

from pathlib import Path

import yaml

from app.config import settings_help

ROOT = Path(__file__).resolve().parent.parent


def test_compose_has_every_service_with_health_checks() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert set(services) == {"mysql", "redis", "rabbitmq", "meilisearch", "web", "worker"}
    for name in ("mysql", "redis", "rabbitmq", "meilisearch", "web"):
        assert services[name]["healthcheck"]["test"], name
    assert "management" in services["rabbitmq"]["image"]
    assert services["web"]["command"][-1] == "serve"
    assert services["worker"]["command"][-1] == "worker"
    for name in ("web", "worker"):
        env = services[name]["environment"]
        known = {variable for variable, _, _ in settings_help()}
        assert set(env) <= known, set(env) - known
        assert env["SONORA_DATABASE_URL"].startswith("mysql://")
        assert set(services[name]["depends_on"]) == {"mysql", "redis", "rabbitmq", "meilisearch"}


def test_dockerfile_builds_the_native_core() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "build_ext --inplace" in text
    assert "requirements.txt" in text
