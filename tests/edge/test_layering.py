"""The edge depends on the generated code and grpc only: it never imports the server or the tests."""

from __future__ import annotations

import ast
import pathlib

import edge

EDGE = pathlib.Path(edge.__file__).parent


def _imported_roots(path: pathlib.Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_edge_never_imports_the_server_or_the_tests() -> None:
    modules = sorted(EDGE.glob("*.py"))
    assert len(modules) >= 9
    offenders = {p.name: bad for p in modules if (bad := _imported_roots(p) & {"server", "tests", "devstack"})}
    assert offenders == {}
    assert "dooor" in _imported_roots(EDGE / "main.py")  # the check sees real imports
