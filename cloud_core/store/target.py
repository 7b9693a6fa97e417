"""Where the core's data lives: a SQLite file (the default) or a PostgreSQL schema.

``database:`` in the core config is a path (SQLite) or a ``postgresql://`` URL; with a
URL the mall's tables live in one schema of that database (``database_schema``, by default
``mall_<mall id>``) and every connection's ``search_path`` is fixed to it, so several malls
share one PostgreSQL without any query reaching another mall's rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"
URL_PREFIXES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class PgTarget:
    """A PostgreSQL database (libpq URL) and the schema holding one mall's tables."""

    url: str = field(repr=False)
    schema: str

    def __post_init__(self) -> None:
        if not self.url.startswith(URL_PREFIXES):
            raise ValueError("a PostgreSQL database is a postgresql:// URL")
        from psycopg.conninfo import conninfo_to_dict

        try:
            conninfo_to_dict(self.url)
        except Exception as exc:  # psycopg.ProgrammingError: names the bad part
            raise ValueError(f"not a valid PostgreSQL URL: {redact(str(exc))}") from None
        if not re.match(SCHEMA_PATTERN, self.schema):
            raise ValueError(
                f"schema {self.schema!r} is not a plain lower-case PostgreSQL name"
                " (letters, digits, _; at most 63)"
            )

    def __str__(self) -> str:  # never the password: for logs and messages
        return f"{redact(self.url)} (schema {self.schema})"


DatabaseTarget = Path | PgTarget


def is_postgres_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(URL_PREFIXES)


def schema_for_mall(mall: str) -> str:
    """The default schema of a mall: ``mall_`` and its id with ``-`` as ``_``."""
    return "mall_" + mall.lower().replace("-", "_")


def redact(url: str) -> str:
    """The URL without its password (``postgresql://user:***@host/db``)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def with_pg_target(data: object) -> object:
    """Config data whose ``database`` is a ``postgresql://`` URL, with it turned into a
    ``PgTarget``'s fields (the schema: ``database_schema``, else the mall's default)."""
    if not isinstance(data, dict) or not is_postgres_url(data.get("database")):
        return data
    schema = data.get("database_schema")  # a bad one is reported at its own line
    if not isinstance(schema, str) or not re.match(SCHEMA_PATTERN, schema):
        schema = schema_for_mall(str(data.get("mall", "")))
    return {**data, "database": {"url": data["database"], "schema": schema}}
