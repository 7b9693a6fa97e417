"""The shared package's one exception hierarchy.

Callers branch on these types; third-party errors (pydantic, paho, YAML) are
translated at the adapter that meets them.
"""

from __future__ import annotations


class MallnetError(Exception):
    """Base of every error raised by ``mallnet``."""


class ConfigError(MallnetError):
    """A configuration file is missing, unreadable or invalid.

    ``problems`` lists one human-readable line per fault, each naming the file
    and line when it is known (``node.yaml:12: presence.radius_m: ...``).
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        detail = "\n".join(self.problems)
        super().__init__(f"{message}\n{detail}" if detail else message)


class MqttError(MallnetError):
    """The MQTT client could not connect, publish or subscribe."""


class FrameError(MallnetError):
    """A frame source cannot be opened or read (a missing file, a corrupt image, no camera)."""
