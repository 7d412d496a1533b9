#!/bin/sh
# run.sh - runs test binaries one after the other and totals their Check
# summaries into one closing line, "N passed, M failed".
#
# A binary that exits non-zero without a Check summary (a crash, a
# sanitizer report at exit) counts as one failure.  Every binary runs even
# after a failure, so one run shows everything that is broken.
set -u

passed=0
failed=0
bad=""
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Clusters that a crashed test binary left behind are reaped after each
# binary; the prefix is this run's own, so parallel runs are not touched.
PGBEACON_IT_PREFIX="/tmp/pgbeacon-it.run$$."
export PGBEACON_IT_PREFIX
harness=$(dirname "$0")/harness/pgcluster

for t in "$@"; do
	echo "== $t"
	"$t" >"$log" 2>&1
	rc=$?
	cat "$log"
	# Check's summary: "NN%: Checks: 12, Failures: 1, Errors: 0"
	line=$(grep -E '^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		n=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
		f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
		e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
		passed=$((passed + n - f - e))
		failed=$((failed + f + e))
		if [ "$rc" -ne 0 ] && [ $((f + e)) -eq 0 ]; then
			failed=$((failed + 1))	# e.g. a leak reported at exit
		fi
	else
		failed=$((failed + 1))
	fi
	[ "$rc" -eq 0 ] || bad="$bad $(basename "$t")"
	"$harness" reap "$PGBEACON_IT_PREFIX" >/dev/null 2>&1 || true
done

echo
[ -z "$bad" ] || echo "failing:$bad"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ -z "$bad" ]
