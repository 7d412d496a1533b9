#!/usr/bin/env bash
# demo.sh - `make demo`: a throwaway primary + 2 replicas on loopback,
# pgbeacond watching them, and a live failover.  Everything it starts is
# torn down on exit, whatever happens.
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
HARNESS=tests/harness/pgcluster
PGBEACON="$BUILD/pgbeacon"

DIR=$(mktemp -d /tmp/pgbeacon-demo.XXXXXX)
SOCK=$DIR/pgbeacon.sock
DAEMON_PID=""
WATCH_PID=""

cleanup() {
	[ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null || true
	if [ -n "$DAEMON_PID" ]; then
		kill "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
	"$HARNESS" destroy "$DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

# poll DEADLINE_MS COMMAND...: runs COMMAND until it succeeds.
poll() {
	local deadline=$(( $(now_ms) + $1 ))
	shift
	until "$@"; do
		[ "$(now_ms)" -lt "$deadline" ] || return 1
	done
}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Creating a cluster: a primary and 2 streaming replicas in $DIR"
"$HARNESS" create "$DIR" 2
P0=$("$HARNESS" port "$DIR" 0)
P1=$("$HARNESS" port "$DIR" 1)
P2=$("$HARNESS" port "$DIR" 2)
echo "node0 127.0.0.1:$P0 (primary), node1 127.0.0.1:$P1, node2 127.0.0.1:$P2"

cat >"$DIR/pgbeacon.conf" <<EOF
# The demo's configuration; see conf/pgbeacon.conf for every setting.
socket = "$SOCK";
state_file = "$DIR/pgbeacon.state";
check_interval_ms = 500;
log_level = "info";
clusters = (
  { name = "main";
    hosts = ( "127.0.0.1:$P0", "127.0.0.1:$P1", "127.0.0.1:$P2" );
    conninfo = "user=postgres dbname=postgres";
  }
);
EOF

step "Starting pgbeacond (log: $DIR/pgbeacond.log)"
"$BUILD/pgbeacond" -c "$DIR/pgbeacon.conf" 2>"$DIR/pgbeacond.log" &
DAEMON_PID=$!
poll 10000 "$PGBEACON" -s "$SOCK" ping >/dev/null 2>&1 ||
	{ echo "pgbeacond did not start:"; cat "$DIR/pgbeacond.log"; exit 1; }
# Wait for the probes to find the primary and both replicas, so that the
# first table and answers below show the whole cluster.
replicas_up() {
	[ "$("$PGBEACON" -s "$SOCK" status --json main 2>/dev/null |
	    grep -o '"alive":true,"role":"replica"' | wc -l)" -eq 2 ] &&
	"$PGBEACON" -s "$SOCK" resolve main replica fallback=none >/dev/null 2>&1
}
poll 10000 "$PGBEACON" -s "$SOCK" resolve main master >/dev/null 2>&1 ||
	{ echo "pgbeacond found no primary within 10 s:"; "$PGBEACON" -s "$SOCK" status || true;
	  cat "$DIR/pgbeacond.log"; exit 1; }
poll 10000 replicas_up ||
	{ echo "pgbeacond did not see both replicas within 10 s:"; "$PGBEACON" -s "$SOCK" status || true;
	  cat "$DIR/pgbeacond.log"; exit 1; }
"$PGBEACON" -s "$SOCK" status

echo
echo "pgbeacon resolve main master  -> $("$PGBEACON" -s "$SOCK" resolve main master)"
echo "pgbeacon resolve main replica -> $("$PGBEACON" -s "$SOCK" resolve main replica)"
echo "pgbeacon resolve main replica -> $("$PGBEACON" -s "$SOCK" resolve main replica)  (round robin)"

"$PGBEACON" -s "$SOCK" watch main >"$DIR/watch.log" 2>&1 &
WATCH_PID=$!

step "Failover: stopping the primary (node0) and promoting node1"
t_stop=$(now_ms)
"$HARNESS" stop "$DIR" 0 fast
t_stopped=$(now_ms)
echo "node0 stopped after $((t_stopped - t_stop)) ms; the daemon now says:"
"$PGBEACON" -s "$SOCK" resolve main master 2>&1 | sed 's/^/    /' || true
"$HARNESS" promote "$DIR" 1
t_promoted=$(now_ms)
echo "node1 promoted (pg_ctl promote -w returned after $((t_promoted - t_stopped)) ms)"

if ! poll 10000 sh -c "[ \"\$('$PGBEACON' -s '$SOCK' resolve main master 2>/dev/null)\" = 127.0.0.1:$P1 ]"; then
	echo "the daemon did not report the new primary within 10 s"
	exit 1
fi
t_seen=$(now_ms)
printf '\033[1mpgbeacond answered the new primary 127.0.0.1:%s %d ms after the promotion finished\033[0m\n' \
	"$P1" $((t_seen - t_promoted))
echo "(each check above runs the pgbeacon CLI as a new process, which adds a few ms)"

step "Role changes pushed to 'pgbeacon watch main'"
poll 2000 grep -q "master=127.0.0.1:$P1" "$DIR/watch.log" || true
sed 's/^/    /' "$DIR/watch.log"

step "Status after the failover"
"$PGBEACON" -s "$SOCK" status

step "What the daemon logged"
sed 's/^/    /' "$DIR/pgbeacond.log"

step "Tearing down"
