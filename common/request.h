/*
 * request.h - the words of a socket request shared by the daemon's
 * parsers (socket and HTTP) and the library's argument checks: tokens,
 * cluster names, and the table of RESOLVE's options.  Pure.
 */
#ifndef PGB_COMMON_REQUEST_H
#define PGB_COMMON_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"

/*
 * True when the len bytes at s may stand in a request line: printable
 * ASCII, spaces and tabs (which separate its words).  What the daemon
 * takes and the library sends.
 */
bool pgbc_line_text_ok(const char *s, size_t len);

/*
 * True when the len bytes at s are all of A-Z a-z 0-9 _ . - (the
 * characters of a configured cluster name and of a configured host name).
 */
bool pgbc_name_chars_ok(const char *s, size_t len);

/*
 * True when s is usable as one token of a request: 1 to max bytes of
 * printable ASCII without spaces ('!' to '~').
 */
bool pgbc_token_ok(const char *s, size_t max);

/* A cluster name in a request: a token of at most PGBC_CLUSTER_NAME_MAX
 * bytes.  (The configuration narrows the characters further.) */
bool pgbc_cluster_name_ok(const char *s);

/*
 * A cluster name as the configuration (and the state file) may hold it:
 * the len bytes at s are 1 to PGBC_CLUSTER_NAME_MAX of A-Z a-z 0-9 _ . -
 * (a subset of what pgbc_cluster_name_ok() takes).
 */
bool pgbc_config_name_ok(const char *s, size_t len);

/* What fallback= says; the default is the role's own rule. */
enum pgbc_fallback {
	PGBC_FALLBACK_DEFAULT,	/* not given: the role's own rule (master) */
	PGBC_FALLBACK_MASTER,	/* "master": no replica qualifies: master */
	PGBC_FALLBACK_NONE,	/* "none": no replica qualifies: no host */
};

/* The options of RESOLVE (and of the HTTP role endpoints). */
enum pgbc_opt_id {
	PGBC_OPT_MAX_LAG_MS,	/* max_lag_ms=N */
	PGBC_OPT_MAX_LAG_BYTES,	/* max_lag_bytes=N */
	PGBC_OPT_MIN_LSN,	/* min_lsn=X/Y */
	PGBC_OPT_FALLBACK,	/* fallback=master|none */
	PGBC_OPT_COUNT
};

enum pgbc_opt_type {
	PGBC_OPT_INT,		/* a decimal from min to max */
	PGBC_OPT_LSN,		/* an LSN, "X/Y" */
	PGBC_OPT_FALLBACK_KIND,	/* "master" or "none" */
};

/* One option: its names, type, bounds and what a bad value is told. */
struct pgbc_opt {
	enum pgbc_opt_id	 id;
	const char		*name;	/* on the socket and in /v1/resolve */
	const char		*alias;	/* pg-status's HTTP name, or NULL */
	enum pgbc_opt_type	 type;
	int64_t			 min, max;	/* PGBC_OPT_INT only */
	const char		*expect; /* "a number from 0 to ...", ... */
};

/* A parsed value; the member of the option's type is set. */
struct pgbc_opt_value {
	int64_t			 num;
	uint64_t		 lsn;
	enum pgbc_fallback	 fallback;
};

/* The table, indexed by enum pgbc_opt_id. */
extern const struct pgbc_opt pgbc_opts[PGBC_OPT_COUNT];

/* The option named name (its alias too when aliases), or NULL. */
const struct pgbc_opt *pgbc_opt_find(const char *name, bool aliases);

/* Parses val as o's value into *out; false when it is not one (then
 * o->expect says what would be). */
bool pgbc_opt_parse(const struct pgbc_opt *o, const char *val,
	struct pgbc_opt_value *out) __attribute__((warn_unused_result));

/* Writes v as o's value text (what pgbc_opt_parse reads back) as
 * snprintf does. */
int pgbc_opt_format(char *buf, size_t len, const struct pgbc_opt *o,
	const struct pgbc_opt_value *v);

#endif /* PGB_COMMON_REQUEST_H */
