"""Optional filters of a read query: each ``add`` that has all its values becomes one
``AND``-ed condition, with its parameters in order; one that has a ``None`` is left out.

    where = Filters().add("business = ?", business).add("ts >= ?", since_iso)
    conn.execute(f"SELECT … FROM t{where.sql} ORDER BY id", where.params)
"""

from __future__ import annotations

from typing import Self


class Filters:
    def __init__(self) -> None:
        self._clauses: list[str] = []
        self.params: list[object] = []

    def add(self, clause: str, *params: object) -> Self:
        """Add ``clause`` (with ``?`` for each param) unless a param is ``None``."""
        if all(p is not None for p in params):
            self._clauses.append(clause)
            self.params.extend(params)
        return self

    @property
    def sql(self) -> str:
        """`` WHERE a AND b`` (with a leading space), or nothing when no filter applies."""
        return f" WHERE {' AND '.join(self._clauses)}" if self._clauses else ""
