#!/bin/sh
# run.sh - `make bench`: every benchmark, one after the other, each
# printing its figures beside a baseline measured in the same run.
# Benchmarks are not tests: they report, they do not pass or fail.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD

echo "pgbeacon benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -srm)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"

# One benchmark that fails does not stop the others; the exit status
# says that one did.
failed=""
for b in "$BUILD"/bench/*_bench; do
	[ -x "$b" ] || continue
	echo
	echo "== $(basename "$b")"
	"$b" || failed="$failed $(basename "$b")"
done
for s in bench/*.sh; do
	[ "$(basename "$s")" = run.sh ] && continue
	echo
	echo "== $(basename "$s")"
	sh "$s" || failed="$failed $(basename "$s")"
done
if [ -n "$failed" ]; then
	echo
	echo "failed:$failed"
	exit 1
fi
