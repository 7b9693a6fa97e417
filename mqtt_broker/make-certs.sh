#!/usr/bin/env bash
# Make a private CA and a broker certificate for mallnet's TLS listener.
#   mqtt_broker/make-certs.sh OUT_DIR [BROKER_HOSTNAME]
# Writes ca.crt/ca.key, server.crt/server.key (SAN: the host name, localhost,
# 127.0.0.1) and, for negative tests, rogue-ca.crt: a CA that signed nothing.
# Keys are created mode 0600. Never commit OUT_DIR.
set -euo pipefail
out=${1:?usage: make-certs.sh OUT_DIR [BROKER_HOSTNAME]}
host=${2:-localhost}
mkdir -p "$out"
cd "$out"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mallnet CA" \
  -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=$host" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$host" > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
  -extfile server.ext -out server.crt 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=rogue CA" \
  -keyout rogue-ca.key -out rogue-ca.crt 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 644 ca.crt server.crt rogue-ca.crt
