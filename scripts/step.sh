#!/bin/sh
# One step of `make`: prints "  WHAT" and runs the command with its output kept aside, shown only
# if it fails; with V=1 the command's output goes through as it comes.
#
#   step.sh WHAT COMMAND [ARG...]
what=$1
shift
if [ "${V:-0}" = 1 ]; then
    exec "$@"
fi
printf '  %s\n' "$what"
log=$(mktemp "${TMPDIR:-/tmp}/porter-make.XXXXXX")
if "$@" >"$log" 2>&1; then
    rm -f "$log"
    exit 0
else
    status=$?
    cat "$log" >&2
    rm -f "$log"
    echo "make: $what failed (status $status); V=1 shows every command's output" >&2
    exit "$status"
fi
