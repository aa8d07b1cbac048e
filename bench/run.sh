#!/usr/bin/env bash
# `make bench`: installs the peers, builds porter (Release) and the floor, then runs bench.py.
# Environment: ROUNDS (3), DURATION (5 s per run), BASE_PORT, IDLE_CONNS, SERVERS, SCENARIOS,
# RESULTS, PORTER (a porter binary to use instead of building one); see bench/README.md.
set -euo pipefail

cd "$(dirname "$0")/.."
work=bench/work
mkdir -p "$work/run"

# The ports the run needs, before anything is installed or built: one taken is a one-line error
# that names BASE_PORT.
python3 bench/bench.py --check-ports

# lighttpd's TLS (its HTTP/2 over TLS) and its compression (mod_deflate) are modules of their own
# packages, as is nginx's brotli filter; h2load is nghttp2-client's. The chart needs gnuplot's
# PNG terminal only: gnuplot-nox, not the gnuplot package, which brings gnuplot-qt and with it Qt
# and wxWidgets. A gnuplot already installed (any of its packages) is used as it is.
chart=()
command -v gnuplot >/dev/null 2>&1 || chart=(gnuplot-nox)
scripts/install-deps.sh nginx libnginx-mod-http-brotli-filter lighttpd lighttpd-mod-openssl \
    lighttpd-mod-deflate h2o wrk apache2-utils nghttp2-client "${chart[@]}"

# build/release also builds floor-deps (bench/floor_deps.c), with porter's flags and llhttp.
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DPORTER_TESTS=OFF >/dev/null
if [ -z "${PORTER:-}" ]; then
    cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)"
fi
cmake --build build/release --target floor_deps
cc -O2 -Wall -Wextra -o "$work/floor" bench/floor.c

if [ "$(nproc)" -lt 2 ]; then
    echo "bench: needs 2 CPUs (servers on CPU 0, the load generator on CPU 1)" >&2
    exit 1
fi

# 5,000 idle connections in scenario f need that many fds in the servers and the client; the
# servers and the client inherit this limit.
ulimit -n 20000 || { echo "bench: cannot raise the fd limit to 20000 (ulimit -Hn is $(ulimit -Hn))" >&2; exit 1; }

# bench.py stops every server it started, also on SIGINT or SIGTERM. If this script is
# stopped, it stops bench.py; if bench.py was killed outright, the process groups it recorded
# are killed here.
child=
cleanup() {
    local pgid
    if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    if [ -f "$work/run/pgids" ]; then
        while read -r pgid; do
            [ -n "$pgid" ] && kill -KILL -- "-$pgid" 2>/dev/null || true
        done <"$work/run/pgids"
        : >"$work/run/pgids"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rounds=${ROUNDS:-3}
duration=${DURATION:-5}
# The command line the report shows, with the variables that change what is measured.
settings="ROUNDS=$rounds DURATION=$duration"
for var in PORTER BASELINE SERVERS SCENARIOS IDLE_CONNS OTHER_MAX RETRIES; do
    [ -n "${!var:-}" ] && settings+=" $var=${!var}"
done
if [ -n "${MAKELEVEL:-}" ]; then
    export BENCH_COMMAND="$settings make bench"
else
    export BENCH_COMMAND="$settings bench/run.sh"
fi

# A hard bound on the whole run: 80 runs per round plus start-up, each far below this.
limit=$((120 + rounds * 80 * (duration + 15)))
# In the background so that a signal to this script runs the traps at once.
timeout --foreground -k 20 "$limit" python3 bench/bench.py &
child=$!
wait "$child"
# A run that wrote the committed report also writes README's table of it.
if [ -z "${RESULTS:-}" ]; then
    python3 bench/readme_table.py
fi
