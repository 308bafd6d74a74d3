"""First-run set-up for `make run`: detect local services into `.env`, create the first admin."""

from __future__ import annotations

import hashlib
import secrets
import socket
from pathlib import Path

from app.config import Config
from app.container import Services
from app.services.users import NewAccount

MARKER = "# Written by `make run` from the services it found."
SERVICES = [
    ("SONORA_DATABASE_URL", 3306, "mysql://root@127.0.0.1:3306/sonora"),
    ("SONORA_REDIS_URL", 6379, "redis://127.0.0.1:6379/0"),
    ("SONORA_AMQP_URL", 5672, "amqp://guest:guest@127.0.0.1:5672/"),
    ("SONORA_MEILI_URL", 7700, "http://127.0.0.1:7700"),
]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _checksum(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def detected_env() -> str:
    lines = [
        "# Absent services fall back to the embedded defaults; edit freely: once edited, this file",
        "# is never overwritten. Every setting is listed in .env.example.",
    ]
    for name, port, url in SERVICES:
        if port_open(port):
            lines.append(f"{name}={url}")
        else:
            lines.append(f"# {name}= (nothing answered on 127.0.0.1:{port}; embedded default used)")
    return "\n".join(lines) + "\n"


def write_env(path: Path = Path(".env")) -> str:
    """Write `.env` from the detected services unless someone has edited it. Returns what it did."""
    body = detected_env()
    if path.exists():
        text = path.read_text()
        first, _, rest = text.partition("\n")
        untouched = first.startswith(MARKER) and first.endswith(f"[{_checksum(rest)}]")
        if not untouched:
            return f"{path} was edited by hand; left as it is"
    path.write_text(f"{MARKER} [{_checksum(body)}]\n{body}")
    return f"{path} written from the services found"


def describe(config: Config) -> list[str]:
    """One line per backend in use."""
    return [
        "database: " + config.database_url.split("@")[-1],
        "cache:    " + ("redis" if config.redis_url else "in-process"),
        "broker:   " + ("rabbitmq" if config.amqp_url else "in-process"),
        "search:   " + ("meilisearch" if config.meili_url else "embedded"),
    ]


async def first_admin(services: Services) -> str | None:
    """Create the first admin unless there is one; returns its password (also written, readable
    by the owner only, to `<data_dir>/initial-admin.txt`), or None when an admin exists."""
    if await services.users.has_admin():
        return None
    password = secrets.token_urlsafe(12)
    await services.users.create(
        NewAccount("admin@sonora.local", "admin", password, "Admin"), role="admin"
    )
    note = Path(services.config.data_dir) / "initial-admin.txt"
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_text(f"username: admin\npassword: {password}\n")
    note.chmod(0o600)
    return password
