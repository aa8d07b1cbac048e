#!/bin/sh
# porter with bench/porter.conf's first server routed by 20 regex locations and a map: the
# request for /1k.bin is tried against 19 regexes that miss, then served by the 20th, whose
# `if` reads a map's value, computed from $uri (the map's regex key matches). The same binary,
# the conf it is given rewritten. REGEX_REAL names the porter binary it runs.
real=${REGEX_REAL:?}
conf=
prev=
for a in "$@"; do
    if [ "$prev" = "-c" ]; then conf=$a; fi
    prev=$a
done
if [ -n "$conf" ]; then
    out=${conf%.conf}-regex.conf
    awk 'BEGIN { done = 0 }
         NR == 1 {
             print "map $uri $bench_class {"
             print "    default other;"
             print "    /index.html page;"
             print "    ~^/api/ api;"
             print "    ~\\.(?<ext>bin|dat)$ binary-$ext;"
             print "}"
         }
         { print }
         /^server \{/ && !done {
             for (i = 1; i <= 19; i++)
                 printf "    location ~ ^/api/v%d/(?<res%d>[a-z]+)/([0-9]+)$ { return 200 \"$res%d $1\"; }\n", i, i, i
             print "    location ~* \\.bin$ { if ($bench_class = other) { return 404; } }"
             done = 1
         }' "$conf" > "$out"
    set -- $(for a in "$@"; do if [ "$a" = "$conf" ]; then echo "$out"; else echo "$a"; fi; done)
fi
exec "$real" "$@"
