#!/usr/bin/env bash
# Real, openly licensed car photos for bench/anpr.py and the reader's tests (full set, git-ignored).
#
# Source: "Car License Plate Detection" (andrewmvd, CC0 1.0), as copied into
# github.com/yoavmai/Car-license-plate-detection at commit 8c56aa962b50b7e813df9fbc4c9c4de5de826761.
# Plate text: bench/data/plate_photos.tsv (transcribed for this project). Details: bench/plate_photos.py.
#
# Usage: scripts/fetch-plate-photos.sh [EXISTING_CLONE_OR_MIRROR]   → var/plate-photos/
set -euo pipefail
cd "$(dirname "$0")/.."
repo="${1:-}"
if [[ -z "$repo" ]]; then
    repo="var/src/car-license-plate-detection"
    if [[ ! -d "$repo" ]]; then
        git clone --quiet --filter=blob:none --no-checkout \
            https://github.com/yoavmai/Car-license-plate-detection "$repo"
    fi
fi
PY=.venv/bin/python
[[ -x "$PY" ]] || PY=python3
"$PY" bench/plate_photos.py prepare "$repo" --out var/plate-photos
