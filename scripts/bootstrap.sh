#!/usr/bin/env bash
# Install what mallnet needs on a fresh Debian/Ubuntu machine, then the Python
# environment (.venv, from uv.lock). Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# System packages: the broker, the time-series server, zbar for QR codes, the
# DejaVu fonts synthetic plate images are drawn with (tests, bench),
# D-Bus (mock BlueZ in tests) and the headers dbus-python builds against,
# Mesa's GL/EGL (the kiosk's Kivy window, also offscreen in tests), PostgreSQL (the
# optional backend: tests start a throwaway cluster) and Chromium (the web pages' tests,
# driven by Playwright's Python package; its own browser download cannot work offline).
# debootstrap and systemd-container: the Ansible host tests (tests/deploy) boot a Debian root with them.
APT_PACKAGES=(
  mosquitto mosquitto-clients victoria-metrics libzbar0 openssl
  dbus libdbus-1-dev libglib2.0-dev pkg-config python3-venv
  fonts-dejavu-core
  libgl1-mesa-dri libegl1 libgles2
  postgresql chromium
  debootstrap systemd-container
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bootstrap: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# uv, pinned, in a private tool venv when the machine has none (never touches system Python).
UV_VERSION=0.13.9
if command -v uv >/dev/null 2>&1; then
  UV=$(command -v uv)
else
  if [ ! -x .tools/bin/uv ]; then
    python3 -m venv .tools
    .tools/bin/pip install -q "uv==${UV_VERSION}"
  fi
  UV=$PWD/.tools/bin/uv
fi
# Use the system trust store (proxies with a private CA work as on the rest of the machine).
export UV UV_PYTHON_DOWNLOADS=never UV_SYSTEM_CERTS=${UV_SYSTEM_CERTS:-1}
"$UV" sync --frozen --all-extras --quiet
