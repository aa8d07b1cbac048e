#!/bin/sh
# Installs a porter build into a temporary prefix, checks what is installed, then builds the
# hello example against that copy out of the tree three ways (pkg-config with the shared
# library, find_package(porter) with porter::porter and with porter::porter_static) and runs
# each: it must answer GET /hello and exit 0 on SIGTERM.
#
#   test_install.sh BUILD_DIR SOURCE_DIR C_COMPILER [EXTRA_FLAGS]
#
# EXTRA_FLAGS go to every compile and link (the sanitizers of a sanitized build).
set -eu
build=$1
source=$2
cc=$3
flags=${4:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/porter-install.XXXXXX")
pids=
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# The version, and the soname it gives (docs/embedding.md, "Versions and ABI").
version=$(sed -n 's/^project(porter VERSION \([0-9.]*\).*/\1/p' "$source/CMakeLists.txt")
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
if [ "$major" -eq 0 ]; then
    soname=libporter.so.0.$minor
else
    soname=libporter.so.$major
fi

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || fail "cmake --install"

# The public set, and nothing private.
pc=$(find "$prefix" -name porter.pc)
[ -n "$pc" ] || fail "no porter.pc"
libdir=$(dirname "$(dirname "$pc")")
for f in include/porter.h include/porter/export.h include/porter/version.h \
    include/porter/connmgr/custodian.h include/porter/connmgr/conn.h \
    include/porter/connmgr/connmgr.h include/porter/connmgr/tunnel.h \
    include/porter/listener/listener.h; do
    [ -f "$prefix/$f" ] || fail "$f is not installed"
done
for f in libporter.a libporter.so "$soname" cmake/porter/porterConfig.cmake \
    cmake/porter/porterConfigVersion.cmake cmake/porter/porterTargets.cmake; do
    [ -e "$libdir/$f" ] || fail "$f is not installed in $libdir"
done
[ -z "$(find "$prefix/include" -name 'conn_private.h' -o -name 'park.h' -o -name 'http.h' \
    -o -name 'tls.h' -o -name 'sized.h' -o -name '*.in' -o -path '*/server/*')" ] ||
    fail "private headers are installed"
grep -q '#include "connmgr/' "$prefix/include/porter.h" && fail "porter.h includes unprefixed paths"
readelf -d "$libdir/libporter.so" | grep -q "SONAME.*\[$soname\]" || fail "soname, not $soname"
[ "$(readlink "$libdir/$soname")" = "libporter.so.$version" ] || fail "$soname link"
others=$(nm -D --defined-only "$libdir/libporter.so" | awk '$3 !~ /^pt_/ {print $3}')
[ -z "$others" ] || fail "libporter.so exports more than pt_*: $others"

# What running porter as a service needs (cmake/package.cmake), under the prefix, and the unit
# and logrotate naming the installed paths.
for f in sbin/porter share/man/man8/porter.8.gz share/man/man5/porter.conf.5.gz \
    lib/systemd/system/porter.service etc/logrotate.d/porter etc/porter/porter.conf \
    var/www/porter/index.html share/doc/porter/nginx.md; do
    [ -f "$prefix/$f" ] || fail "$f is not installed"
done
[ -d "$prefix/etc/porter/conf.d" ] || fail "etc/porter/conf.d is not installed"
grep -qx "ExecStart=$prefix/sbin/porter -c $prefix/etc/porter/porter.conf" \
    "$prefix/lib/systemd/system/porter.service" || fail "the unit names other paths"
grep -q "$prefix/sbin/porter -s reopen -c $prefix/etc/porter/porter.conf" \
    "$prefix/etc/logrotate.d/porter" || fail "logrotate names other paths"
grep -qx "    root $prefix/var/www/porter;" "$prefix/etc/porter/porter.conf" ||
    fail "the conf's root is not the installed web root"

# Runs an example binary: it must print its address, answer, and stop cleanly.
run_hello() {
    bin=$1
    out=$tmp/$(basename "$bin").out
    # Made here: the background job may not have opened it yet when sed first reads it (and a
    # failing sed would end this script, under set -e).
    : >"$out"
    "$bin" 127.0.0.1 0 >"$out" 2>"$out.err" &
    pid=$!
    pids="$pids $pid"
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$out")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || fail "$bin did not start: $(cat "$out.err")"
    body=$(curl -fsS --max-time 10 "http://127.0.0.1:$port/hello") || fail "$bin: GET /hello"
    case $body in *'"hello":"world"'*) ;; *) fail "$bin answered $body" ;; esac
    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 0 ] || fail "$bin exited $status: $(cat "$out.err")"
}

# pkg-config, shared library.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
[ "$(pkg-config --modversion porter)" = "$version" ] || fail "pkg-config --modversion"
# shellcheck disable=SC2046,SC2086
$cc $flags -o "$tmp/hello-pkgconfig" "$source/examples/hello.c" \
    $(pkg-config --cflags --libs porter) -Wl,-rpath,"$libdir" || fail "pkg-config build"
ldd "$tmp/hello-pkgconfig" | grep -q "$libdir/$soname" || fail "not linked to the copy"
run_hello "$tmp/hello-pkgconfig"

# find_package(porter), shared and static.
for kind in shared static; do
    static=OFF
    [ $kind = static ] && static=ON
    cmake -S "$source/examples" -B "$tmp/examples-$kind" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
        -DPORTER_EXAMPLES_STATIC=$static >"$tmp/configure-$kind.log" 2>&1 ||
        fail "find_package configure ($kind): $(tail -20 "$tmp/configure-$kind.log")"
    cmake --build "$tmp/examples-$kind" -j 2 --target porter-hello >"$tmp/build-$kind.log" 2>&1 ||
        fail "find_package build ($kind): $(tail -20 "$tmp/build-$kind.log")"
    run_hello "$tmp/examples-$kind/porter-hello"
done
if ldd "$tmp/examples-static/porter-hello" | grep -q libporter; then
    fail "the static build links libporter.so"
fi
echo "installed copy: pkg-config and find_package (shared, static) builds run"
