#!/usr/bin/env bash
# The README's first command: a whole simulated mall on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
exec "$UV" run --frozen mallnet demo "$@"
