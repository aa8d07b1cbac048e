#!/bin/sh
# porter with bench/porter.conf's first server under limit_req (a generous rate) and allow/deny:
# the same binary, the conf it is given rewritten.
# GUARDED_REAL names the porter binary it runs.
real=${GUARDED_REAL:?}
conf=
prev=
for a in "$@"; do
    if [ "$prev" = "-c" ]; then conf=$a; fi
    prev=$a
done
if [ -n "$conf" ]; then
    out=${conf%.conf}-guarded.conf
    awk 'BEGIN { done = 0 }
         NR == 1 { print "limit_req_zone $binary_remote_addr zone=bench:10m rate=1000000r/s;" }
         { print }
         /^server \{/ && !done { print "    limit_req zone=bench burst=1000;\n    allow 127.0.0.1;\n    deny all;"; done = 1 }' \
        "$conf" > "$out"
    set -- $(for a in "$@"; do if [ "$a" = "$conf" ]; then echo "$out"; else echo "$a"; fi; done)
fi
exec "$real" "$@"
