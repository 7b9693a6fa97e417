"""Every module of every part imports with what its extras install (no module reaches for a
device, a network or an optional platform package at import time). The dependency-floor
check (scripts/test-floors.sh) runs this against the lowest versions pyproject.toml allows."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

PACKAGES = ("mallnet", "edge_node", "cloud_core", "kiosk", "mqtt_broker", "firmware_config")


def _modules() -> list[str]:
    found = []
    for top in PACKAGES:
        package = importlib.import_module(top)
        found.append(top)
        found += [m.name for m in pkgutil.walk_packages(package.__path__, f"{top}.")]
    return found


@pytest.mark.parametrize("module", _modules())
def test_every_module_imports(module):
    importlib.import_module(module)
