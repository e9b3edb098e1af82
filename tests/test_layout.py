"""The house keeps its shape: dependencies point one way, downwards.

Read from the source with `ast` (every import, at module level or inside a function), so a
test fails the moment a module reaches into a layer above it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEB = ("api", "fastapi", "starlette", "uvicorn")
TIMELINE_MAY_IMPORT = {"roomctl.room", "roomctl.curves", "roomctl.preset", "roomctl.events", "roomctl.units"}
# What drivers may know of: the value types, curves, units, clocks, playlists (music) and each other.
DRIVERS_MAY_IMPORT = ("roomctl.room", "roomctl.curves", "roomctl.units", "roomctl.clock",
                      "roomctl.playlists", "roomctl.drivers")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(package: str) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


ALL = {**modules("roomctl"), **modules("api"), **modules("testkit")}


def imports(path: Path) -> Iterator[tuple[str, bool]]:
    """(imported module, at module level?) for every import in the file; ``from a import b``
    names ``a.b`` when that is a module of ours, else ``a``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield (full if full in ALL else node.module), id(node) in top


def is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


ENGINE = [m for m in ALL if is_under(m, "roomctl") and not is_under(m, "roomctl.cli")]


@pytest.mark.parametrize("module", ENGINE)
def test_the_engine_knows_nothing_of_the_web_or_the_test_kit(module: str) -> None:
    bad = [name for name, _ in imports(ALL[module])
           if any(is_under(name, w) for w in (*WEB, "testkit"))]
    assert not bad, f"{module} imports {bad}: only roomctl.cli may bring engine and web together"


def test_the_timeline_is_pure() -> None:
    ours = {name for name, _ in imports(ALL["roomctl.timeline"]) if is_under(name, "roomctl")}
    assert ours <= TIMELINE_MAY_IMPORT, f"roomctl.timeline imports {sorted(ours - TIMELINE_MAY_IMPORT)}"


@pytest.mark.parametrize("module", [m for m in ENGINE if is_under(m, "roomctl.drivers")])
def test_drivers_know_nothing_of_sessions(module: str) -> None:
    bad = [name for name, _ in imports(ALL[module]) if is_under(name, "roomctl")
           and not any(is_under(name, ok) for ok in DRIVERS_MAY_IMPORT)]
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", [m for m in ALL if not is_under(m, "testkit")])
def test_no_import_of_ours_hides_inside_a_function(module: str) -> None:
    hidden = [name for name, top in imports(ALL[module]) if not top
              and any(is_under(name, ours) for ours in ("roomctl", "api"))]
    assert not hidden, f"{module} imports {hidden} inside a function (a hidden cycle?)"


def test_the_web_layer_does_not_reach_into_the_commands() -> None:
    bad = {m: n for m in ALL if is_under(m, "api")
           for n, _ in imports(ALL[m]) if is_under(n, "roomctl.cli")}
    assert not bad


def test_there_are_no_import_cycles() -> None:
    graph = {m: {n for n, _ in imports(p) if n in ALL and n != m} for m, p in ALL.items()}
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> None:
        if m in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(m):], m]))
        if m in done:
            return
        for n in sorted(graph[m]):
            visit(n, [*path, m])
        done.add(m)

    for m in sorted(graph):
        visit(m, [])


def test_the_check_itself_sees_imports() -> None:
    """The checks above would pass on an empty graph; make sure they read real imports."""
    service = {n for n, _ in imports(ALL["roomctl.service"])}
    assert "roomctl.session" in service and "roomctl.drivers.hue" in service
    assert any(is_under(n, "api") for n, _ in imports(ALL["roomctl.cli.serve"]))
