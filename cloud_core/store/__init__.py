"""The core's database: the connection (``connection``) and the one migration registry
(``migrations``). ``from cloud_core.store import Store, open_store`` is the way in."""

from cloud_core.store.connection import Store, open_store

__all__ = ["Store", "open_store"]
