/*
 * proto-internal.h - the client side of the socket protocol of DESIGN.md:
 * parsing reply lines and checking request arguments.  Pure: no I/O, no
 * clock, no allocation.  The words of the grammar (numbers, host:port,
 * LSNs, error codes, role names, limits) are in common/, shared with the
 * daemon.
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
 * *ev (resync cleared); other fields (replicas=) are ignored.  -1, with a
 * reason in why, on anything else.
 */
int pgbi_proto_parse_event(const char *line, pgb_event *ev, char *why,
	size_t whylen);

/*
 * The replicas field of an EVENT line ("replicas=h:p,h:p" or
 * "replicas=none"; unknown fields are ignored, so older
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
 * Splits "host:port" (common/hostport.h's grammar, socket directories
 * allowed) into host (hostlen bytes, brackets removed) and *port.  -1
 * when malformed or when the host does not fit.
 */
int pgbi_proto_parse_hostport(const char *s, size_t len, char *host,
	size_t hostlen, int *port);

/*
 * True when s (NULL: none) is usable as the options of a request: at most
 * max bytes of what a request line may hold (pgbc_line_text_ok()).
 * Tokens themselves are checked with common/request.h's pgbc_token_ok().
 */
bool pgbi_proto_options_ok(const char *s, size_t max);

/*
 * True when cluster (pgbc_cluster_name_ok(): at most PGBC_CLUSTER_NAME_MAX
 * bytes; PGB_CLUSTER_MAX is only the size of the public structs' field)
 * and role (a token of at most PGBC_ROLE_NAME_MAX) are usable as the
 * arguments of a RESOLVE.
 */
bool pgbi_proto_resolve_args_ok(const char *cluster, const char *role);

/*
 * Writes "RESOLVE <cluster> <role>[ <options>]" (no end of line) into buf,
 * of len bytes.  0, or -1 when an argument is unusable (see above), -2
 * when the line would be longer than the daemon takes (PGBC_LINE_MAX) or
 * than buf.
 */
int pgbi_proto_format_resolve(char *buf, size_t len, const char *cluster,
	const char *role, const char *options);

/*
 * (client.c) The replicas field of the event pgb_watch_poll returned
 * last: 1 with *list and *len as pgbi_proto_event_replicas gives them,
 * 0 when that event had none.  Valid until the next poll.
 */
int pgbi_watch_replicas(const pgb_watch *w, const char **list, size_t *len);

#endif /* PGB_PROTO_INTERNAL_H */
