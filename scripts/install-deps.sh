#!/usr/bin/env bash
# Installs the Debian packages porter needs, and only those that are missing:
#
#   install-deps.sh run  [PACKAGE...]   what building and running porter needs (`make run`,
#                                       `make deb`, `make install`)
#   install-deps.sh test [PACKAGE...]   that and what the tests need (`make test`); the default
#   install-deps.sh PACKAGE...          as `test`, plus the packages named (bench/run.sh)
#
# As root (or with password-less sudo) it runs apt-get; otherwise it prints the exact command and
# exits non-zero.
set -euo pipefail

mode=test
if [ $# -gt 0 ] && { [ "$1" = run ] || [ "$1" = test ]; }; then
    mode=$1
    shift
fi

# Building and running: the compiler and CMake (with cpack), the libraries (libcrypt: crypt_r for
# auth_basic's bcrypt and SHA-crypt hashes; PCRE2: regular expressions), the MIME table, openssl
# for `make run`'s certificate, gzip for the manual pages.
packages=(build-essential cmake pkg-config libev-dev libssl-dev media-types openssl gzip
          libnghttp2-dev zlib1g-dev libbrotli-dev libzstd-dev libcrypt-dev libpcre2-dev)

# llhttp: a system library (other distributions' libllhttp-dev) or the C sources that Debian's
# node-llhttp ships.
if ! { [ -f /usr/include/llhttp.h ] && ls /usr/lib/*/libllhttp.* /usr/lib/libllhttp.* >/dev/null 2>&1; }; then
    packages+=(node-llhttp)
fi

if [ "$mode" = test ]; then
    packages+=(libcmocka-dev python3 curl wrk slowhttptest iproute2 strace nghttp2-client
               python3-h2 python3-brotli python3-zstandard dpkg-dev groff-base util-linux
               apache2-utils whois chromium python3-prometheus-client)
    # apache2-utils (htpasswd) and whois (mkpasswd): what the tests make user files with;
    # chromium (headless): the status page's width in a browser window (test_default_site.py);
    # python3-prometheus-client: its parsers read the metrics too (test_metrics.py).
    # The fuzz targets (tests/fuzz/, `make fuzz`, and their smoke runs in `make test`): clang, and
    # its libFuzzer runtime, which Debian ships apart as libclang-rt-N-dev for the clang-N that the
    # clang package brings (14 on Debian 12).
    packages+=(clang)
    clang_major=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9][0-9]*\).*/\1/p' | head -n 1)
    if [ -z "$clang_major" ]; then
        clang_major=$(apt-cache depends clang 2>/dev/null | sed -n 's/.*Depends: clang-\([0-9][0-9]*\)$/\1/p' | head -n 1)
    fi
    packages+=("libclang-rt-${clang_major:-14}-dev")
fi
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: missing Debian packages: ${missing[*]}" >&2
cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && "${cmd[@]}"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -E apt-get update -qq && sudo -E "${cmd[@]}"
else
    echo "install-deps: run this as root, then try again:" >&2
    echo "    apt-get update && ${cmd[*]}" >&2
    exit 1
fi
