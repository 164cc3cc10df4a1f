"""The import rules of docs/architecture.md, checked on the source: which room may import which.

A room is a folder of server/ (api, metrics, logs, alerts, notify, store, cli, cluster) or one of the shared
modules. The arrows point one way: api → capabilities (metrics, logs, alerts) → store and the shared kernel;
the edge and the development helpers never reach into the server's or the tests' code.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

KERNEL = {
    "server.errors",
    "server.convert",
    "server.states",
    "server.validation",
    "server.backend_body",
    "server.ids",
}
# Pure knowledge of three rooms that server/config.py reads its defaults and types from (the one exception to
# "config imports no room"): they import only the kernel and the store's records, never the config back.
KNOWLEDGE = {"server.metrics.promql", "server.alerts.thresholds", "server.logs.logql"}

# room → the rooms it may import (besides itself and anything outside server/).
ALLOWED: dict[str, set[str]] = {
    "kernel": {"kernel"},
    "store": {"kernel"},
    "config": {"kernel"},
    "metrics": {"kernel", "store", "config"},
    "logs": {"kernel", "store", "config"},
    "alerts": {"kernel", "store", "config", "metrics"},
    "cluster": {"kernel", "store"},
    "notify": {"kernel", "store", "config", "alerts"},
    "api": {"kernel", "store", "config", "alerts", "cluster", "notify"},
    "cli": {"kernel"},
    "main": {"kernel", "store", "config", "metrics", "logs", "alerts", "api", "cluster", "notify"},
}
# Where a command's exit may be decided: its entry point's module.
EXITS = {"server/main.py", "server/cli/admin.py", "edge/main.py"}
# Top-level packages, and the top-level packages they must never import.
FORBIDDEN_ROOTS = {
    "server": {"edge", "tests", "testing", "devstack", "bench"},
    "edge": {"server", "tests", "testing", "devstack", "bench"},
    "envconfig": {"server", "edge", "tests", "testing", "devstack"},
    "jsonmap": {"server", "edge", "tests", "testing", "devstack", "bench"},
    "testing": {"tests", "devstack", "bench"},
    "devstack": {"tests", "bench"},
    "bench": {"tests"},
}


def _module(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    if module in KERNEL:
        return "kernel"
    if module in ("server.config", "server.main"):
        return module.removeprefix("server.")
    parts = module.split(".")
    assert len(parts) >= 2 and parts[0] == "server", module
    return parts[1]


def _imports(path: pathlib.Path) -> set[str]:
    """Absolute module names a file imports; ``from server.api import rpc`` counts as ``server.api.rpc``."""
    found = set()
    for node in ast.walk(_TREES[path]):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _sources(package: str) -> list[pathlib.Path]:
    return sorted((ROOT / package).rglob("*.py"))


# Parsed once, at collection: late in the session, CPython 3.11.7's ast.parse failed here with "SystemError:
# AST constructor recursion depth mismatch" (a known CPython fault, python/cpython#106905).
_TREES = {path: ast.parse(path.read_text()) for package in FORBIDDEN_ROOTS for path in _sources(package)}


def _server_module(name: str) -> str | None:
    """The server module a name refers to (a module, or a name imported from one), or None."""
    while name.startswith("server."):
        if (ROOT / (name.replace(".", "/") + ".py")).exists() or (ROOT / name.replace(".", "/")).is_dir():
            return name
        name = name.rpartition(".")[0]
    return None


def test_every_server_module_has_a_room() -> None:
    rooms = {_room(_module(p)) for p in _sources("server") if _module(p) != "server"}
    assert rooms == set(ALLOWED)


@pytest.mark.parametrize("path", _sources("server"), ids=lambda p: str(p.relative_to(ROOT)))
def test_server_imports_follow_the_arrows(path: pathlib.Path) -> None:
    module = _module(path)
    if module == "server":
        return
    room = _room(module)
    wrong = set()
    for name in _imports(path):
        target = _server_module(name)
        if target is None or target in ("server", f"server.{room}"):
            continue
        target_room = _room(target)
        if module in KNOWLEDGE:
            allowed = target_room == "kernel" or target == "server.store.records"
        elif room == "config":
            allowed = target_room == "kernel" or target in KNOWLEDGE
        else:
            allowed = target_room == room or target_room in ALLOWED[room]
        if not allowed:
            wrong.add(f"{name} ({target_room})")
    assert not wrong, f"{module} ({room}) may import only {sorted(ALLOWED[room])}"


@pytest.mark.parametrize("package", ["server", "edge", "envconfig"])
def test_only_entry_points_exit_and_only_envconfig_reads_the_environment(package: str) -> None:
    exits, environment = [], []
    for path in _sources(package):
        name = str(path.relative_to(ROOT))
        for node in ast.walk(_TREES[path]):
            if (isinstance(node, ast.Name) and node.id == "SystemExit") or _is_call(node, "sys", "exit"):
                exits.append(name)
            if isinstance(node, ast.Attribute) and node.attr == "environ":
                environment.append(name)
    assert set(exits) <= EXITS
    # edge/__init__.py reads no setting: it gives gRPC's own GRPC_EXPERIMENTS to grpc's import (docs/edge.md).
    assert set(environment) <= {"envconfig/__init__.py", "server/cli/admin.py", "edge/__init__.py"}


def _is_call(node: ast.AST, owner: str, attribute: str) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == attribute
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == owner
    )


@pytest.mark.parametrize("package", sorted(FORBIDDEN_ROOTS))
def test_packages_never_import_what_is_below_or_beside_them(package: str) -> None:
    offenders = {}
    for path in _sources(package):
        roots = {name.split(".")[0] for name in _imports(path)}
        if bad := roots & FORBIDDEN_ROOTS[package]:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_the_checks_see_real_imports() -> None:
    assert "server.api.rpc" in _imports(ROOT / "server/api/monitoring.py")
    assert _room("server.metrics.health") == "metrics" and _room("server.logs.logql") == "logs"
    assert _server_module("server.metrics.promql.Queries") == "server.metrics.promql"
    assert len(_sources("edge")) >= 9
