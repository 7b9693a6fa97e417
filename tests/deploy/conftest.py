"""Deployment tests. The host tests need root, systemd-nspawn and debootstrap; elsewhere they
are skipped with the reason (in the report header and in the skip line)."""

from __future__ import annotations

import pytest

from tests.deploy.testhost import missing_requirements


def pytest_report_header() -> str:
    reasons = missing_requirements()
    if reasons:
        return f"deploy host tests: SKIPPED here ({', '.join(reasons)})"
    return "deploy host tests: enabled (root, systemd-nspawn and debootstrap present)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reasons = missing_requirements()
    if not reasons:
        return
    skip = pytest.mark.skip(
        reason=f"host test needs root, systemd-nspawn and debootstrap: {', '.join(reasons)}"
    )
    for item in items:
        if "testhost" in item.keywords:
            item.add_marker(skip)
