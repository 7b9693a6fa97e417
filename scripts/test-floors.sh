#!/usr/bin/env bash
# The dependency floors in pyproject.toml are true: every direct dependency resolved at the
# lowest version it allows (uv's `--resolution lowest-direct`) into .venv-floors/, then every
# module imported and a smoke subset of the tests run that touches each dependency
# (pydantic, PyYAML, paho + Mosquitto, sqlite-utils migrations, FastAPI/uvicorn/httpx,
# phonenumbers, influxdb-client, prometheus-client, jinja2 (the panel), bleak on mock BlueZ, pyzbar/Pillow,
# OpenCV/rapidocr/onnxruntime, kivy, schemathesis, ansible-core + ansible-lint, aiosmtpd (the mailing
# tests' SMTP server)). scripts/test.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-$(command -v uv || echo "$PWD/.tools/bin/uv")}
VENV=.venv-floors
req=$(mktemp)
trap 'rm -f "$req"' EXIT
"$UV" pip compile --quiet pyproject.toml --all-extras --resolution lowest-direct \
  --python .venv/bin/python --no-header --no-annotate --output-file "$req"
[ -x "$VENV/bin/python" ] || "$UV" venv --quiet --python .venv/bin/python "$VENV"
"$UV" pip sync --quiet --python "$VENV/bin/python" "$req"
"$UV" pip install --quiet --no-deps --python "$VENV/bin/python" -e .
echo "floors (lowest-direct): $(grep -iE '^(pydantic|paho-mqtt|pyyaml|bleak|sqlite-utils|fastapi|uvicorn|rapidocr|onnxruntime|kivy)==' "$req" | tr '\n' ' ')"
KIVY_NO_ARGS=1 KIVY_NO_CONSOLELOG=1 KIVY_HOME="$PWD/$VENV/kivy-home" "$VENV/bin/python" -c "import kivy"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider -o timeout=300 \
  tests/test_imports.py \
  tests/mallnet/test_config.py tests/mallnet/test_wire_codec.py tests/mallnet/test_cli_errors.py \
  tests/cloud_core/test_migrations.py tests/cloud_core/test_customers.py \
  tests/cloud_core/test_telemetry.py tests/cloud_core/test_api.py tests/cloud_core/test_api_contract.py \
  tests/cloud_core/test_metrics.py tests/cloud_core/test_panel.py tests/cloud_core/test_postgres.py \
  tests/cloud_core/test_mailings.py \
  tests/edge_node/test_outbox.py tests/edge_node/test_bleak_bluez.py \
  tests/kiosk/test_scanner.py tests/edge_node/test_camera_reader.py \
  tests/deploy/test_ansible_lint.py
