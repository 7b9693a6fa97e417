"""``mallnet diagnose``: a report to paste into a support ticket, with secrets redacted.

It tells the mallnet version, Python and platform, which parts are installed,
which system tools are present, and — given config files — whether they
validate, with every secret, phone number and MAC address masked.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Any

from mallnet import __version__
from mallnet.config import parse_yaml, read_text_file
from mallnet.errors import ConfigError
from mallnet.logs import redact

_TOOLS = ("mosquitto", "mosquitto_passwd", "victoria-metrics", "zbarimg", "bluetoothctl")
_PACKAGES = ("pydantic", "paho-mqtt", "bleak", "fastapi", "sqlite-utils", "kivy", "rapidocr")
_SECRET_KEYS = ("password", "secret", "token", "key", "api_keys")


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: ("***" if any(s in str(k).lower() for s in _SECRET_KEYS) else _mask(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def _pkg_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def build_report(configs: list[Path]) -> dict[str, Any]:
    parts = {}
    for ep in entry_points(group="mallnet.commands"):
        try:
            ep.load()
            parts[ep.name] = "installed"
        except ImportError as exc:
            parts[ep.name] = f"not installed ({exc.name})"
    report: dict[str, Any] = {
        "mallnet": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "parts": parts,
        "packages": {name: _pkg_version(name) for name in _PACKAGES},
        "tools": {tool: shutil.which(tool) or shutil.which(f"/usr/sbin/{tool}") for tool in _TOOLS},
        "configs": {},
    }
    for path in configs:
        try:
            data, _lines = parse_yaml(read_text_file(path), str(path))
            report["configs"][str(path)] = {"parsed": True, "content": _mask(data)}
        except (OSError, ConfigError) as exc:
            report["configs"][str(path)] = {"parsed": False, "error": redact(str(exc))}
    return report


def render(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True, default=str) + "\n"
