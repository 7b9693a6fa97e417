"""The core's database: the connection (``connection``) and the one migration registry
(``migrations``). ``from cloud_core.store import Store, open_store`` is the way in.

``Conn`` is the type storage and rule functions take for "a connection inside a
transaction". Write SQL that both backends run (see docs/architecture.md "Storage"):
``?`` placeholders, ``INSERT ... ON CONFLICT``, ``RETURNING``, rows read by column name,
times computed in Python, no SQLite-only functions.
"""

import sqlite3

from cloud_core.store.connection import Store, open_store

Conn = sqlite3.Connection

__all__ = ["Conn", "Store", "open_store"]
