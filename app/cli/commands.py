"""Command line: python -m app serve|worker|migrate|create-user|reset-password|settings."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from app.config import Config, ConfigError, ensure_secret, load_config, settings_help
from app.repos.db import Database, DatabaseUnavailable


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Access lines carry their own time and come in batches: written as they are.
    access = logging.getLogger("sonora.access")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.propagate = False


def _config() -> Config:
    return ensure_secret(load_config())


async def _with_db(config: Config, work: Callable[[Database], Awaitable[Any]]) -> Any:
    db = Database(config.database_url, maxsize=4)
    await db.connect()
    try:
        from app.repos.migrate import migrate

        await migrate(db)
        return await work(db)
    finally:
        await db.close()


def cmd_serve(args: argparse.Namespace) -> int:
    from app.main import create_app, serve

    config = _config()
    if args.host:
        config = config.replace(host=args.host)
    if args.port:
        config = config.replace(port=args.port)
    app = create_app(config)
    print(f"Sonora is listening on http://{config.host}:{config.port}/", flush=True)
    serve(app, config)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """What `make run` starts: the demo library on first start, the worker when a broker is
    configured, and the web server; stopping the server stops the worker."""
    import subprocess

    config = _config()
    if not args.no_demo:
        cmd_demo(argparse.Namespace(seconds=args.demo_seconds))
    worker = None
    if config.amqp_url:
        worker = subprocess.Popen([sys.executable, "-m", "app", "worker"])  # noqa: S603
        print("worker started (event consumers and outbox relay)", flush=True)
    try:
        return cmd_serve(argparse.Namespace(host=args.host, port=args.port))
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()


def cmd_worker(args: argparse.Namespace) -> int:
    from app.events.worker import run

    return run(_config())


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.repos.migrate import migrate

    config = _config()

    async def run() -> list[str]:
        db = Database(config.database_url, maxsize=2)
        await db.connect()
        try:
            return await migrate(db)
        finally:
            await db.close()

    applied = asyncio.run(run())
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def _password(given: str | None, confirm: bool = True) -> str:
    if given:
        return given
    first = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Again: ") != first:
        raise SystemExit("the passwords differ")
    return first


def cmd_create_user(args: argparse.Namespace) -> int:
    from app.adapters.kv import MemoryKV
    from app.errors import AppError
    from app.services.authstate import AuthStateCache
    from app.services.users import UserService, parse_new_account

    config = _config()
    password = _password(args.password)

    async def work(db: Database) -> dict[str, Any]:
        users = UserService(db, config, AuthStateCache(db, MemoryKV(config.namespace)))
        account = parse_new_account({"email": args.email, "username": args.username,
                                     "password": password, "display_name": args.display_name})
        return await users.create(account, role="admin" if args.admin else "member")

    try:
        user = asyncio.run(_with_db(config, work))
    except AppError as exc:
        detail = f" {exc.details}" if exc.details else ""
        print(f"error: {exc.message}{detail}", file=sys.stderr)
        return 1
    print(f"created {user['role']} {user['username']} (id {user['id']})")
    return 0


def cmd_reset_password(args: argparse.Namespace) -> int:
    from app.adapters.kv import make_kv
    from app.errors import AppError
    from app.services.authstate import AuthStateCache
    from app.services.users import UserService

    config = _config()
    password = _password(args.password)

    async def work(db: Database) -> dict[str, Any]:
        kv = make_kv(config.redis_url, config.namespace)
        try:
            users = UserService(db, config, AuthStateCache(db, kv))
            return await users.reset_password(args.username, password)
        finally:
            await kv.close()

    try:
        user = asyncio.run(_with_db(config, work))
    except AppError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"password of {user['username']} changed; every session of the account was ended")
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    """What `make run` does before serving: .env, migrations, the first admin."""
    import secrets
    from pathlib import Path

    from app.adapters.kv import MemoryKV
    from app.cli.devsetup import describe, write_env
    from app.services.authstate import AuthStateCache
    from app.services.users import NewAccount, UserService

    print(write_env(Path(".env")))
    config = _config()
    for line in describe(config):
        print("  " + line)

    async def work(db: Database) -> str | None:
        users = UserService(db, config, AuthStateCache(db, MemoryKV(config.namespace)))
        if await users.has_admin():
            return None
        password = secrets.token_urlsafe(12)
        await users.create(
            NewAccount("admin@sonora.local", "admin", password, "Admin"), role="admin"
        )
        note = Path(config.data_dir) / "initial-admin.txt"
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(f"username: admin\npassword: {password}\n")
        note.chmod(0o600)
        return password

    password = asyncio.run(_with_db(config, work))
    if password:
        print(f"First admin created: username 'admin', password '{password}'"
              f" (also in {config.data_dir}/initial-admin.txt)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import a folder of audio files (copied into the media store, or left in place)."""
    from pathlib import Path

    from app.cli.context import catalog_context
    from app.cli.importer import Importer, report

    config = _config()
    root = Path(args.path)
    if not root.is_dir():
        print(f"sonora: {root} is not a folder", file=sys.stderr)
        return 2

    async def run() -> Any:
        async with catalog_context(config) as ctx:
            return await Importer(ctx.ingest, in_place=args.in_place).run(root)

    summary = asyncio.run(run())
    report(summary)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Fill an empty instance with the generated demo library and a demo listener."""
    from app.cli.context import catalog_context
    from app.cli.demo import DEMO_USER, fill_demo
    from app.cli.importer import report

    config = _config()

    async def run() -> Any:
        async with catalog_context(config) as ctx:
            return await fill_demo(ctx, seconds=args.seconds)

    summary, password = asyncio.run(run())
    if summary is None:
        print("the catalogue is not empty: demo library skipped")
    else:
        report(summary)
    if password:
        print(f"Demo listener created: username '{DEMO_USER}', password '{password}'"
              f" (also in {config.data_dir}/demo-listener.txt)")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    """Rebuild the search index from MySQL into a fresh one, then swap it in (safe while the
    worker runs; see app/adapters/search/embedded.py and meili.py for how each backend swaps)."""
    import time

    from app.adapters.search import make_search
    from app.adapters.search.port import SearchUnavailable
    from app.cli.context import catalog_context
    from app.services.indexer import Indexer

    config = _config()
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        print(f"\rindexing [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
              end="", flush=True)

    async def run() -> int:
        async with catalog_context(config) as ctx:
            backend = make_search(config)
            await backend.start()
            try:
                return await Indexer(ctx.db, backend).reindex(progress)
            finally:
                await backend.close()

    try:
        count = asyncio.run(run())
    except SearchUnavailable as exc:
        print(f"\nsonora: {exc.message}", file=sys.stderr)
        return 1
    print(f"\nindexed {count} documents in {time.monotonic() - started:.1f} s")
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    if args.markdown:
        print("| variable | default | what it does |\n|---|---|---|")
        for name, default, help_text in settings_help():
            print(f"| `{name}` | `{default}` | {help_text} |" if default else f"| `{name}` | | {help_text} |")
        return 0
    for name, default, help_text in settings_help():
        print(f"# {help_text}\n{name}={default}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="Sonora music server")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the web server")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("run", help="demo data on first start, the worker (with a broker) and serve")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--no-demo", action="store_true", help="do not fill an empty instance")
    p.add_argument("--demo-seconds", type=float, default=20.0)
    p.set_defaults(func=cmd_run)
    sub.add_parser("worker", help="run the event consumers and the outbox relay (needs SONORA_AMQP_URL)"
                   ).set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="apply sql/ migrations").set_defaults(func=cmd_migrate)
    p = sub.add_parser("create-user", help="create an account")
    p.add_argument("--email", required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--password")
    p.add_argument("--display-name")
    p.add_argument("--admin", action="store_true")
    p.set_defaults(func=cmd_create_user)
    p = sub.add_parser("reset-password", help="set a new password for an account")
    p.add_argument("--username", required=True)
    p.add_argument("--password")
    p.set_defaults(func=cmd_reset_password)
    p = sub.add_parser("import", help="import a folder of audio files")
    p.add_argument("path")
    p.add_argument("--in-place", action="store_true",
                   help="leave the files where they are; a re-run picks up new, changed, moved"
                        " and removed files (changed and moved files keep their songs)")
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("demo", help="fill an empty instance with a demo library and listener")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each demo song")
    p.set_defaults(func=cmd_demo)
    sub.add_parser("bootstrap", help="write .env from local services, migrate, make the first admin"
                   ).set_defaults(func=cmd_bootstrap)
    sub.add_parser("reindex", help="rebuild the search index from MySQL (safe while the worker runs)"
                   ).set_defaults(func=cmd_reindex)
    p = sub.add_parser("settings", help="print every setting with its default")
    p.add_argument("--markdown", action="store_true", help="as the README's table")
    p.set_defaults(func=cmd_settings)
    args = parser.parse_args(argv)
    try:
        config_level = load_config().log_level
    except ConfigError:
        config_level = "INFO"
    _setup_logging(config_level)
    try:
        return int(args.func(args))
    except (ConfigError, DatabaseUnavailable) as exc:
        print(f"sonora: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
