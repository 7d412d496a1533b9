/*
 * state.h - what pgbeacond must not forget across restarts and reloads:
 * per cluster, its generation and the highest timeline seen (with the
 * host that showed it and the system identifier it belongs to).  See
 * DESIGN.md, "Memory that outlives a probe".
 *
 * The file is text, one line per cluster, written whole on every change:
 *
 *	# comment
 *	pgbeacon-state 1
 *	cluster=main generation=12 system_identifier=7312... timeline=37 timeline_host=db2:5432
 *
 * state_parse() and state_format() are pure (no I/O) and unit-tested;
 * state_load() and state_save() do the file I/O: a save writes a temporary
 * file beside the real one and renames it over the real one, so a crash of
 * the daemon leaves the old file or the new one, never a torn one.  The
 * fsyncs that make it survive a power loss are statesync.h's, off the
 * event loop.
 */
#ifndef PGB_STATE_H
#define PGB_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest cluster name + 1 (config.c allows 63 bytes). */
#define STATE_NAME_MAX	64
/* Room for a "host:port" (TOPO_HOST_NAMELEN). */
#define STATE_HOST_MAX	300
/* Most clusters a file may hold (the file is refused beyond). */
#define STATE_MAX_ENTRIES 4096

/* One cluster's memory. */
struct state_entry {
	char		 name[STATE_NAME_MAX];
	uint64_t	 generation;
	uint64_t	 system_id;	/* 0: unknown */
	uint32_t	 timeline;	/* highest seen; 0: none */
	char		 timeline_host[STATE_HOST_MAX]; /* "" when none */
};

/* The memory of every cluster ever watched.  Owned by the monitor. */
struct state {
	char			*path;	/* owned; NULL: kept in memory only */
	struct state_entry	*entries; /* owned array of n (room for cap) */
	size_t			 n, cap;
	bool			 failing; /* the last save failed (logged once) */
};

/* The outcome of state_load(). */
enum state_load_result {
	STATE_LOADED,		/* read; the entries are the file's */
	STATE_MISSING,		/* no file yet (or no path): no entries */
	STATE_CORRUPT,		/* unreadable or malformed: no entries */
};

/* A new empty state for path (NULL or "": memory only).  NULL on
 * allocation failure. */
struct state *state_new(const char *path) __attribute__((warn_unused_result));
/* Frees st; NULL is a no-op. */
void state_free(struct state *st);

/*
 * Parses text (len bytes, NUL not needed) into st's entries, replacing
 * them.  On error returns -1, leaves st empty and writes "line N: reason"
 * to err.  Unknown keys are ignored (a newer daemon's file); a repeated
 * cluster, a bad number or a missing header is an error.
 */
int state_parse(struct state *st, const char *text, size_t len, char *err,
	size_t errlen) __attribute__((warn_unused_result));

/* st's entries as file text (NUL-terminated, caller frees), or NULL on
 * allocation failure.  Characters of a host that could break a line
 * (spaces, controls) are written as '?'. */
char *state_format(const struct state *st) __attribute__((warn_unused_result));

/* The entry for name, or NULL.  Borrowed until the next state_get(). */
struct state_entry *state_find(struct state *st, const char *name);
/* The entry for name, added (zeroed) when missing; NULL on allocation
 * failure or a name too long.  Borrowed until the next state_get(). */
struct state_entry *state_get(struct state *st, const char *name)
	__attribute__((warn_unused_result));

/* Reads st->path into st; err gets the reason for STATE_CORRUPT. */
enum state_load_result state_load(struct state *st, char *err, size_t errlen);

/* Writes st to st->path atomically (write, rename; no fsync: see
 * statesync.h); 0, or -1 with the reason in err.  A state without a path
 * saves nothing and succeeds. */
int state_save(const struct state *st, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif /* PGB_STATE_H */
