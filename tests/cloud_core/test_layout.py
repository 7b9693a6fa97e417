"""The core's layout keeps its promises (docs/architecture.md): modules stay small, rules
decide (no SQL) without importing each other, routes carry no SQL, and production code reads no
test switch from the environment."""

from __future__ import annotations

import ast
import re
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "cloud_core"
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_no_core_module_is_long_without_saying_why_at_its_top():
    long = [
        str(path.relative_to(CORE))
        for path in modules()
        if len(path.read_text().splitlines()) > MAX_LINES
        and "long:" not in "\n".join(path.read_text().splitlines()[:3])
    ]
    assert long == []


def test_production_code_reads_no_test_switch_from_the_environment():
    # the API keys may come from an operator-named variable (api.keys_env): configuration,
    # not a test hook; nothing else in the core reads the environment
    readers = {
        str(path.relative_to(CORE))
        for path in modules()
        if re.search(r"os\.environ|getenv\(", path.read_text())
    }
    assert readers <= {"api/auth.py"}
    assert not any("MALLNET_CORE_TEST" in path.read_text() for path in modules())


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_rule_modules_share_common_parts_and_never_import_each_other():
    # shared parts: common, credit (the one way to grant) and visit_credit (what a qualifying
    # visit earns, whether a beacon saw it or a kiosk checked the shopper in)
    # and referral (a new shopper's first qualifying visit pays the referrer, however it came)
    shared = {"common", "credit", "visit_credit", "referral"}
    rules = [p for p in (CORE / "rules").glob("*.py") if p.stem not in ("__init__", "common")]
    assert {p.stem for p in rules} >= {"credit", "visits", "parking"}
    for path in rules:
        sideways = {
            name
            for name in _imports(path)
            if name.startswith("cloud_core.rules.") and name.split(".")[2] not in shared
        }
        assert sideways == set(), path.name


def test_the_rules_grant_points_only_through_credit():
    for path in (CORE / "rules").glob("*.py"):
        if path.stem == "credit":
            continue
        assert "ledger.grant" not in path.read_text(), path.name


def test_rules_decide_and_leave_sql_to_the_storage_modules():
    assert [p.name for p in (CORE / "rules").glob("*.py") if ".execute(" in p.read_text()] == []


def test_routes_carry_no_sql():
    sql = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b .*\b(FROM|INTO|SET|WHERE)\b")
    offenders = [
        str(path.relative_to(CORE))
        for path in sorted((CORE / "api").rglob("*.py"))
        if sql.search(path.read_text())
    ]
    assert offenders == []


def test_every_migration_is_in_the_one_registry():
    registered = [
        path.relative_to(CORE)
        for path in modules()
        if re.search(r"^@migrations\(\)", path.read_text(), re.M)
    ]
    assert registered == [Path("store/migrations.py")]
