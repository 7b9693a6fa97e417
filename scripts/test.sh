#!/usr/bin/env bash
# The README's second command: every check and test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
run() { "$UV" run --frozen "$@"; }
echo "== ruff" && run ruff check . && run ruff format --check .
echo "== mypy" && run mypy
echo "== import rule" && run lint-imports
echo "== pytest" && run pytest "$@"
