#!/bin/sh
# http.sh - pgbeacond's HTTP API under wrk: GET /master at 50 keep-alive
# connections, plain text and JSON, with requests/s and p99.  Baseline in
# the same run: GET of an unknown path (a 404 with no topology work), the
# HTTP layer's own floor.  Each row also gives the daemon's CPU time per
# request (user + system, from /proc/PID/stat, over the requests wrk
# counted): unlike requests/s it hardly moves with what else runs on the
# cores, so it is the figure to compare across runs and builds.
#
# Builds a throwaway 1+1 cluster with the harness, runs $BUILD/pgbeacond
# on it with http_listen on a free loopback port, and tears both down on
# exit.  Needs wrk (scripts/deps.sh installs it).
#
#   BENCH_SECONDS   length of each wrk run (default 5)
#   BENCH_THREADS   wrk threads (default 2: one per core of the target box)
#
# Not a test: it reports, it does not pass or fail.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECS=${BENCH_SECONDS:-5}
THREADS=${BENCH_THREADS:-2}
CONNS=50
PORTDIR=${PGCLUSTER_PORTDIR:-/tmp/pgcluster-ports}
PGCLUSTER=tests/harness/pgcluster

command -v wrk >/dev/null 2>&1 || {
	echo "http.sh: wrk is missing: run 'make deps' (or apt-get install wrk)" >&2
	exit 1
}
[ -x "$BUILD/pgbeacond" ] || {
	echo "http.sh: $BUILD/pgbeacond is missing: run make" >&2
	exit 1
}

dir=$(mktemp -u /tmp/pgbeacon-bench-http.XXXXXX)
dpid=""
cleanup() {
	if [ -n "$dpid" ]; then
		kill "$dpid" 2>/dev/null || true
		wait "$dpid" 2>/dev/null || true
	fi
	"$PGCLUSTER" destroy "$dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$PGCLUSTER" create "$dir" 1
p0=$("$PGCLUSTER" port "$dir" 0)
p1=$("$PGCLUSTER" port "$dir" 1)

# A port for the listener, claimed the way pgcluster claims its own (a
# symlink to $dir in $PORTDIR, released by "pgcluster destroy $dir").
claim_port() {
	mkdir -p "$PORTDIR"
	n=0
	while [ "$n" -lt 200 ]; do
		n=$((n + 1))
		p=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000 + 20000 ))
		ln -s "$dir" "$PORTDIR/$p" 2>/dev/null || continue
		echo "$p"
		return 0
	done
	return 1
}

# Starts the daemon; true once it logs readiness, false if it exits.
start_daemon() {
	port=$(claim_port) || { echo "http.sh: no free port" >&2; exit 1; }
	cat >"$dir/pgbeacon.conf" <<-EOF
	socket = "$dir/pgbeacon.sock";
	http_listen = "127.0.0.1:$port";
	log_level = "info";
	clusters = ( { name = "main";
	    hosts = ( "127.0.0.1:$p0", "127.0.0.1:$p1" );
	    conninfo = "user=postgres dbname=postgres"; } );
	EOF
	"$BUILD/pgbeacond" -c "$dir/pgbeacon.conf" >"$dir/pgbeacond.log" 2>&1 &
	dpid=$!
	i=0
	while [ "$i" -lt 300 ]; do
		grep -q "ready" "$dir/pgbeacond.log" 2>/dev/null && return 0
		kill -0 "$dpid" 2>/dev/null || { dpid=""; return 1; }
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}
tries=0
until start_daemon; do
	tries=$((tries + 1))
	if [ "$tries" -ge 5 ]; then
		echo "http.sh: pgbeacond did not start:" >&2
		tail -n 20 "$dir/pgbeacond.log" >&2
		exit 1
	fi
done
url="http://127.0.0.1:$port"

# The daemon's CPU time so far, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$dpid/stat"
}

# run LABEL PATH [HEADER]: one wrk run, one line of figures; sets rps and
# us (daemon CPU µs per request).
run() {
	label=$1
	path=$2
	shift 2
	t0=$(cpu_ticks)
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "$@" \
		"$url$path")
	t1=$(cpu_ticks)
	n=$(echo "$out" | awk '/ requests in / { print $1 }')
	us=$(awk -v a="$t0" -v b="$t1" -v n="${n:-0}" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.1f", (n > 0) ? (b - a) * 1e6 / hz / n : 0 }')
	rps=$(echo "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
	p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
	p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
	errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ { $1 = $1; print }' |
		tr '\n' ' ')
	printf '  %-44s %8s req/s   p50 %-8s p99 %-8s CPU %5s µs/req %s\n' \
		"$label" "$rps" "$p50" "$p99" "$us" "$errs"
}

echo "  wrk -t$THREADS -c$CONNS -d${SECS}s, daemon and wrk on the same $(nproc) cores"
run "baseline: GET /nowhere (404, the HTTP floor)" /nowhere
base=$rps
base_us=$us
run "GET /master (plain text)" /master
plain=$rps
plain_us=$us
run "GET /master (Accept: application/json)" /master \
	-H "Accept: application/json"
run "GET /replica (round robin)" /replica
awk -v p="$plain" -v b="$base" -v pu="$plain_us" -v bu="$base_us" 'BEGIN {
	pct = (b > 0) ? 100 * p / b : 0
	printf "  /master at %.0f%% of the floor, %.2fx its daemon CPU per request.\n", pct, (bu > 0) ? pu / bu : 0
	printf "  Target: 50,000 req/s on 2 cores;\n"
	printf "  pg-status measured about 14,000-17,000 req/s on the same box.\n"
}'
