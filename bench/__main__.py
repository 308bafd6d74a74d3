"""`python -m bench [group ...]`: run the row groups, print the table, write docs/benchmarks.md.

A group is a module `bench.<name>` with `rows(ctx) -> list[Row]`; groups listed in GROUPS that do
not exist yet are skipped, so a new one (e.g. `bench/catalog.py`) is picked up by adding it there.
"""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import time
import traceback

from bench.common import ROOT, Context, Row, ensure_tools, machine, raise_fd_limit

GROUPS = ["streaming", "catalog", "playlists", "search", "accounts", "subsonic", "scale"]
HEADER = ["what", "reference", "measured", "ratio", "target", "met?"]


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    wanted = argv or GROUPS
    ensure_tools()
    limit = raise_fd_limit()
    ctx = Context()
    rows: list[Row] = []
    failed: list[str] = []
    started = time.monotonic()
    try:
        for name in wanted:
            try:
                module = importlib.import_module(f"bench.{name}")
            except ModuleNotFoundError as exc:
                if exc.name == f"bench.{name}":
                    continue
                raise
            print(f"== {name}", flush=True)
            try:
                got = module.rows(ctx)
            except Exception:  # noqa: BLE001 - one broken group must not lose the others' rows
                traceback.print_exc()
                failed.append(name)
                continue
            rows.extend(got)
            print(table(got), flush=True)
    finally:
        ctx.close()
    facts = machine()
    text = "\n".join([
        "# Benchmarks",
        "",
        f"Written by `make bench` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC in "
        f"{time.monotonic() - started:.0f} s: {facts['nproc']} cores ({facts['cpu']}), "
        f"Python {facts['python']}, open-file limit {limit}.",
        "",
        "Figures are ratios against references measured in the same run (nginx with one worker, "
        "`sendfile on`, `tcp_nopush off`; aiohttp's `FileResponse`; the pure-Python twin), because "
        "these machines are shared and noisy: compare the ratio column, not absolute figures "
        "across runs. Everything runs on 127.0.0.1, with wrk on the same cores as the servers.",
        "",
        table(rows),
        "",
        *( [f"Groups that failed in this run: {', '.join(failed)}.", ""] if failed else []),
    ])
    out = ROOT / "docs" / "benchmarks.md"
    notes = ROOT / "bench" / "notes.md"  # the analysis, kept beside the code that measures
    if notes.exists():
        text += "\n" + notes.read_text()
    out.write_text(text)
    print()
    print(table(rows))
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
