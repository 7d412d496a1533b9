/*
 * proto.c - parsing the daemon's reply lines; see proto-internal.h.  The
 * grammar's words (numbers, host:port, error codes, limits) are those of
 * common/, which the daemon uses too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errcodes.h"
#include "common/hostport.h"
#include "common/limits.h"
#include "common/num.h"
#include "common/request.h"

#include "proto-internal.h"

/* The public structs' fields hold whatever the grammar accepts. */
_Static_assert(PGB_CLUSTER_MAX > PGBC_CLUSTER_NAME_MAX, "PGB_CLUSTER_MAX");
_Static_assert(PGB_HOST_MAX > PGBC_HOST_LEN_MAX, "PGB_HOST_MAX");
_Static_assert(PGB_LSN_MAX >= PGBC_LSN_STRLEN, "PGB_LSN_MAX");

static int	proto_word(const char *line, const char *word, const char **rest);
static void	proto_copy(char *dst, size_t dstlen, const char *s, size_t len);

/* 1 when line is word alone or word followed by a space (rest after it). */
static int
proto_word(const char *line, const char *word, const char **rest)
{
	size_t	n = strlen(word);

	if (strncmp(line, word, n) != 0)
		return (0);
	if (line[n] == '\0') {
		*rest = line + n;
		return (1);
	}
	if (line[n] == ' ') {
		*rest = line + n + 1;
		return (1);
	}
	return (0);
}

/* Copies len bytes of s, truncated to dstlen - 1, NUL-terminated. */
static void
proto_copy(char *dst, size_t dstlen, const char *s, size_t len)
{
	if (dstlen == 0)
		return;
	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

enum pgbi_reply_kind
pgbi_proto_classify(const char *line, const char **rest)
{
	const char	*r = NULL;
	enum pgbi_reply_kind kind = PGBI_REPLY_BAD;

	if (line == NULL)
		return (PGBI_REPLY_BAD);
	if (proto_word(line, "OK", &r))
		kind = PGBI_REPLY_OK;
	else if (proto_word(line, "ERR", &r))
		kind = PGBI_REPLY_ERR;
	else if (strcmp(line, "PONG") == 0) {
		r = line + 4;
		kind = PGBI_REPLY_PONG;
	} else if (proto_word(line, "EVENT", &r))
		kind = PGBI_REPLY_EVENT;
	if (rest != NULL)
		*rest = r;
	return (kind);
}

int
pgbi_proto_parse_err(const char *line, pgb_errcode *code, char *text,
    size_t textlen)
{
	const char	*rest, *sp, *msg;
	size_t		 n;
	enum pgbc_err	 err;

	if (pgbi_proto_classify(line, &rest) != PGBI_REPLY_ERR)
		return (-1);
	sp = strchr(rest, ' ');
	n = sp != NULL ? (size_t)(sp - rest) : strlen(rest);
	msg = sp != NULL ? sp + 1 : "";
	if (n == 0)
		return (-1);
	if (pgbc_err_parse(rest, n, &err)) {
		switch (err) {
		case PGBC_ERR_NOHOST:
			*code = PGB_ERR_NOHOST;
			break;
		case PGBC_ERR_NOCLUSTER:
			*code = PGB_ERR_NOCLUSTER;
			break;
		case PGBC_ERR_BADROLE:
			*code = PGB_ERR_BADROLE;
			break;
		case PGBC_ERR_BADREQ:
			*code = PGB_ERR_BADREQ;
			break;
		case PGBC_OK:
		case PGBC_ERR_DENIED:
			/* No pgb_errcode of its own: PGB_ERR_DAEMON below,
			 * "DENIED: <text>" as pgbeacon.h documents. */
			goto daemon;
		}
		proto_copy(text, textlen, msg, strlen(msg));
		return (0);
	}
daemon:
	*code = PGB_ERR_DAEMON;
	if (textlen > 0)
		snprintf(text, textlen, "%.*s: %s", (int)n, rest, msg);
	return (0);
}

int
pgbi_proto_parse_hostport(const char *s, size_t len, char *host,
    size_t hostlen, int *port)
{
	struct pgbc_hostport	hp;

	if (!pgbc_hostport_parse(s, len, PGBC_HP_ALLOW_DIR, &hp, NULL) ||
	    hp.hostlen >= hostlen)
		return (-1);
	memcpy(host, hp.host, hp.hostlen);
	host[hp.hostlen] = '\0';
	*port = hp.port;
	return (0);
}

int
pgbi_proto_parse_resolve(const char *line, pgb_resolved *out, char *why,
    size_t whylen)
{
	const char	*rest, *p, *end, *eq;
	pgb_resolved	 r;
	int		 seen_host = 0, seen_port = 0, seen_role = 0, seen_gen = 0;
	size_t		 klen, vlen, i;
	uint64_t	 v;
	int		 port;

	if (pgbi_proto_classify(line, &rest) != PGBI_REPLY_OK) {
		snprintf(why, whylen, "not an OK reply");
		return (-1);
	}
	memset(&r, 0, sizeof r);
	for (p = rest; *p != '\0'; p = end) {
		if (*p == ' ') {
			snprintf(why, whylen, "empty field");
			return (-1);
		}
		end = strchr(p, ' ');
		if (end == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL || eq == p || eq + 1 == end) {
			snprintf(why, whylen, "field is not key=value");
			return (-1);
		}
		klen = (size_t)(eq - p);
		vlen = (size_t)(end - eq - 1);
		eq++;
		for (i = 0; i < vlen; i++) {
			if ((unsigned char)eq[i] < ' ' ||
			    (unsigned char)eq[i] >= 0x7f) {
				snprintf(why, whylen, "control character");
				return (-1);
			}
		}
		if (klen == 4 && strncmp(p, "host", 4) == 0) {
			if (seen_host++ || vlen >= sizeof r.host) {
				snprintf(why, whylen, "bad host");
				return (-1);
			}
			memcpy(r.host, eq, vlen);
			r.host[vlen] = '\0';
		} else if (klen == 4 && strncmp(p, "port", 4) == 0) {
			if (seen_port++ || !pgbc_parse_port(eq, vlen, &port)) {
				snprintf(why, whylen, "bad port");
				return (-1);
			}
			r.port = port;
		} else if (klen == 4 && strncmp(p, "role", 4) == 0) {
			if (seen_role++ || vlen >= sizeof r.role) {
				snprintf(why, whylen, "bad role");
				return (-1);
			}
			memcpy(r.role, eq, vlen);
			r.role[vlen] = '\0';
		} else if (klen == 10 && strncmp(p, "generation", 10) == 0) {
			if (seen_gen++ ||
			    !pgbc_parse_u64(eq, vlen, UINT64_MAX, &v)) {
				snprintf(why, whylen, "bad generation");
				return (-1);
			}
			r.generation = v;
		}
		if (*end == ' ')
			end++;
	}
	if (!seen_host || !seen_port || !seen_role || !seen_gen) {
		snprintf(why, whylen, "missing %s", !seen_host ? "host" :
		    !seen_port ? "port" : !seen_role ? "role" : "generation");
		return (-1);
	}
	*out = r;
	return (0);
}

int
pgbi_proto_parse_event(const char *line, pgb_event *ev, char *why,
    size_t whylen)
{
	const char	*rest, *sp, *p, *end;
	pgb_event	 e;
	size_t		 n;
	uint64_t	 v;
	int		 seen_gen = 0, seen_master = 0;

	if (pgbi_proto_classify(line, &rest) != PGBI_REPLY_EVENT) {
		snprintf(why, whylen, "not an EVENT line");
		return (-1);
	}
	memset(&e, 0, sizeof e);
	sp = strchr(rest, ' ');
	if (sp == NULL || sp == rest) {
		snprintf(why, whylen, "missing cluster");
		return (-1);
	}
	n = (size_t)(sp - rest);
	if (n > PGBC_CLUSTER_NAME_MAX) {
		snprintf(why, whylen, "cluster name too long");
		return (-1);
	}
	memcpy(e.cluster, rest, n);
	e.cluster[n] = '\0';
	if (!pgbc_cluster_name_ok(e.cluster)) {
		snprintf(why, whylen, "bad cluster name");
		return (-1);
	}
	for (p = sp + 1; *p != '\0'; p = end) {
		end = strchr(p, ' ');
		if (end == NULL)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (n > 11 && strncmp(p, "generation=", 11) == 0) {
			if (seen_gen++ || !pgbc_parse_u64(p + 11, n - 11,
			    UINT64_MAX, &v)) {
				snprintf(why, whylen, "bad generation");
				return (-1);
			}
			e.generation = v;
		} else if (n > 7 && strncmp(p, "master=", 7) == 0) {
			if (seen_master++) {
				snprintf(why, whylen, "master given twice");
				return (-1);
			}
			if (n == 11 && strncmp(p + 7, "none", 4) == 0)
				e.has_master = 0;
			else if (pgbi_proto_parse_hostport(p + 7, n - 7,
			    e.master_host, sizeof e.master_host,
			    &e.master_port) == -1) {
				snprintf(why, whylen, "bad master");
				return (-1);
			} else
				e.has_master = 1;
		} else if (n == 0) {
			snprintf(why, whylen, "empty field");
			return (-1);
		}
		if (*end == ' ')
			end++;
	}
	if (!seen_gen || !seen_master) {
		snprintf(why, whylen, "missing %s",
		    !seen_gen ? "generation" : "master");
		return (-1);
	}
	*ev = e;
	return (0);
}

int
pgbi_proto_event_replicas(const char *line, const char **list, size_t *len)
{
	const char	*rest, *p, *end, *e, *comma;
	char		 host[PGB_HOST_MAX];
	size_t		 n;
	int		 port;

	if (pgbi_proto_classify(line, &rest) != PGBI_REPLY_EVENT ||
	    (rest = strchr(rest, ' ')) == NULL)	/* after the cluster */
		return (-1);
	for (p = rest + 1; *p != '\0'; p = *end == ' ' ? end + 1 : end) {
		end = strchr(p, ' ');
		if (end == NULL)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (n < 9 || strncmp(p, "replicas=", 9) != 0)
			continue;
		p += 9;
		n -= 9;
		if (n == 4 && strncmp(p, "none", 4) == 0) {
			*list = p;
			*len = 0;
			return (1);
		}
		if (n == 0 || p[n - 1] == ',')
			return (-1);
		for (e = p; e < end; e = comma + 1) {
			comma = memchr(e, ',', (size_t)(end - e));
			if (comma == NULL)
				comma = end;
			if (pgbi_proto_parse_hostport(e, (size_t)(comma - e),
			    host, sizeof host, &port) == -1)
				return (-1);
		}
		*list = p;
		*len = n;
		return (1);
	}
	return (0);
}

int
pgbi_proto_replicas_has(const char *list, size_t len, const char *host,
    int port)
{
	const char	*e, *end = list + len, *comma;
	char		 h[PGB_HOST_MAX];
	int		 p;

	for (e = list; e < end; e = comma + 1) {
		comma = memchr(e, ',', (size_t)(end - e));
		if (comma == NULL)
			comma = end;
		if (pgbi_proto_parse_hostport(e, (size_t)(comma - e), h,
		    sizeof h, &p) == 0 && p == port && strcmp(h, host) == 0)
			return (1);
	}
	return (0);
}

bool
pgbi_proto_options_ok(const char *s, size_t max)
{
	size_t	len;

	if (s == NULL)
		return (true);
	len = strnlen(s, max + 1);
	return (len <= max && pgbc_line_text_ok(s, len));
}

bool
pgbi_proto_resolve_args_ok(const char *cluster, const char *role)
{
	return (pgbc_cluster_name_ok(cluster) &&
	    pgbc_token_ok(role, PGBC_ROLE_NAME_MAX));
}

int
pgbi_proto_format_resolve(char *buf, size_t len, const char *cluster,
    const char *role, const char *options)
{
	int	n;

	if (!pgbi_proto_resolve_args_ok(cluster, role) ||
	    !pgbi_proto_options_ok(options, PGBC_LINE_MAX))
		return (-1);
	n = snprintf(buf, len, "RESOLVE %s %s%s%s", cluster, role,
	    options != NULL && *options != '\0' ? " " : "",
	    options != NULL ? options : "");
	if (n < 0 || (size_t)n > PGBC_LINE_MAX || (size_t)n >= len)
		return (-2);
	return (0);
}
