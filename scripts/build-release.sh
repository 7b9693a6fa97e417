#!/usr/bin/env bash
# Build a mallnet release on the controller for nodes that may have no internet:
# the wheel of this checkout plus every dependency as a wheel (a "wheelhouse"), per target
# CPU architecture and per set of extras, so a node installs with `pip --no-index` from
# files Ansible copied to it. Run by ansible/site.yml (role mallnet_build); usable alone:
#
#   scripts/build-release.sh OUT_DIR ARCH EXTRAS...   e.g.  OUT_DIR aarch64 edge
#
# The release id is the package version plus the first 10 hex digits of the wheel's
# SHA-256 (hatchling builds reproducible wheels), so an unchanged checkout is the same
# release and a changed one a new release beside it. Prints `release=ID` and `changed=0|1`.
# Dependencies are the versions pinned in uv.lock; only binary wheels are taken.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OUT_DIR ARCH [EXTRA...]" >&2; exit 2; }
out=$1 arch=$2; shift 2
src=${MALLNET_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
UV=${UV:-$(command -v uv || echo "$src/.tools/bin/uv")}
export UV_PYTHON_DOWNLOADS=never
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$UV" build --quiet --wheel --out-dir "$tmp/dist" "$src" 2>"$tmp/build.log" || { cat "$tmp/build.log" >&2; exit 1; }
wheel=$(ls "$tmp"/dist/mallnet-*.whl)
version=$(basename "$wheel" | cut -d- -f2)
sha=$(sha256sum "$wheel" | cut -c1-10)
release="$version-$sha"
key=$(IFS=,; echo "${*:-base}")
dest="$out/$release/$arch/$key"
echo "release=$release"
if [ -e "$dest/.complete" ]; then echo "changed=0"; exit 0; fi

rm -rf "$dest" && mkdir -p "$dest"
cp "$wheel" "$dest/"
extras=()
for extra in "$@"; do extras+=(--extra "$extra"); done
(cd "$src" && "$UV" export --quiet --frozen --no-hashes --no-emit-project --format requirements-txt \
  "${extras[@]}" -o "$tmp/requirements.txt")
# A throwaway pip (uv has no `download`); it never installs anything here.
"$UV" venv --quiet --seed "$tmp/pip" >/dev/null
platforms=()
for glibc in 2_36 2_35 2_34 2_31 2_28 2_27 2_26 2_24 2_17 2_12 2_5; do
  platforms+=(--platform "manylinux_${glibc}_${arch}")
done
platforms+=(--platform "linux_${arch}")
"$tmp/pip/bin/pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --implementation cp --python-version 3.11 "${platforms[@]}" \
  -r "$tmp/requirements.txt" -d "$dest" 2>"$tmp/pip.log" || { cat "$tmp/pip.log" >&2; exit 1; }
cp "$tmp/requirements.txt" "$dest/requirements.txt"
touch "$dest/.complete"
echo "changed=1"
