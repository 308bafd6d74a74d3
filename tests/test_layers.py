"""The layers (README, Architecture): imports go one way, aiohttp stays in the web layer, SQL stays in
the repositories. Read from the source, so a misplaced import or query fails here, not in review."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"
ROUTE_PACKAGES = ("app.web.api", "app.web.pages")
# Outside app/web/, only the web composition root may import aiohttp: it builds the application.
AIOHTTP_OUTSIDE_WEB = {"app.main"}
# A statement, not prose: the keyword is upper case and followed by what makes it SQL.
SQL = re.compile(r"^\s*(SELECT\b.*\bFROM\b|SELECT\s+\d|INSERT\s+INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b"
                 r"|REPLACE\s+INTO\b)", re.S)
# Below the web layer nothing imports it (nor the composition root or the command line).
LOWER_LAYERS = ("app.services", "app.repos", "app.adapters", "app.media", "app.events")
UPPER = ("app.web", "app.main", "app.cli")


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(APP.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def imported(tree: ast.Module) -> set[str]:
    """Every module an import statement names, anywhere in the file (function-level ones too)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def within(name: str, packages: tuple[str, ...] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def is_route_module(name: str) -> bool:
    return within(name, ROUTE_PACKAGES) and not name.endswith("__init__") and name not in (
        "app.web.api", "app.web.pages", "app.web.pages.admin")


def test_the_scan_sees_the_layers() -> None:
    found = modules()
    assert {"app.main", "app.web.render", "app.web.api.songs", "app.web.pages.admin.audit",
            "app.repos.db", "app.events.outbox"} <= set(found)
    assert "app.web.render" in imported(found["app.web.pages.admin.audit"])


def test_no_route_module_imports_another() -> None:
    found = modules()
    routes = {name for name in found if is_route_module(name)}
    assert len(routes) >= 15
    crossings = sorted(
        f"{name} imports {other}"
        for name in routes for other in imported(found[name])
        if other in routes and other != name
    )
    assert crossings == [], "route modules share code through app/web helpers, not each other"


def test_aiohttp_is_imported_only_in_the_web_layer() -> None:
    found = modules()
    outside = sorted(
        name for name, tree in found.items()
        if not within(name, ("app.web",)) and name not in AIOHTTP_OUTSIDE_WEB
        and any(within(m, ("aiohttp",)) for m in imported(tree))
    )
    assert outside == []
    assert any(within(m, ("aiohttp",)) for m in imported(found["app.web.params"]))


def test_lower_layers_do_not_import_the_web_layer() -> None:
    found = modules()
    upward = sorted(
        f"{name} imports {other}"
        for name, tree in found.items() if within(name, LOWER_LAYERS)
        for other in imported(tree) if within(other, UPPER)
    )
    assert upward == []


def sql_strings(tree: ast.Module) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            text = str(node.values[0].value)
        if text is not None and SQL.match(text):
            found.append((node.lineno, text.strip()[:60]))
    return sorted(set(found))  # an f-string's first part is walked on its own too


def test_the_sql_pattern_tells_statements_from_prose() -> None:
    tree = ast.parse('a = "SELECT id FROM songs"\nb = f"UPDATE outbox SET x = {1}"\n'
                     'c = "Delete a song; returns its file row"\nd = "INSERT INTO t VALUES (1)"\n'
                     'e = "Select what to show from the list"\n')
    assert [line for line, _ in sql_strings(tree)] == [1, 2, 4]


def test_sql_lives_in_the_repositories() -> None:
    found = modules()
    outside = sorted(
        f"{name}:{line}: {text}"
        for name, tree in found.items() if not within(name, ("app.repos",))
        for line, text in sql_strings(tree)
    )
    assert outside == []
    assert sql_strings(found["app.repos.outbox"])


# The composition root (STYLE 13): services are constructed in app/container.py and nowhere else.
COMPOSITION_ROOT = "app.container"
SERVICE_CLASS = re.compile(r"^(?:[A-Z]\w*Service|AuthStateCache)$")


def service_constructions(tree: ast.Module) -> list[tuple[int, str]]:
    """Every call of a name that looks like a service class (`FooService(...)`, `AuthStateCache(...)`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if SERVICE_CLASS.match(name):
                found.append((node.lineno, name))
    return sorted(found)


def test_the_service_pattern_sees_constructions() -> None:
    tree = ast.parse("a = UserService(db)\nb = services.users\nc = x.AuthStateCache(db, kv)\n"
                     "d = ServiceError()\ne = build_services(config, db, kv)\n")
    assert service_constructions(tree) == [(1, "UserService"), (3, "AuthStateCache")]


def test_services_are_constructed_only_in_the_composition_root() -> None:
    found = modules()
    assert service_constructions(found[COMPOSITION_ROOT])
    elsewhere = sorted(
        f"{name}:{line}: {call}(...)"
        for name, tree in found.items()
        if name != COMPOSITION_ROOT
        for line, call in service_constructions(tree)
    )
    assert elsewhere == [], "take services from build_services (app/container.py)"


def repo_reaches(tree: ast.Module) -> list[int]:
    """Lines that reach through a service into its repository (`x.repo.method`, `x.repo`)."""
    return sorted(node.lineno for node in ast.walk(tree)
                  if isinstance(node, ast.Attribute) and node.attr == "repo"
                  and not (isinstance(node.value, ast.Name) and node.value.id == "self"))


def test_the_repo_pattern_sees_reaches() -> None:
    tree = ast.parse("a = ctx.users.repo.by_username(n)\nb = self.repo.get(1)\nc = repo.get(2)\n")
    assert repo_reaches(tree) == [1]


def test_the_upper_layers_call_services_not_their_repositories() -> None:
    """The web layer and the command line go through a service's methods, never its `repo`."""
    reaches = sorted(f"{name}:{line}" for name, tree in modules().items() if within(name, UPPER)
                     for line in repo_reaches(tree))
    assert reaches == [], "add a method on the service instead"
