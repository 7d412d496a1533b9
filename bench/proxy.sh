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
# Per row: tps and the ratios to direct and to HAProxy; then each relay's
# own CPU time (the schedstat of each of its threads, before and after
# the run) per transaction (per MB for the COPY), and the ratio
# listener/HAProxy; the whole machine's CPU time per direct transaction
# (client and server), and so the most a relay could spend per
# transaction for 1.5 x HAProxy's tps with every core busy (a bound worth
# reading on a quiet machine only).  CPU per transaction does not depend on how many
# cores the other jobs on the machine take, so that ratio is the one to
# compare across runs on a loaded machine; tps ratios are not.  With perf
# (linux-perf) and BENCH_SYSCALLS=1 (the default when perf works), a
# short extra run per relay counts its system calls per transaction
# (raw_syscalls:sys_enter).
#
# Builds a throwaway 1+1 cluster, runs $BUILD/pgbeacond with a master
# listener on a free loopback port, and tears everything down on exit.
#
#   BENCH_QUICK     1: -T5, a 20 MB COPY, 3 s syscall runs (about a minute)
#   BENCH_SECONDS   length of each pgbench run (default 20, quick 5)
#   BENCH_COPY_MB   size of the COPY (default 100, quick 20)
#   BENCH_SYSCALLS  0: no syscall counts
#
# Not a test: it reports, it does not pass or fail.  Failover under load
# and memory per connection are in bench/proxy_bench.c.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	SECS=${BENCH_SECONDS:-5}
	COPY_MB=${BENCH_COPY_MB:-20}
	SYS_SECS=3
else
	SECS=${BENCH_SECONDS:-20}
	COPY_MB=${BENCH_COPY_MB:-100}
	SYS_SECS=5
fi
SYSCALLS=${BENCH_SYSCALLS:-1}
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

# cpu PID: the process's CPU time so far (every thread), in ns.
cpu() {
	[ -n "$1" ] || { echo 0; return; }
	cat /proc/"$1"/task/*/schedstat | awk '{ n += $1 } END { printf "%.0f", n }'
}

# busy: the whole machine's busy and total CPU time so far, in clock
# ticks (/proc/stat: user nice system idle iowait irq softirq steal).
busy() {
	awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9
		print b, b + $5 + $6 }' /proc/stat
}
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)

# run PORT PID ARGS...: one pgbench run; prints "tps transactions
# cpu_ns busy_ticks total_ticks" (cpu_ns: PID's CPU time over the run,
# 0 without PID; the ticks: the machine's, every process and core).
run() {
	port=$1
	pid=$2
	shift 2
	c0=$(cpu "$pid")
	m0=$(busy)
	out=$("$BIN/pgbench" -h 127.0.0.1 -p "$port" -n -c 4 -j 2 -T "$SECS" \
		"$@" postgres 2>/dev/null || true)
	m1=$(busy)
	c1=$(cpu "$pid")
	echo "$out" | awk -v c="$c0" -v e="$c1" -v m0="$m0" -v m1="$m1" '
		/^number of transactions actually processed/ { n = $NF }
		/^tps/ { t = $3 }
		END { split(m0, A, " "); split(m1, B, " ")
			printf "%.0f %d %.0f %d %d\n", t, n, e - c,
			    B[1] - A[1], B[2] - A[2] }'
}

# syscalls PORT PID ARGS...: system calls of PID per transaction over a
# short run under perf stat; empty when perf cannot count them.
syscalls() {
	port=$1
	pid=$2
	shift 2
	perf stat -x, -e raw_syscalls:sys_enter -p "$pid" \
		-o "$dir/perf.$pid" 2>/dev/null &
	ppid=$!
	sleep 0.3
	n=$("$BIN/pgbench" -h 127.0.0.1 -p "$port" -n -c 4 -j 2 \
		-T "$SYS_SECS" "$@" postgres 2>/dev/null | awk '
		/^number of transactions actually processed/ { print $NF }')
	kill -INT "$ppid" 2>/dev/null || true
	wait "$ppid" 2>/dev/null || true
	awk -F, -v n="${n:-0}" '/raw_syscalls/ && n > 0 && $1 + 0 > 0 {
		printf "%.1f", $1 / n }' "$dir/perf.$pid" 2>/dev/null || true
}

# row LABEL ARGS...: direct, listener, HAProxy; the tps ratios; each
# relay's CPU per transaction and the ratio.
row() {
	label=$1
	shift
	d=$(run "$p0" "" "$@")
	l=$(run "$lport" "$dpid" "$@")
	h="0 0 0"
	[ -n "$hport" ] && h=$(run "$hport" "$hpid" "$@")
	awk -v lab="$label" -v d="$d" -v l="$l" -v h="$h" \
	    -v ha="$hport" -v hz="$HZ" -v cores="$(nproc)" 'BEGIN {
		split(d, D, " "); split(l, L, " "); split(h, H, " ")
		rl = D[1] > 0 ? L[1] / D[1] : 0
		rh = D[1] > 0 ? H[1] / D[1] : 0
		lh = H[1] > 0 ? L[1] / H[1] : 0
		printf "  %-26s direct %6d  listener %6d (%.2f x direct)",
		    lab, D[1], L[1], rl
		if (ha != "")
			printf "  haproxy %6d (%.2f x direct)  listener/haproxy %.2f",
			    H[1], rh, lh
		printf "\n"
		lc = L[2] > 0 ? L[3] / 1e3 / L[2] : 0
		hc = H[2] > 0 ? H[3] / 1e3 / H[2] : 0
		ch = hc > 0 ? lc / hc : 0
		printf "  %-26s relay CPU per transaction: listener %.1f us", "", lc
		if (ha != "")
			printf ", haproxy %.1f us, listener/haproxy %.2f", hc, ch
		printf "\n"
		# What 1.5 x HAProxy would leave a relay: at that tps, with
		# every core busy, the CPU time per transaction is
		# cores / tps; the client and the server take what they
		# took directly (the busy time of the machine per transaction).
		if (D[2] <= 0 || D[5] <= 0)
			exit
		dc = D[4] * 1e6 / hz / D[2]
		printf "  %-26s machine CPU per transaction, direct: %.1f us (cores %.0f %% busy)",
		    "", dc, 100 * D[4] / D[5]
		if (ha != "" && H[1] > 0 && lab ~ /^-S (simple|prepared)/)
			printf "; 1.5 x haproxy (%d tps) leaves a relay at most %.1f us",
			    1.5 * H[1], cores * 1e6 / (1.5 * H[1]) - dc
		printf "\n"
	}'
}

echo "  pgbench -c4 -j2 -T$SECS -s10, client, relay and servers on the same $(nproc) cores"
echo "  load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "$hport" ] || echo "  (haproxy not installed: no HAProxy column)"
row "-S simple" -S
row "-S prepared" -S -M prepared
row "-S -C (connect per xact)" -S -C

if [ "$SYSCALLS" = 1 ] && perf stat -e raw_syscalls:sys_enter true \
    >/dev/null 2>&1; then
	ls=$(syscalls "$lport" "$dpid" -S)
	hs=""
	[ -n "$hport" ] && hs=$(syscalls "$hport" "$hpid" -S)
	printf "  %-26s relay syscalls per transaction (-T%s): listener %s" \
	    "-S simple" "$SYS_SECS" "${ls:-?}"
	[ -n "$hport" ] && printf ", haproxy %s" "${hs:-?}"
	printf "\n"
fi

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
# copy_row PORT PID: seconds and PID's CPU time in ns for one COPY out.
copy_row() {
	c0=$(cpu "$2")
	t=$(copy_s "$1")
	c1=$(cpu "$2")
	echo "$t $c0 $c1" | awk '{ printf "%s %.0f\n", $1, $3 - $2 }'
}
cd_=$(copy_row "$p0" "")
cl_=$(copy_row "$lport" "$dpid")
ch_="0 0"
[ -n "$hport" ] && ch_=$(copy_row "$hport" "$hpid")
awk -v d="$cd_" -v l="$cl_" -v h="$ch_" -v mb="$COPY_MB" \
    -v ha="$hport" 'BEGIN {
	split(d, D, " "); split(l, L, " "); split(h, H, " ")
	printf "  COPY out %-17s direct %.0f MB/s  listener %.0f MB/s (%.2f x direct)",
	    mb " MB", mb / D[1], mb / L[1], D[1] / L[1]
	if (ha != "")
		printf "  haproxy %.0f MB/s (%.2f x direct)", mb / H[1],
		    D[1] / H[1]
	printf "\n"
	lm = L[2] / 1e6 / mb
	hm = H[2] / 1e6 / mb
	ch = H[2] > 0 ? L[2] / H[2] : 0
	printf "  %-26s relay CPU per MB: listener %.2f ms", "", lm
	if (ha != "")
		printf ", haproxy %.2f ms, listener/haproxy %.2f", hm, ch
	printf "\n"
}'
echo "  load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
