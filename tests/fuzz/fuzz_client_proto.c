/*
 * fuzz_client_proto.c - the library's parser of the daemon's reply and
 * event lines (client-lib/src/proto.c), against the daemon's formatters.
 *
 * Properties:
 *  - nothing the daemon could send crashes the parser, and what it
 *    accepts is sane (ports 1..65535, hosts without spaces or controls);
 *  - a RESOLVE reply or an EVENT it accepts, formatted again by the
 *    daemon (protocol_format_resolve, protocol_format_event), parses to
 *    the same values: daemon format -> library parse is a round trip;
 *  - an ERR line with a known code, formatted again by the daemon,
 *    parses to the same code and text;
 *  - a host:port it splits, joined again by the daemon
 *    (topology_host_name), splits the same way.
 */
#include <string.h>

#include "common/request.h"

#include "fuzz.h"
#include "protocol.h"
#include "topology.h"
#include "pgbeacon.h"
#include "src/proto-internal.h"

static void
check_host(const char *host, int port, const char *line)
{
	size_t	i;

	FUZZ_CHECK(host[0] != '\0', "%s", line);
	FUZZ_CHECK(port >= 1 && port <= 65535, "%s", line);
	for (i = 0; host[i] != '\0'; i++)
		FUZZ_CHECK((unsigned char)host[i] > ' ' &&
		    (unsigned char)host[i] < 0x7f, "%s", line);
}

static void
check_resolve(const char *line)
{
	pgb_resolved		r, r2;
	struct topo_host	h;
	char			why[128], out[PROTO_REPLY_MAX];
	size_t			n;

	if (pgbi_proto_parse_resolve(line, &r, why, sizeof why) == -1)
		return;
	check_host(r.host, r.port, line);
	if (strcmp(r.role, "master") != 0 && strcmp(r.role, "replica") != 0)
		return;		/* the daemon sends no other role */
	memset(&h, 0, sizeof h);
	h.host = r.host;
	h.port = r.port;
	h.role = strcmp(r.role, "master") == 0 ? TOPO_ROLE_MASTER :
	    TOPO_ROLE_REPLICA;
	n = protocol_format_resolve(out, sizeof out, &h, r.generation);
	FUZZ_CHECK(n > 0 && out[n - 1] == '\n', "%s", out);
	out[n - 1] = '\0';
	FUZZ_CHECK(pgbi_proto_parse_resolve(out, &r2, why, sizeof why) == 0,
	    "'%s' (from '%s'): %s", out, line, why);
	FUZZ_CHECK(strcmp(r.host, r2.host) == 0 && r.port == r2.port &&
	    strcmp(r.role, r2.role) == 0 && r.generation == r2.generation,
	    "'%s' vs '%s'", line, out);
}

static void
check_event(const char *line)
{
	pgb_event		 e, e2;
	struct topo_host	 h, *hosts[1] = { &h };
	struct topo_cluster	 c;
	char			 why[128], out[PROTO_REPLY_MAX];
	size_t			 n;

	if (pgbi_proto_parse_event(line, &e, why, sizeof why) == -1)
		return;
	FUZZ_CHECK(e.cluster[0] != '\0' && e.resync == 0, "%s", line);
	/* A cluster the library takes from an EVENT is one the daemon
	 * could have: no longer than its limit (no drift). */
	FUZZ_CHECK(strlen(e.cluster) <= PROTO_NAME_MAX, "%s", line);
	if (e.has_master)
		check_host(e.master_host, e.master_port, line);
	memset(&h, 0, sizeof h);
	h.host = e.master_host;
	h.port = e.master_port;
	topology_cluster_init(&c, e.cluster, hosts, 1, 0);
	c.generation = e.generation;
	if (e.has_master) {
		c.master = 0;
		c.master_host = &h;
	}
	n = protocol_format_event(out, sizeof out, &c);
	FUZZ_CHECK(n > 0 && out[n - 1] == '\n', "%s", out);
	if (out[n - 1] != '\n' || n + 1 >= sizeof out)
		return;		/* cut to fit: cannot be compared */
	out[n - 1] = '\0';
	FUZZ_CHECK(pgbi_proto_parse_event(out, &e2, why, sizeof why) == 0,
	    "'%s' (from '%s'): %s", out, line, why);
	FUZZ_CHECK(strcmp(e.cluster, e2.cluster) == 0 &&
	    e.generation == e2.generation && e.has_master == e2.has_master,
	    "'%s' vs '%s'", line, out);
	FUZZ_CHECK(!e.has_master || (strcmp(e.master_host, e2.master_host) ==
	    0 && e.master_port == e2.master_port), "'%s' vs '%s'", line, out);
}

static void
check_err(const char *line)
{
	static const struct {
		pgb_errcode	lib;
		enum proto_err	daemon;
	} map[] = {
		{ PGB_ERR_NOHOST, PROTO_ERR_NOHOST },
		{ PGB_ERR_NOCLUSTER, PROTO_ERR_NOCLUSTER },
		{ PGB_ERR_BADROLE, PROTO_ERR_BADROLE },
		{ PGB_ERR_BADREQ, PROTO_ERR_BADREQ },
	};
	pgb_errcode	code, code2;
	char		text[PROTO_REPLY_MAX], text2[PROTO_REPLY_MAX];
	char		out[PROTO_REPLY_MAX];
	size_t		i, n;

	if (pgbi_proto_parse_err(line, &code, text, sizeof text) == -1)
		return;
	for (i = 0; i < sizeof map / sizeof map[0]; i++)
		if (map[i].lib == code)
			break;
	if (i == sizeof map / sizeof map[0] || strlen(text) > 256)
		return;		/* PGB_ERR_DAEMON, or cut to fit */
	for (n = 0; text[n] != '\0'; n++)
		if ((unsigned char)text[n] < 0x20 || text[n] == 0x7f)
			return;	/* the daemon writes those as spaces */
	n = protocol_format_error(out, sizeof out, map[i].daemon, text);
	FUZZ_CHECK(n > 0 && out[n - 1] == '\n', "%s", out);
	out[n - 1] = '\0';
	FUZZ_CHECK(pgbi_proto_parse_err(out, &code2, text2, sizeof text2) == 0,
	    "%s", out);
	FUZZ_CHECK(code == code2 && strcmp(text, text2) == 0,
	    "'%s' vs '%s'", line, out);
}

static void
check_hostport(const char *s, size_t len)
{
	struct topo_host	h;
	char			host[PGB_HOST_MAX], host2[PGB_HOST_MAX];
	char			joined[TOPO_HOST_NAMELEN];
	int			port, port2;

	if (pgbi_proto_parse_hostport(s, len, host, sizeof host, &port) == -1)
		return;
	check_host(host, port, s);
	memset(&h, 0, sizeof h);
	h.host = host;
	h.port = port;
	topology_host_name(&h, joined, sizeof joined);
	FUZZ_CHECK(pgbi_proto_parse_hostport(joined, strlen(joined), host2,
	    sizeof host2, &port2) == 0, "'%s' (from '%.*s')", joined, (int)len,
	    s);
	FUZZ_CHECK(strcmp(host, host2) == 0 && port == port2,
	    "'%.*s' -> '%s' -> '%s'", (int)len, s, host, host2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		*line;
	const char	*rest;

	if (size > 8192)
		return (0);
	line = fuzz_cstr(data, size);
	(void)pgbi_proto_classify(line, &rest);
	check_resolve(line);
	check_event(line);
	check_err(line);
	check_hostport((const char *)data, size);
	(void)pgbc_cluster_name_ok(line);
	(void)pgbi_proto_options_ok(line, 3000);
	free(line);
	return (0);
}
