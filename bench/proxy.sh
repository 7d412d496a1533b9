#!/bin/sh
# proxy.sh - a connection listener under pgbench, beside its baselines in
# the same run: the server directly (TCP), and HAProxy 2.6 in TCP mode
# over the same loopback path when it is installed (scripts/deps.sh
# installs it with the bench packages; it is never started as a service).
#
#   pgbench -S -c4 -j2 -T$SECS, simple and prepared
#   pgbench -S -C -c4 -j2 -T$SECS  (a new connection per transaction)
#   COPY of $COPY_MB MB out of the server (psql \copy to /dev/null)
#
# Builds a throwaway 1+1 cluster, runs $BUILD/pgbeacond with a master
# listener on a free loopback port, and tears everything down on exit.
#
#   BENCH_SECONDS   length of each pgbench run (default 20)
#   BENCH_COPY_MB   size of the COPY (default 100)
#
# Not a test: it reports, it does not pass or fail.  Failover under load
# and memory per connection are in bench/proxy_bench.c.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECS=${BENCH_SECONDS:-20}
COPY_MB=${BENCH_COPY_MB:-100}
PORTDIR=${PGCLUSTER_PORTDIR:-/tmp/pgcluster-ports}
PGCLUSTER=tests/harness/pgcluster
BIN=${PG_BINDIR:-/usr/lib/postgresql/15/bin}

[ -x "$BUILD/pgbeacond" ] || {
	echo "proxy.sh: $BUILD/pgbeacond is missing: run make" >&2
	exit 1
}

dir=$(mktemp -u /tmp/pgbeacon-bench-proxy.XXXXXX)
dpid=""
hpid=""
cleanup() {
	for p in $dpid $hpid; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	"$PGCLUSTER" destroy "$dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$PGCLUSTER" create "$dir" 1
p0=$("$PGCLUSTER" port "$dir" 0)
p1=$("$PGCLUSTER" port "$dir" 1)

# A port, claimed the way pgcluster claims its own.
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

lport=$(claim_port)
cat >"$dir/pgbeacon.conf" <<EOF
socket = "$dir/pgbeacon.sock";
log_level = "info";
clusters = ( { name = "main";
    hosts = ( "127.0.0.1:$p0", "127.0.0.1:$p1" );
    conninfo = "user=postgres dbname=postgres";
    listen = ( { role = "master"; address = "127.0.0.1:$lport"; } ); } );
EOF
"$BUILD/pgbeacond" -c "$dir/pgbeacon.conf" >"$dir/pgbeacond.log" 2>&1 &
dpid=$!
i=0
until grep -q "ready" "$dir/pgbeacond.log" 2>/dev/null; do
	i=$((i + 1))
	[ "$i" -lt 300 ] && kill -0 "$dpid" 2>/dev/null || {
		echo "proxy.sh: pgbeacond did not start" >&2
		tail -n 20 "$dir/pgbeacond.log" >&2
		exit 1
	}
	sleep 0.05
done

hport=""
if command -v haproxy >/dev/null 2>&1; then
	hport=$(claim_port)
	cat >"$dir/haproxy.cfg" <<EOF
global
    maxconn 1000
defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
listen pg
    bind 127.0.0.1:$hport
    server db1 127.0.0.1:$p0
EOF
	haproxy -f "$dir/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 &
	hpid=$!
	sleep 0.5
fi

PGUSER=postgres
export PGUSER
"$BIN/pgbench" -h 127.0.0.1 -p "$p0" -i -s 10 -q postgres >/dev/null 2>&1

# tps PORT ARGS...: the tps of one pgbench run.
tps() {
	port=$1
	shift
	"$BIN/pgbench" -h 127.0.0.1 -p "$port" -n -c 4 -j 2 -T "$SECS" "$@" \
		postgres 2>/dev/null | awk '/^tps/ { printf "%.0f", $3; exit }'
}

# row LABEL ARGS...: direct, listener, HAProxy and the ratios.
row() {
	label=$1
	shift
	d=$(tps "$p0" "$@")
	l=$(tps "$lport" "$@")
	h=""
	[ -n "$hport" ] && h=$(tps "$hport" "$@")
	awk -v lab="$label" -v d="$d" -v l="$l" -v h="$h" 'BEGIN {
		rl = (d > 0) ? l / d : 0
		rh = (d > 0) ? h / d : 0
		lh = (h > 0) ? l / h : 0
		printf "  %-26s direct %7s  listener %7s (%.2f x)", lab, d, l, rl
		if (h != "")
			printf "  haproxy %7s (%.2f x; listener/haproxy %.2f)",
			    h, rh, lh
		printf "\n"
	}'
}

echo "  pgbench -c4 -j2 -T$SECS -s10, client, relay and servers on the same $(nproc) cores"
[ -n "$hport" ] || echo "  (haproxy not installed: no HAProxy column)"
row "-S simple" -S
row "-S prepared" -S -M prepared
row "-S -C (connect per xact)" -S -C

# COPY out: seconds to move COPY_MB of rows to the client.
"$BIN/psql" -X -q -h 127.0.0.1 -p "$p0" -c "create table copy_b as select \
	repeat('x', 1000) as t from generate_series(1, $COPY_MB * 1000)" postgres
copy_s() {
	s=$(date +%s.%N)
	"$BIN/psql" -X -q -h 127.0.0.1 -p "$1" -c "\\copy copy_b to /dev/null" \
		postgres
	e=$(date +%s.%N)
	awk -v s="$s" -v e="$e" 'BEGIN { printf "%.2f", e - s }'
}
cd_=$(copy_s "$p0")
cl_=$(copy_s "$lport")
awk -v d="$cd_" -v l="$cl_" -v mb="$COPY_MB" 'BEGIN {
	printf "  COPY out %d MB             direct %.0f MB/s  listener %.0f MB/s (%.2f x)\n",
	    mb, mb / d, mb / l, d / l
}'
