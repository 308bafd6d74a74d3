"""`python -m app demo`: a small generated library and a demo listener for an empty instance."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

from app.cli.importer import Importer, Progress, Summary
from app.container import Services
from app.media.audiogen import build_demo_library
from app.services.users import NewAccount

DEMO_USER = "demo"


async def fill_demo(ctx: Services, seconds: float = 20.0) -> tuple[Summary | None, str | None]:
    """Import the demo library when the catalogue is empty and create the demo listener when
    missing. Returns the import summary (None when skipped) and the new listener's password."""
    summary = None
    if (await ctx.catalog.counts())["songs"] == 0:
        workdir = Path(tempfile.mkdtemp(prefix="sonora-demo-"))
        try:
            build_demo_library(workdir, seconds=seconds)
            summary = await Importer(ctx.ingest).run(workdir, Progress(0))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    password = None
    if not await ctx.users.exists(DEMO_USER):
        password = secrets.token_urlsafe(9)
        await ctx.users.create(NewAccount("demo@sonora.local", DEMO_USER, password, "Demo Listener"))
        note = Path(ctx.config.data_dir) / "demo-listener.txt"
        note.write_text(f"username: {DEMO_USER}\npassword: {password}\n")
        note.chmod(0o600)
    return summary, password
