/*
 * protocol.h - the socket protocol of DESIGN.md ("The socket protocol"):
 * parsing requests and formatting replies.  Pure: no sockets, no clock.
 *
 * Requests are single lines without their end of line.  Every formatted
 * reply is one complete line ending in "\n".
 */
#ifndef PGB_PROTOCOL_H
#define PGB_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/errcodes.h"
#include "common/limits.h"
#include "common/request.h"

#include "topology.h"

struct evbuffer;

/* The limits of common/limits.h, under the names the daemon uses. */
#define PROTO_MAX_LINE PGBC_LINE_MAX		/* a request line, no EOL */
#define PROTO_NAME_MAX PGBC_CLUSTER_NAME_MAX	/* a cluster name */
#define PROTO_MAX_LAG PGBC_LAG_MAX		/* max_lag_ms, max_lag_bytes */
/* Room for any reply but STATUS (which goes to an evbuffer). */
#define PROTO_REPLY_MAX 512

enum proto_cmd {
	PROTO_CMD_RESOLVE,	/* RESOLVE <cluster> <role> [key=value ...] */
	PROTO_CMD_STATUS,	/* STATUS [cluster] */
	PROTO_CMD_WATCH,	/* WATCH [cluster] */
	PROTO_CMD_PING,		/* PING */
	PROTO_CMD_FORGET,	/* FORGET <cluster>: clear its timeline memory */
};

/* Error codes of "ERR <CODE> <text>": those of common/errcodes.h. */
enum proto_err {
	PROTO_OK = PGBC_OK,
	PROTO_ERR_NOHOST = PGBC_ERR_NOHOST,	/* no host holds the role */
	PROTO_ERR_NOCLUSTER = PGBC_ERR_NOCLUSTER, /* no cluster of that name */
	PROTO_ERR_BADROLE = PGBC_ERR_BADROLE,	/* unknown role */
	PROTO_ERR_BADREQ = PGBC_ERR_BADREQ,	/* anything else malformed */
	PROTO_ERR_DENIED = PGBC_ERR_DENIED,	/* the peer may not do that
						 * (FORGET) */
};

struct proto_request {
	enum proto_cmd	 cmd;
	const char	*cluster;	/* points into the parsed line; NULL: all */
	struct topo_query query;	/* RESOLVE only */
};

/*
 * Parses one request line of len bytes (end of line already removed);
 * line must have room for len + 1 bytes (line[len] is set to NUL, as
 * evbuffer_readln() leaves it).
 * Tokens are NUL-terminated in place, so req->cluster borrows from line.
 * Commands are case-insensitive; roles and option keys are not.  Returns
 * PROTO_OK (why then "", when why_len > 0), or PROTO_ERR_BADREQ /
 * PROTO_ERR_BADROLE with a one-line reason in why, cut to why_len.  Embedded NULs, control characters, bytes >= 0x7f (the
 * protocol is ASCII), unknown options, repeated options and out-of-range
 * values are all BADREQ.
 */
enum proto_err protocol_parse_request(char *line, size_t len,
	struct proto_request *req, char *why, size_t why_len)
	__attribute__((warn_unused_result));

/*
 * Writes req back as its canonical request line, "\n" included: the
 * command in upper case, the role by its first name ("master", not
 * "primary"), the options given in the order max_lag_ms, max_lag_bytes,
 * min_lsn, fallback.  Parsing that line gives req again.  Returns the
 * length as the reply formatters below do.
 */
size_t protocol_format_request(char *buf, size_t len,
	const struct proto_request *req);

/* "NOHOST", "NOCLUSTER", "BADROLE", "BADREQ", "DENIED"; "OK" for
 * PROTO_OK (pgbc_err_name()). */
const char *protocol_err_code(enum proto_err err);

/*
 * Sets the RESOLVE option o (from common/request.h's table) of q to the
 * value text val, as the socket and the HTTP parameters both do.
 * *seen, when not NULL, has one bit per option id and refuses a repeat.
 * PROTO_OK, or PROTO_ERR_BADREQ with a one-line reason in why.
 */
enum proto_err protocol_query_option(struct topo_query *q,
	const struct pgbc_opt *o, const char *val, unsigned *seen, char *why,
	size_t why_len) __attribute__((warn_unused_result));

/* True, with its value in *v, when q gives option o (false: not given). */
bool protocol_query_value(const struct topo_query *q,
	const struct pgbc_opt *o, struct pgbc_opt_value *v);

/*
 * Each formatter writes one reply line into buf and returns its length
 * (like snprintf, truncating a too-long line but always ending it with
 * "\n" when len > 1).  The length returned is what was written, never
 * more than len - 1.  A master on an IPv6 address is "[addr]:port".
 */
/* "OK host=<h> port=<p> role=<master|replica> generation=<n>\n" */
size_t protocol_format_resolve(char *buf, size_t len,
	const struct topo_host *h, uint64_t generation);
/* "ERR <CODE> <text>\n"; control characters in text become spaces. */
size_t protocol_format_error(char *buf, size_t len, enum proto_err err,
	const char *text);
/*
 * "EVENT <cluster> generation=<n> master=<host:port|none>
 * replicas=<host:port,...|none>\n": replicas lists the live replicas
 * (role replica), in host order.  The replicas field is left out when it
 * does not fit in len (the line stays whole) or a replica's name holds a
 * ',': a client then learns of replicas by asking.
 */
size_t protocol_format_event(char *buf, size_t len,
	const struct topo_cluster *c);

/*
 * Appends "OK <json>\n" to out: the clusters (all n, or the one named
 * when only is not NULL and n == 1 is what the caller passes) with name,
 * generation, master ("host:port" or null), why_no_master, system_identifier,
 * and hosts with host, port, alive, role, lag_bytes, lag_ms, replay_lsn,
 * current_lsn (the master's), timeline, last_ok_ms_ago, fails (failed
 * probes in a row), error and why.  Unknown values are null.  now_ms is
 * the monotonic clock, to age last_ok_ms.  Returns -1 when out could not
 * grow.
 */
int protocol_format_status(struct evbuffer *out,
	struct topo_cluster *const *clusters, size_t n, int64_t now_ms);

/* One connection listener's figures (see proxy.h).  Strings borrowed. */
struct proto_listener_stats {
	const char	*cluster;
	const char	*address;
	const char	*role;
	uint64_t	 clients;	/* relayed now */
	uint64_t	 held;		/* waiting for a host, or connecting */
	uint64_t	 relayed_total;	/* connections relayed since start */
	uint64_t	 fenced_total;	/* connections closed by fencing */
	uint64_t	 refused_total;	/* clients refused or closed at once */
	uint64_t	 bytes_up;	/* client to server */
	uint64_t	 bytes_down;	/* server to client */
};

/*
 * protocol_format_status() with, when nls > 0, a "listeners" array after
 * "clusters": cluster, address, role, clients, held, relayed_total,
 * fenced_total, refused_total, bytes_from_clients, bytes_to_clients.
 */
int protocol_format_status_listeners(struct evbuffer *out,
	struct topo_cluster *const *clusters, size_t n, int64_t now_ms,
	const struct proto_listener_stats *ls, size_t nls);

/* Appends s to out as a JSON string literal with quotes.  -1 on failure. */
int protocol_json_string(struct evbuffer *out, const char *s);

#endif /* PGB_PROTOCOL_H */
