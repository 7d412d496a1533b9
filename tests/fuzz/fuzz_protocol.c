/*
 * fuzz_protocol.c - the daemon's socket request parser
 * (protocol_parse_request), against the library's side of the grammar.
 *
 * Properties:
 *  - a request that parses re-formats (protocol_format_request) to a line
 *    that parses to the same request, and formatting that gives the same
 *    line again;
 *  - the library would send it: its cluster, role and options pass the
 *    library's argument checks;
 *  - what the library accepts as a cluster name, the daemon takes in
 *    RESOLVE, STATUS and WATCH (no drift of limits);
 *  - the ERR line the daemon answers to a refused request parses in the
 *    library to the same code and text.
 */
#include <string.h>

#include "common/request.h"

#include "fuzz.h"
#include "protocol.h"
#include "topology.h"
#include "pgbeacon.h"
#include "src/proto-internal.h"

static void
check_same_request(const struct proto_request *a,
    const struct proto_request *b, const char *line)
{
	FUZZ_CHECK(a->cmd == b->cmd, "%s", line);
	FUZZ_CHECK((a->cluster == NULL) == (b->cluster == NULL), "%s", line);
	FUZZ_CHECK(a->cluster == NULL || strcmp(a->cluster, b->cluster) == 0,
	    "%s", line);
	if (a->cmd != PROTO_CMD_RESOLVE)
		return;
	FUZZ_CHECK(a->query.want == b->query.want, "%s", line);
	FUZZ_CHECK(a->query.max_lag_ms == b->query.max_lag_ms, "%s", line);
	FUZZ_CHECK(a->query.max_lag_bytes == b->query.max_lag_bytes, "%s",
	    line);
	FUZZ_CHECK(a->query.has_min_lsn == b->query.has_min_lsn, "%s", line);
	FUZZ_CHECK(!a->query.has_min_lsn || a->query.min_lsn ==
	    b->query.min_lsn, "%s", line);
	FUZZ_CHECK(a->query.fallback == b->query.fallback, "%s", line);
}

/* The daemon's "ERR <CODE> why" reaches the library as (code, why). */
static void
check_error_reply(enum proto_err err, const char *why)
{
	char		reply[PROTO_REPLY_MAX], text[PROTO_REPLY_MAX];
	pgb_errcode	code;
	size_t		n, i;

	n = protocol_format_error(reply, sizeof reply, err, why);
	FUZZ_CHECK(n > 0 && reply[n - 1] == '\n', "%s", reply);
	reply[n - 1] = '\0';
	FUZZ_CHECK(pgbi_proto_parse_err(reply, &code, text, sizeof text) == 0,
	    "%s", reply);
	FUZZ_CHECK(code == (err == PROTO_ERR_BADROLE ? PGB_ERR_BADROLE :
	    PGB_ERR_BADREQ), "%s", reply);
	FUZZ_CHECK(strlen(text) == strlen(why), "'%s' vs '%s'", text, why);
	for (i = 0; why[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)why[i];

		FUZZ_CHECK(text[i] == ((ch < 0x20 || ch == 0x7f) ? ' ' :
		    why[i]), "'%s' vs '%s'", text, why);
	}
}

/* The request the formatter writes for req parses back to req. */
static void
check_round_trip(const struct proto_request *req)
{
	char			line[PROTO_MAX_LINE + 2], again[PROTO_MAX_LINE + 2];
	char			copy[PROTO_MAX_LINE + 2], why[256];
	const char		*opts;
	struct proto_request	req2;
	size_t			n, n2;

	n = protocol_format_request(line, sizeof line, req);
	FUZZ_CHECK(n > 1 && line[n - 1] == '\n', "%s", line);
	line[--n] = '\0';
	memcpy(copy, line, n + 1);
	FUZZ_CHECK(protocol_parse_request(copy, n, &req2, why, sizeof why) ==
	    PROTO_OK, "'%s': %s", line, why);
	check_same_request(req, &req2, line);
	n2 = protocol_format_request(again, sizeof again, &req2);
	FUZZ_CHECK(n2 == n + 1 && memcmp(line, again, n) == 0, "'%s' vs '%s'",
	    line, again);

	/* The library sends the same request from the same arguments. */
	if (req->cmd == PROTO_CMD_RESOLVE) {
		FUZZ_CHECK(pgbi_proto_resolve_args_ok(req->cluster,
		    topology_want_name(req->query.want)), "%s", line);
		opts = line + strlen("RESOLVE ") + strlen(req->cluster) + 1 +
		    strlen(topology_want_name(req->query.want));
		FUZZ_CHECK(pgbi_proto_options_ok(*opts == ' ' ? opts + 1 :
		    opts, 3000), "%s", line);
	} else if (req->cluster != NULL)
		FUZZ_CHECK(pgbc_cluster_name_ok(req->cluster), "%s", line);
}

/* A cluster name the library lets through is one the daemon takes. */
static void
check_library_cluster(const char *name)
{
	static const char *const fmts[] = {
		"RESOLVE %s master", "STATUS %s", "WATCH %s"
	};
	char			line[PROTO_MAX_LINE + 2], sent[PROTO_MAX_LINE + 2];
	char			why[256];
	struct proto_request	req;
	size_t			i;
	int			n;

	if (!pgbi_proto_resolve_args_ok(name, "master"))
		return;
	for (i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
		n = snprintf(line, sizeof line, fmts[i], name);
		FUZZ_CHECK(n > 0 && (size_t)n < sizeof line, "%s", name);
		memcpy(sent, line, (size_t)n + 1);
		FUZZ_CHECK(protocol_parse_request(line, (size_t)n, &req, why,
		    sizeof why) == PROTO_OK, "library sends '%s', daemon: %s",
		    sent, why);
		FUZZ_CHECK(strcmp(req.cluster, name) == 0, "%s", name);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_request	 req;
	enum proto_err		 err;
	char			*line, why[256];

	if (size > PROTO_MAX_LINE + 64)
		return (0);
	line = fuzz_cstr(data, size);
	check_library_cluster(line);

	err = protocol_parse_request(line, size, &req, why, sizeof why);
	if (err == PROTO_OK)
		check_round_trip(&req);
	else {
		FUZZ_CHECK(err == PROTO_ERR_BADREQ || err == PROTO_ERR_BADROLE,
		    "%d", (int)err);
		FUZZ_CHECK(why[0] != '\0', "no reason for error %d", (int)err);
		check_error_reply(err, why);
	}
	free(line);
	return (0);
}
