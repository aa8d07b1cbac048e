#!/bin/sh
# Runs one fuzz target: each input of its seed corpus once, then SECONDS of new inputs.
#
#   run.sh TARGET SOURCE_DIR WORK_DIR SECONDS [fresh]
#
# TARGET is the target's executable; its name picks the seeds (SOURCE_DIR/corpus/NAME) and the
# dictionary (SOURCE_DIR/NAME.dict). The inputs libFuzzer finds go to WORK_DIR/corpus (kept
# from run to run, or started anew with `fresh`), an input that fails to WORK_DIR/crash-<sha1>
# (replay it with `TARGET FILE`). Exits non-zero on a crash, a leak, a failed check or a hang,
# after the last lines of libFuzzer's output; prints one line of figures at the end.
set -u
bin=$1 src=$2 work=$3 seconds=$4 fresh=${5:-}
name=$(basename "$bin")
seeds=$src/corpus/$name
dict=$src/$name.dict

if [ ! -x "$bin" ]; then
    echo "$name: $bin is not built" >&2
    exit 1
fi
if [ -z "$(ls -A "$seeds" 2>/dev/null)" ]; then
    echo "$name: no seed corpus in $seeds" >&2
    exit 1
fi
[ "$fresh" = fresh ] && rm -rf "$work"
mkdir -p "$work/corpus"
log=$work/fuzz.log

failed() {
    tail -n 60 "$log" >&2
    echo "$name: FAILED: $1 (replay: $bin FILE)" >&2
    exit 1
}

# The seeds, each once: an input that once failed must not fail again.
"$bin" -timeout=20 -artifact_prefix="$work/" "$seeds"/* >"$log" 2>&1 ||
    failed "a seed input, the last one \"Running:\" above"
nseeds=$(ls -A "$seeds" | wc -l)

# New inputs, from the seeds and what earlier runs found (libFuzzer adds to the first folder).
dict_arg=
[ -f "$dict" ] && dict_arg=-dict=$dict
"$bin" -max_total_time="$seconds" -timeout=20 -print_final_stats=1 $dict_arg \
    -artifact_prefix="$work/" "$work/corpus" "$seeds" >"$log" 2>&1 ||
    failed "a new input, written to $work/ (\"Test unit written to\" above)"

stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
echo "$name: clean: $nseeds seeds, then $(stat number_of_executed_units) execs in ${seconds} s" \
    "($(stat average_exec_per_sec)/s), $(stat new_units_added) new inputs," \
    "peak RSS $(stat peak_rss_mb) MB"
