"""The data folders every install carries: ``mqtt_broker/`` and ``firmware_config/``.

Both are data packages (an ``__init__.py`` beside their files) shipped whole in the
wheel, so ``mallnet broker …``, the demo and ``mallnet edge schema`` find them through
``importlib.resources`` from a checkout, an editable install or a ``pip install
"mallnet[cloud]"`` alike, whatever the working directory.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mallnet.errors import MallnetError

BROKER_PACKAGE = "mqtt_broker"
FIRMWARE_PACKAGE = "firmware_config"


def data_dir(package: str) -> Path:
    """The folder of a data package on disk (pip and uv install wheels unpacked)."""
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        raise MallnetError(f"the {package}/ data is not installed: reinstall mallnet") from None
    if not isinstance(root, Path):  # a zip import: the data is not a folder on disk
        raise MallnetError(f"the {package}/ data is not a folder on disk ({root})")
    return root
