/*
 * proto-internal.h - the client side of the socket protocol of DESIGN.md:
 * parsing reply lines and checking request arguments.  Pure: no I/O, no
 * clock, no allocation.  Also the LSN text form, shared by the library.
 */
#ifndef PGB_PROTO_INTERNAL_H
#define PGB_PROTO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgbeacon.h"

/* What kind of line the daemon sent. */
enum pgbi_reply_kind {
	PGBI_REPLY_BAD,		/* not a line of the protocol */
	PGBI_REPLY_OK,		/* "OK ..."; rest is after "OK " ("" for "OK") */
	PGBI_REPLY_ERR,		/* "ERR <CODE> <text>" */
	PGBI_REPLY_PONG,	/* "PONG" */
	PGBI_REPLY_EVENT,	/* "EVENT ..."; rest is after "EVENT " */
};

/*
 * Classifies line (NUL-terminated, end of line removed).  *rest, when not
 * NULL, is set to what follows the keyword and one space (borrowed from
 * line).
 */
enum pgbi_reply_kind pgbi_proto_classify(const char *line, const char **rest);

/*
 * Parses "ERR <CODE> <text>" into *code and text (at most textlen bytes,
 * truncated, NUL-terminated).  Unknown codes give PGB_ERR_DAEMON with
 * "<CODE>: <text>" in text.  -1 when line is not an ERR line.
 */
int pgbi_proto_parse_err(const char *line, pgb_errcode *code, char *text,
	size_t textlen);

/*
 * Parses "OK host=<h> port=<p> role=<r> generation=<n>" (keys in any
 * order, unknown keys ignored, each known key exactly once) into *out.
 * -1, with a reason in why, on anything else.
 */
int pgbi_proto_parse_resolve(const char *line, pgb_resolved *out, char *why,
	size_t whylen);

/*
 * Parses "EVENT <cluster> generation=<n> master=<host:port|none>" into
 * *ev (resync cleared); other fields (replicas=, since 0.6) are ignored.  -1, with a reason in why, on anything else.
 */
int pgbi_proto_parse_event(const char *line, pgb_event *ev, char *why,
	size_t whylen);

/*
 * The replicas field of an EVENT line ("replicas=h:p,h:p" or
 * "replicas=none", sent since 0.6; unknown fields are ignored, so older
 * libraries read such lines as before): 1 with *list and *len the value
 * inside line ("none" given as an empty list), 0 when the line has no
 * such field (an older daemon, or a list too long for the line), -1 when
 * it is malformed (then to be treated as absent).
 */
int pgbi_proto_event_replicas(const char *line, const char **list,
	size_t *len);
/* 1 when host:port is one of the entries of list (len bytes, as above). */
int pgbi_proto_replicas_has(const char *list, size_t len, const char *host,
	int port);

/*
 * Splits "host:port" (the last colon separates) into host (hostlen bytes)
 * and *port, the inverse of the daemon's topology_host_name(): a host
 * holding ':' comes in brackets ("[::1]:5432") unless it is a socket
 * directory ("/run/pg:5432"); brackets around anything else are part of
 * the name.  -1 when malformed.
 */
int pgbi_proto_parse_hostport(const char *s, size_t len, char *host,
	size_t hostlen, int *port);

/*
 * True when s is usable as one token of a request: non-empty, at most max
 * bytes, no spaces, control characters or non-ASCII.  For options, the
 * same but spaces allowed between key=value tokens (pgbi_proto_options_ok).
 */
bool pgbi_proto_token_ok(const char *s, size_t max);
bool pgbi_proto_options_ok(const char *s, size_t max);

/* Longest role name a request carries ("sync_by_time_and_bytes" fits). */
#define PGBI_ROLE_NAME_MAX	64
/* Longest cluster name the daemon takes in a request (its PROTO_NAME_MAX);
 * PGB_CLUSTER_MAX is only the size of the public structs' field. */
#define PGBI_CLUSTER_NAME_MAX	63

/*
 * True when cluster (at most PGBI_CLUSTER_NAME_MAX bytes) and role (at
 * most PGBI_ROLE_NAME_MAX) are usable as the arguments of a RESOLVE.
 */
bool pgbi_proto_resolve_args_ok(const char *cluster, const char *role);

/* LSN text "X/Y" <-> 64-bit position. */
bool pgbi_lsn_parse(const char *s, uint64_t *out);
void pgbi_lsn_format(uint64_t lsn, char buf[PGB_LSN_MAX]);

/*
 * (client.c) The replicas field of the event pgb_watch_poll returned
 * last: 1 with *list and *len as pgbi_proto_event_replicas gives them,
 * 0 when that event had none.  Valid until the next poll.
 */
int pgbi_watch_replicas(const pgb_watch *w, const char **list, size_t *len);

#endif /* PGB_PROTO_INTERNAL_H */
