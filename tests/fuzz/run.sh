#!/bin/sh
# run.sh BUILD SECONDS [NAME...] - runs the libFuzzer targets BUILD/fuzz/
# fuzz_NAME (every one when no NAME is given) one after the other, each
# for SECONDS, in one process (the machine's cores are shared).
#
# Each target starts from its seed corpus, tests/fuzz/corpus/NAME/ (every
# input there, regression cases included, runs first), plus what earlier
# runs found, kept in BUILD/fuzz-corpus/NAME/ (the tree is never written).
# An input that crashes or breaks a property is saved in
# BUILD/fuzz-artifacts/NAME/; the run goes on with the next target and
# exits 1 at the end.  The output of each target is BUILD/fuzz-NAME.log.
set -eu
cd "$(dirname "$0")/../.."

[ $# -ge 2 ] || { echo "usage: $0 BUILD SECONDS [NAME...]" >&2; exit 2; }
build=$1
secs=$2
shift 2
if [ $# -eq 0 ]; then
	set -- $(cd "$build/fuzz" && ls fuzz_* | sed 's/^fuzz_//')
fi

failed=""
for name in "$@"; do
	bin=$build/fuzz/fuzz_$name
	seeds=tests/fuzz/corpus/$name
	work=$build/fuzz-corpus/$name
	art=$build/fuzz-artifacts/$name/
	log=$build/fuzz-$name.log
	mkdir -p "$work" "$art"
	[ -d "$seeds" ] || { echo "fuzz: no seed corpus $seeds" >&2; exit 1; }
	printf 'fuzz: %-14s %ss ... ' "$name" "$secs"
	if ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	    LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
	    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$art" "$work" "$seeds" \
	    >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		echo "ok, ${runs:-?} runs, corpus $(ls "$work" "$seeds" | wc -l)"
	else
		echo "FAILED"
		grep -E 'property broken|ERROR: |SUMMARY: |^artifact_prefix|Test unit written' \
		    "$log" | head -20 | sed 's/^/    /'
		echo "    (log: $log; reproduce: $bin $art<file>)"
		failed="$failed $name"
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz: FAILED:$failed" >&2
	exit 1
fi
