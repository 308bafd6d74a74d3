"""Command line: python -m app serve|worker|migrate|create-user|reset-password|repair-counts|
settings (and the rest `--help` lists)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from app.config import Config, ConfigError, ensure_secret, load_config, settings_help
from app.repos.db import DatabaseUnavailable

if TYPE_CHECKING:
    from app.container import Services

T = TypeVar("T")


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


def _run(config: Config, work: Callable[[Services], Awaitable[T]], *, search: bool = False) -> T:
    """Run `work` over the command's services (app/cli/context.py: migrated database, configured
    store and, with `search`, the search backend), all closed after it."""
    from app.cli.context import catalog_context

    async def run() -> T:
        async with catalog_context(config, search=search) as services:
            return await work(services)

    return asyncio.run(run())


def _failed(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


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
    from app.repos.db import database_context
    from app.repos.migrate import migrate

    config = _config()

    async def run() -> list[str]:
        async with database_context(config.database_url, maxsize=2, migrate=False) as db:
            return await migrate(db)

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
    from app.errors import AppError
    from app.services.users import parse_new_account

    config = _config()
    password = _password(args.password)

    async def work(services: Services) -> dict[str, Any]:
        account = parse_new_account({"email": args.email, "username": args.username,
                                     "password": password, "display_name": args.display_name})
        return await services.users.create(account, role="admin" if args.admin else "member")

    try:
        user = _run(config, work)
    except AppError as exc:
        return _failed(f"error: {exc.message}" + (f" {exc.details}" if exc.details else ""))
    print(f"created {user['role']} {user['username']} (id {user['id']})")
    return 0


def cmd_reset_password(args: argparse.Namespace) -> int:
    from app.errors import AppError

    config = _config()
    password = _password(args.password)

    async def work(services: Services) -> dict[str, Any]:
        # Through the configured store: the sessions it ends are forgotten there too.
        return await services.users.reset_password(args.username, password)

    try:
        user = _run(config, work)
    except AppError as exc:
        return _failed(f"error: {exc.message}")
    print(f"password of {user['username']} changed; every session of the account was ended")
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    """What `make run` does before serving: .env, migrations, the first admin."""
    from pathlib import Path

    from app.cli.devsetup import describe, first_admin, write_env

    print(write_env(Path(".env")))
    config = _config()
    for line in describe(config):
        print("  " + line)
    password = _run(config, first_admin)
    if password:
        print(f"First admin created: username 'admin', password '{password}'"
              f" (also in {config.data_dir}/initial-admin.txt)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import a folder of audio files (copied into the media store, or left in place)."""
    from pathlib import Path

    from app.cli.importer import Importer, Summary, report

    config = _config()
    root = Path(args.path)
    if not root.is_dir():
        print(f"sonora: {root} is not a folder", file=sys.stderr)
        return 2

    async def work(services: Services) -> Summary:
        return await Importer(services.ingest, in_place=args.in_place).run(root)

    report(_run(config, work))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Fill an empty instance with the generated demo library and a demo listener."""
    from app.cli.demo import DEMO_USER, fill_demo
    from app.cli.importer import report

    config = _config()
    summary, password = _run(config, lambda services: fill_demo(services, seconds=args.seconds))
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

    from app.adapters.search.port import SearchUnavailable

    config = _config()
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        print(f"\rindexing [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
              end="", flush=True)

    try:
        count = _run(config, lambda services: services.indexer.reindex(progress), search=True)
    except SearchUnavailable as exc:
        return _failed(f"\nsonora: {exc.message}")
    print(f"\nindexed {count} documents in {time.monotonic() - started:.1f} s")
    return 0


def cmd_repair_counts(args: argparse.Namespace) -> int:
    """Recompute every maintained count and sum (an album's songs and duration, an artist's
    albums and songs, the library totals, songs per genre and year) from the rows."""
    fixed = _run(_config(), lambda services: services.catalog.repair_counts())
    for figure, rows in fixed.items():
        print(f"{figure}: {rows} row(s) corrected")
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
    sub.add_parser("repair-counts", help="recompute the catalogue's maintained counts and sums"
                   " from the rows").set_defaults(func=cmd_repair_counts)
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
