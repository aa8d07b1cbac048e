#!/usr/bin/env bash
# What `make run` needs to serve https://127.0.0.1:8443, made once: a self-signed certificate
# for localhost and 127.0.0.1 (ECDSA P-256, valid a year) and the server block that uses it,
# in DIR (default conf/tls, which conf/porter.conf includes as tls/*.conf):
#   DIR/localhost.crt  DIR/localhost.key  DIR/https.conf
# Nothing is overwritten; delete DIR to start again. DIR is never committed.
set -euo pipefail

dir=${1:-conf/tls}
crt=$dir/localhost.crt
key=$dir/localhost.key
conf=$dir/https.conf

mkdir -p "$dir"
if ! { [ -s "$crt" ] && [ -s "$key" ]; }; then
    command -v openssl >/dev/null 2>&1 || { echo "make-cert: the openssl command is missing" >&2; exit 1; }
    (
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
            -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
            -keyout "$key.tmp" -out "$crt.tmp" 2>/dev/null
    )
    chmod 644 "$crt.tmp"
    mv "$key.tmp" "$key"
    mv "$crt.tmp" "$crt"
    echo "make-cert: made a self-signed certificate for localhost in $dir/ (browsers will warn)"
fi

if [ ! -s "$conf" ]; then
    # Paths in it start from the prefix (the directory porter runs in), like every path.
    cat >"$conf" <<CONF
# Written by scripts/make-cert.sh: htdocs/ over TLS with the self-signed certificate beside
# this file. The defaults (TLS 1.2 and 1.3, forward-secret AEAD ciphers, session tickets with
# keys rotated hourly) need no directive; docs/tls.md lists them.
server {
    listen 127.0.0.1:8443 ssl http2;
    server_name localhost;

    ssl_certificate $crt;
    ssl_certificate_key $key;

    root htdocs;
    index index.html;

    access_log stderr;
}
CONF
fi
