#!/usr/bin/env bash
# The README's second command: every check and test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
run() { "$UV" run --frozen "$@"; }
echo "== ruff" && run ruff check . && run ruff format --check .
echo "== mypy" && run mypy
echo "== import rule" && run lint-imports
# The dependency floors in pyproject.toml, proved at their lowest versions (~80 s warm);
# skipped when pytest is given arguments (a targeted run).
if [ $# -eq 0 ]; then echo "== dependency floors" && ./scripts/test-floors.sh; fi
echo "== pytest" && run pytest "$@"
