# pgbeacon - build, test, install, demo, bench.
#
#   make            pgbeacond, the pgbeacon CLI, libpgbeacon, the webapp example
#   make deps       install the missing Debian packages (scripts/deps.sh)
#   make test       install missing packages, build, run every test
#   make tests      build the test binaries without running them
#   make test-asan  the same suite under AddressSanitizer + LeakSanitizer
#   make test-tsan  the library's threaded tests under ThreadSanitizer
#   make demo       a throwaway cluster, the daemon and a live failover
#   make bench      the figures of README.md, each beside a baseline
#   make fuzz       every libFuzzer target for FUZZ_SECONDS (60) each, clang
#   make fuzz-smoke the same for FUZZ_SMOKE_SECONDS (10) each, as in CI
#   make mutate     mutation testing (slow; MUTATE_FILES=, MUTATE_MAX=)
#   make soak       the chaos soak, SOAK_SECONDS (600), SOAK_BUILD (build)
#   make install    PREFIX, DESTDIR, BINDIR, SBINDIR, LIBDIR, MANDIR, ... honoured
#   make uninstall  remove what install put there (not the configuration)
#   make clean      remove build/, build-asan/, build-tsan/ and build-fuzz/
#   CFLAGS=...      the user's flags (default -O2 -g), kept apart: the build's
#                   own (-std, warnings, -MMD, pkg-config) are REAL_CFLAGS
#   USE_WERROR=0    build without -Werror, for packagers (1, the default, is
#                   for development, CI and make test)

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
UNITDIR    ?= $(LIBDIR)/systemd/system
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DESTDIR    ?=

CC      ?= cc
BUILD   ?= build
SANITIZE ?=

# The one version: PGB_VERSION_MAJOR/MINOR/PATCH of client-lib/pgbeacon.h
# (the daemon, the CLI and the library print PGB_VERSION_STRING).
VERSION       := $(shell sed -n 's/^\#define PGB_VERSION_\(MAJOR\|MINOR\|PATCH\)[[:space:]]*\([0-9]*\).*/\2/p' \
	client-lib/pgbeacon.h | paste -sd.)
SOVERSION     := 1

# pkg-config runs once, when the Makefile is read.  The packages are
# checked (scripts/deps.sh) only before the first compile of a build
# directory: see $(DEPS_OK).
PKGS := libevent libpq libconfig libsystemd json-c check
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)

USE_WERROR ?= 1
WARN := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wwrite-strings -Wundef -Wshadow -Wno-format-nonliteral
ifeq ($(USE_WERROR),1)
WARN += -Werror
endif
CFLAGS ?= -O2 -g
REAL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP $(PKG_CFLAGS) $(CFLAGS)
REAL_LDFLAGS = $(LDFLAGS)
ifneq ($(SANITIZE),)
REAL_CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -O1
REAL_LDFLAGS += -fsanitize=$(SANITIZE)
endif

# Nothing calls evthread_use_pthreads(): libevent_pthreads is not linked.
LIBS_DAEMON := $(shell pkg-config --libs libevent libpq libconfig libsystemd 2>/dev/null) -lm
LIBS_CLIENT := $(shell pkg-config --libs libevent libpq 2>/dev/null) -lpthread
LIBS_EVENT  := $(shell pkg-config --libs libevent 2>/dev/null)
LIBS_CLI    := $(shell pkg-config --libs json-c 2>/dev/null)
LIBS_CHECK  := $(shell pkg-config --libs check 2>/dev/null)

# --- common/: the protocol grammar, in the daemon and in the library --------
COMMON_SRC  := $(wildcard common/*.c)

# --- daemon -----------------------------------------------------------
DAEMON_SRC  := $(wildcard daemon/*.c)
DAEMON_OBJ  := $(DAEMON_SRC:%.c=$(BUILD)/%.o) $(COMMON_SRC:%.c=$(BUILD)/%.o)
DAEMON_CORE := $(filter-out $(BUILD)/daemon/main.o,$(DAEMON_OBJ))

# --- client library and CLI ---------------------------------------------
LIB_SRC    := $(wildcard client-lib/src/*.c) $(COMMON_SRC)
LIB_PIC    := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB_SO     := $(BUILD)/libpgbeacon.so.$(SOVERSION)
LIB_A      := $(BUILD)/libpgbeacon.a
CLI_SRC    := $(wildcard client-lib/cli/*.c)
CLI_OBJ    := $(CLI_SRC:%.c=$(BUILD)/%.o)

# --- tests ----------------------------------------------------------------
UNIT_SRC   := $(wildcard tests/unit/check_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
ITSUP_SRC  := $(wildcard tests/integration/support/*.c)
ITSUP_OBJ  := $(ITSUP_SRC:%.c=$(BUILD)/%.o)
IT_SRC     := $(wildcard tests/integration/it_*.c)
IT_BIN     := $(IT_SRC:tests/integration/%.c=$(BUILD)/tests/%)
# the fault relay the integration tests and benchmarks start
RELAY      := $(BUILD)/tests/faultrelay
# An LD_PRELOAD fault (a slow disk), built without sanitizers: loaded into
# an ASan daemon with verify_asan_link_order=0.
FSYNCGATE  := $(BUILD)/tests/fsyncgate.so
# the slow DNS server of the event-driven API's host-name tests
SLOWDNS    := $(BUILD)/tests/slowdns
BENCH_SRC  := $(wildcard bench/*_bench.c)
BENCH_BIN  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
BENCHCOM_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard bench/common/*.c))

# --- fuzzing (built by clang in build-fuzz, see tests/fuzz/run.sh) ----------
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_CC    ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_MAKE   = $(MAKE) --no-print-directory BUILD=build-fuzz CC=$(FUZZ_CC) \
	SANITIZE=fuzzer-no-link,address,undefined

# --- examples -------------------------------------------------------------
WEBAPP_SRC := $(wildcard examples/webapp/*.c)
WEBAPP_OBJ := $(WEBAPP_SRC:%.c=$(BUILD)/eobj/%.o)
WEBAPP     := $(BUILD)/examples/webapp

BINS := $(BUILD)/pgbeacond $(BUILD)/pgbeacon $(LIB_SO) $(LIB_A) $(BUILD)/pgbeacon.pc

.PHONY: all deps test test-asan test-tsan tests demo bench install \
	uninstall clean help fuzz fuzz-smoke fuzz-targets mutate soak
all: $(BINS) $(WEBAPP)

help:
	@sed -n '3,/^$$/s/^# //p' Makefile

deps:
	@scripts/deps.sh install

# Checked once per build directory, before its first compile: a missing
# package is named with the command that installs it, rather than
# showing up as a missing header.
DEPS_OK := $(BUILD)/.deps-ok
$(DEPS_OK): scripts/deps.sh
	@scripts/deps.sh check
	@mkdir -p $(@D)
	@touch $@

$(BUILD)/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(REAL_CFLAGS) -I. -Idaemon -Iclient-lib -c -o $@ $<

$(BUILD)/pic/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(REAL_CFLAGS) -fPIC -fvisibility=hidden -I. -Iclient-lib -c -o $@ $<

$(BUILD)/pgbeacond: $(DAEMON_OBJ)
	$(CC) $(REAL_LDFLAGS) -o $@ $^ $(LIBS_DAEMON)

$(LIB_SO): $(LIB_PIC) client-lib/libpgbeacon.map
	$(CC) $(REAL_LDFLAGS) -shared -Wl,-soname,libpgbeacon.so.$(SOVERSION) \
		-Wl,--version-script=client-lib/libpgbeacon.map -o $@ $(LIB_PIC) $(LIBS_CLIENT)
	ln -sf libpgbeacon.so.$(SOVERSION) $(BUILD)/libpgbeacon.so

$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/pgbeacon: $(CLI_OBJ) $(LIB_A)
	$(CC) $(REAL_LDFLAGS) -o $@ $(CLI_OBJ) $(LIB_A) $(LIBS_CLI) $(LIBS_CLIENT)

# Objects apart: $(BUILD)/examples/webapp is the program itself.
$(BUILD)/eobj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(REAL_CFLAGS) -Iclient-lib -c -o $@ $<

$(WEBAPP): $(WEBAPP_OBJ) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(REAL_LDFLAGS) -o $@ $(WEBAPP_OBJ) $(LIB_A) $(LIBS_CLIENT)

# The installed .pc is made at install time, from the variables of that
# call; this one, for the default PREFIX, is only a convenience.  A LIBDIR
# or INCLUDEDIR under PREFIX is written relative to ${prefix}, so that
# pkg-config --define-variable=prefix=... moves them along; one elsewhere
# is written as it is.
PC_REL = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(call PC_REL,$(LIBDIR))|; s|@INCLUDEDIR@|$(call PC_REL,$(INCLUDEDIR))|; s|@VERSION@|$(VERSION)|'
$(BUILD)/pgbeacon.pc: client-lib/pgbeacon.pc.in Makefile
	@mkdir -p $(@D)
	$(PC_SED) $< > $@

$(BUILD)/tests/check_%: $(BUILD)/tests/unit/check_%.o $(DAEMON_CORE) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(REAL_LDFLAGS) -o $@ $^ $(LIBS_CHECK) $(LIBS_DAEMON) $(LIBS_CLIENT) $(LIBS_CLI)

$(BUILD)/tests/it_%: $(BUILD)/tests/integration/it_%.o $(ITSUP_OBJ) $(LIB_A) | $(RELAY) $(FSYNCGATE) $(SLOWDNS)
	@mkdir -p $(@D)
	$(CC) $(REAL_LDFLAGS) -o $@ $^ $(LIBS_CHECK) $(LIBS_CLIENT) $(LIBS_CLI)

$(FSYNCGATE): tests/harness/fsyncgate.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra $(if $(filter 1,$(USE_WERROR)),-Werror) \
	    -O2 -fPIC -shared -o $@ $< -ldl

$(RELAY): $(BUILD)/tests/harness/faultrelay.o
	@mkdir -p $(@D)
	$(CC) $(REAL_LDFLAGS) -o $@ $^ $(LIBS_EVENT)

$(SLOWDNS): $(BUILD)/tests/harness/slowdns.o
	@mkdir -p $(@D)
	$(CC) $(REAL_LDFLAGS) -o $@ $^ $(LIBS_EVENT)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BENCHCOM_OBJ) $(ITSUP_OBJ) $(LIB_A) | $(RELAY)
	@mkdir -p $(@D)
	$(CC) $(REAL_LDFLAGS) -o $@ $^ $(LIBS_CLIENT) $(LIBS_CLI) -lm

$(BUILD)/soak: $(BUILD)/tests/soak/soak.o $(ITSUP_OBJ) $(LIB_A) | $(RELAY)
	@mkdir -p $(@D)
	$(CC) $(REAL_LDFLAGS) -o $@ $^ $(LIBS_CLIENT) $(LIBS_CLI)

tests: all $(UNIT_BIN) $(IT_BIN)

# Built with SANITIZE=fuzzer-no-link,...: the link adds libFuzzer's main.
$(BUILD)/fuzz/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(DAEMON_CORE) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(REAL_LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS_DAEMON) $(LIBS_CLIENT)

fuzz-targets: $(FUZZ_BIN)

# The test binaries' own objects are kept: make mutate links them.
.SECONDARY: $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.o) \
	$(IT_SRC:tests/integration/%.c=$(BUILD)/tests/integration/%.o)

# Mutation testing (tests/mutate/mutate.py): slow, not part of make test.
MUTATE_IT := $(BUILD)/tests/it_lib_session $(BUILD)/tests/it_lib_mutants \
	$(BUILD)/tests/it_lib_async \
	$(BUILD)/tests/it_lib_client
mutate: all $(UNIT_BIN) $(MUTATE_IT)
	@BUILD=$(BUILD) MUTATE_CC='$(CC)' MUTATE_SANITIZE='$(SANITIZE)' \
	 MUTATE_CFLAGS='-std=c11 -D_GNU_SOURCE $(PKG_CFLAGS)' \
	 MUTATE_LIBS='$(LIBS_CHECK) $(LIBS_DAEMON) $(LIBS_CLIENT) $(LIBS_CLI)' \
	 python3 tests/mutate/mutate.py

# test, test-asan, demo and bench install what is missing first, then run
# make again so that pkg-config sees the new packages.
test:
	@scripts/deps.sh install
	@$(MAKE) --no-print-directory tests
	@BUILD=$(BUILD) tests/run.sh $(UNIT_BIN) $(IT_BIN)

test-asan:
	@scripts/deps.sh install
	@$(MAKE) --no-print-directory BUILD=build-asan SANITIZE=address,undefined tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	 BUILD=build-asan tests/run.sh \
		$(UNIT_BIN:$(BUILD)/%=build-asan/%) $(IT_BIN:$(BUILD)/%=build-asan/%)

# The tests where threads share a pgb_db (blocking threads, an event
# loop, the cancel thread), built apart with -fsanitize=thread.
TSAN_TESTS := it_lib_pools it_lib_session it_lib_failover it_lib_async

test-tsan:
	@scripts/deps.sh install tsan
	@$(MAKE) --no-print-directory BUILD=build-tsan SANITIZE=thread \
		build-tsan/pgbeacond build-tsan/libpgbeacon.so.$(SOVERSION) \
		$(TSAN_TESTS:%=build-tsan/tests/%)
	@TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	 BUILD=build-tsan tests/run.sh $(TSAN_TESTS:%=build-tsan/tests/%)

demo:
	@scripts/deps.sh install
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/demo.sh

bench:
	@scripts/deps.sh install bench
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@BUILD=$(BUILD) bench/run.sh

# The chaos soak (tests/soak/soak.c): SOAK_SECONDS, the daemon of
# SOAK_BUILD (build, or build-asan for one under ASan).
SOAK_SECONDS ?= 600
SOAK_BUILD ?= build
soak:
	@scripts/deps.sh install
	@$(MAKE) --no-print-directory all $(BUILD)/soak
	@if [ "$(SOAK_BUILD)" = build-asan ]; then $(MAKE) --no-print-directory \
		BUILD=build-asan SANITIZE=address,undefined build-asan/pgbeacond; \
	elif [ "$(SOAK_BUILD)" != "$(BUILD)" ]; then $(MAKE) --no-print-directory \
		BUILD=$(SOAK_BUILD) $(SOAK_BUILD)/pgbeacond; fi
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	 PGBEACOND=$(CURDIR)/$(SOAK_BUILD)/pgbeacond SOAK_SECONDS=$(SOAK_SECONDS) \
	 $(BUILD)/soak

fuzz:
	@scripts/deps.sh install fuzz
	@$(FUZZ_MAKE) fuzz-targets
	@tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

fuzz-smoke:
	@scripts/deps.sh install fuzz
	@$(FUZZ_MAKE) fuzz-targets
	@tests/fuzz/run.sh build-fuzz $(FUZZ_SMOKE_SECONDS)

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
		$(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/pgbeacon $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BUILD)/pgbeacond $(DESTDIR)$(SBINDIR)/pgbeacond
	for m in man1/pgbeacon.1 man3/libpgbeacon.3 man5/pgbeacon.conf.5 \
		man8/pgbeacond.8; do \
		sed 's|@VERSION@|$(VERSION)|g' docs/man/$${m#*/} > $(DESTDIR)$(MANDIR)/$$m && \
		chmod 0644 $(DESTDIR)$(MANDIR)/$$m || exit 1; done
	install -m 0755 $(BUILD)/pgbeacon $(DESTDIR)$(BINDIR)/pgbeacon
	install -m 0755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/libpgbeacon.so.$(VERSION)
	ln -sf libpgbeacon.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libpgbeacon.so.$(SOVERSION)
	ln -sf libpgbeacon.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libpgbeacon.so
	install -m 0644 $(LIB_A) $(DESTDIR)$(LIBDIR)/libpgbeacon.a
	install -m 0644 client-lib/pgbeacon.h $(DESTDIR)$(INCLUDEDIR)/pgbeacon.h
	$(PC_SED) client-lib/pgbeacon.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/pgbeacon.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/pgbeacon.pc
	sed -e 's|/usr/local/sbin/|$(SBINDIR)/|g; s| /etc/pgbeacon/| $(SYSCONFDIR)/pgbeacon/|g' \
		systemd/pgbeacon.service > $(DESTDIR)$(UNITDIR)/pgbeacon.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/pgbeacon.service
	@# The daemon runs as user pgbeacon and must read the file (0640).
	[ -e $(DESTDIR)$(SYSCONFDIR)/pgbeacon/pgbeacon.conf ] || { \
		install -m 0640 conf/pgbeacon.conf $(DESTDIR)$(SYSCONFDIR)/pgbeacon/pgbeacon.conf && \
		{ chgrp pgbeacon $(DESTDIR)$(SYSCONFDIR)/pgbeacon/pgbeacon.conf 2>/dev/null || \
		echo "make install: no group pgbeacon yet: run 'chgrp pgbeacon $(SYSCONFDIR)/pgbeacon/pgbeacon.conf' once it exists"; }; }

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/pgbeacond $(DESTDIR)$(BINDIR)/pgbeacon \
		$(DESTDIR)$(LIBDIR)/libpgbeacon.so* $(DESTDIR)$(LIBDIR)/libpgbeacon.a \
		$(DESTDIR)$(INCLUDEDIR)/pgbeacon.h $(DESTDIR)$(PKGCONFIGDIR)/pgbeacon.pc \
		$(DESTDIR)$(UNITDIR)/pgbeacon.service \
		$(DESTDIR)$(MANDIR)/man1/pgbeacon.1 $(DESTDIR)$(MANDIR)/man3/libpgbeacon.3 \
		$(DESTDIR)$(MANDIR)/man5/pgbeacon.conf.5 $(DESTDIR)$(MANDIR)/man8/pgbeacond.8

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
