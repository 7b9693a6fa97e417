"""The edge package keeps the shape docs/architecture.md describes: short modules (or a reason
at the top), and no production code that reads the environment (tests inject what they need)."""

from __future__ import annotations

import ast
from pathlib import Path

import edge_node

PACKAGE = Path(edge_node.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_short_or_says_why_at_its_top():
    for path in MODULES:
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > 400:
            head = (ast.get_docstring(ast.parse("\n".join(lines))) or "").splitlines()[:3]
            assert any("lines" in line for line in head), f"{path}: {len(lines)} lines, no reason"


def test_no_module_reads_the_environment():
    for path in MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: set[str] = set()
            if isinstance(node, ast.Attribute):
                names = {node.attr}
            elif isinstance(node, ast.ImportFrom) and node.module == "os":
                names = {alias.name for alias in node.names}
            if names & {"environ", "environb", "getenv", "getenvb"}:
                raise AssertionError(f"{path}:{getattr(node, 'lineno', 0)}: reads the environment")
