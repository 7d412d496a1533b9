#!/bin/sh
# deps.sh - the Debian packages pgbeacon needs to build, test and demo.
#
#   deps.sh check [bench|fuzz|tsan]    exit 0 when every package is
#                                      installed; otherwise print the exact
#                                      install command and exit 1
#   deps.sh install [bench|fuzz|tsan]  install what is missing (as root), or
#                                 print the command and exit 1 (as anyone
#                                 else)
#
# krb5-kdc, krb5-admin-server and krb5-user are MIT Kerberos's KDC,
# kdb5_util, kadmin.local and kinit: it_proxy_gss starts its own KDC in a
# temporary directory (its own krb5.conf, kdc.conf and database), so the
# system's KDC services are never configured or needed; their debconf
# questions get the defaults (DEBIAN_FRONTEND=noninteractive below).
#
# "bench" adds what only `make bench` needs (wrk, the HTTP load tool;
# haproxy and pgbouncer, the connection listener's baselines, never
# started as services);
# "fuzz" what only `make fuzz` needs (clang and its libFuzzer runtime);
# "tsan" what only `make test-tsan` needs (gcc's ThreadSanitizer runtime).
#
# The list is the one place that names them; the Makefile and README
# refer here.
set -eu

PACKAGES="gcc make libevent-dev libpq-dev libconfig-dev check libsystemd-dev
libjson-c-dev pkg-config postgresql man-db python3-psycopg
krb5-kdc krb5-admin-server krb5-user"
BENCH_PACKAGES="wrk haproxy pgbouncer"
FUZZ_PACKAGES="clang libclang-rt-14-dev"
TSAN_PACKAGES="libtsan2"

[ "${2:-}" = bench ] && PACKAGES="$PACKAGES $BENCH_PACKAGES"
[ "${2:-}" = fuzz ] && PACKAGES="$PACKAGES $FUZZ_PACKAGES"
[ "${2:-}" = tsan ] && PACKAGES="$PACKAGES $TSAN_PACKAGES"

missing=""
for p in $PACKAGES; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = "installed" ] || missing="$missing $p"
done
missing=${missing# }

[ -z "$missing" ] && exit 0

case "${1:-check}" in
check)
	echo "pgbeacon: missing Debian packages: $missing" >&2
	echo "pgbeacon: install them with:" >&2
	echo "    sudo apt-get install -y $missing" >&2
	echo "pgbeacon: (or run 'make deps' as root)" >&2
	exit 1
	;;
install)
	if [ "$(id -u)" -ne 0 ]; then
		echo "pgbeacon: missing Debian packages: $missing" >&2
		echo "pgbeacon: run as root, or install them with:" >&2
		echo "    sudo apt-get update && sudo apt-get install -y $missing" >&2
		exit 1
	fi
	echo "pgbeacon: installing $missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
	;;
*)
	echo "usage: $0 check|install [bench|fuzz|tsan]" >&2
	exit 2
	;;
esac
