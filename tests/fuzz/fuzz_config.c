/*
 * fuzz_config.c - the configuration: libconfig's string parser and
 * pgbeacond's validation (config_load_string).
 *
 * Input: the first byte picks the mode, the rest is
 *   0: a whole configuration file;
 *   1: one entry of a cluster's hosts list;
 *   2: a cluster name;
 *   3: the http_listen setting;
 * (modes 1-3 put the bytes, escaped, into a valid file, so that the
 * validation of that one value is reached at once).
 *
 * Properties:
 *  - an error is one line "NAME:LINE: reason" or "NAME: reason", without
 *    control characters (it goes to the journal and to `pgbeacond -t`);
 *  - every cluster a valid file defines can be asked for on the socket
 *    and by the library (its name fits the protocol's limits);
 *  - every host a valid file lists travels through the protocol intact:
 *    the RESOLVE reply and the EVENT the daemon formats for it parse in
 *    the library to the same host, port, role, cluster and generation.
 */
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "protocol.h"
#include "topology.h"
#include "pgbeacon.h"
#include "src/proto-internal.h"

#define FUZZ_NAME	"fuzz.conf"

/* Appends the n bytes at s to out as the body of a libconfig string. */
static size_t
escape(char *out, const uint8_t *s, size_t n)
{
	static const char	hex[] = "0123456789abcdef";
	size_t			i, o = 0;

	for (i = 0; i < n; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
			out[o++] = (char)s[i];
		else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[s[i] >> 4];
			out[o++] = hex[s[i] & 0xf];
		}
	}
	out[o] = '\0';
	return (o);
}

static char *
make_text(const uint8_t *data, size_t size)
{
	static const char *const tmpl[] = {
		"clusters = ( { name = \"c\"; hosts = ( \"%s\" ); } );\n",
		"clusters = ( { name = \"%s\"; hosts = ( \"db1:5432\" ); } );\n",
		("http_listen = \"%s\";\n"
		"clusters = ( { name = \"c\"; hosts = ( \"db1:5432\" ); } );\n"),
	};
	char	*text, *esc;
	size_t	 len;
	int	 mode = data[0] % 4;

	if (mode == 0)
		return (fuzz_cstr(data + 1, size - 1));
	esc = malloc(4 * size + 1);
	len = 4 * size + 256;
	text = malloc(len);
	if (esc == NULL || text == NULL)
		abort();
	escape(esc, data + 1, size - 1);
	snprintf(text, len, tmpl[mode - 1], esc);
	free(esc);
	return (text);
}

static void
check_error(const char *err, const char *text)
{
	size_t	i;

	FUZZ_CHECK(strncmp(err, FUZZ_NAME ":", strlen(FUZZ_NAME ":")) == 0,
	    "'%s'", err);
	FUZZ_CHECK(strlen(err) > strlen(FUZZ_NAME ": "), "'%s'", err);
	for (i = 0; err[i] != '\0'; i++)
		FUZZ_CHECK((unsigned char)err[i] >= 0x20 && err[i] != 0x7f,
		    "control character in error '%s' for\n%s", err, text);
}

/* The cluster name reaches the daemon's parser and the library's. */
static void
check_cluster_name(const char *name)
{
	char			line[PROTO_MAX_LINE + 2], why[256];
	struct proto_request	req;
	int			n;

	FUZZ_CHECK(pgbi_proto_resolve_args_ok(name, "master"),
	    "library refuses cluster '%s'", name);
	n = snprintf(line, sizeof line, "RESOLVE %s master", name);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof line, "%s", name);
	FUZZ_CHECK(protocol_parse_request(line, (size_t)n, &req, why,
	    sizeof why) == PROTO_OK && strcmp(req.cluster, name) == 0,
	    "daemon refuses cluster '%s': %s", name, why);
}

/* The host, named as master and resolved, reaches the library intact. */
static void
check_host(const char *cluster, const struct config_host *ch,
    uint64_t generation)
{
	struct topo_host	 h, *hosts[1] = { &h };
	struct topo_cluster	 c;
	pgb_resolved		 r;
	pgb_event		 e;
	char			 line[PROTO_REPLY_MAX], why[128];
	size_t			 n;

	memset(&h, 0, sizeof h);
	h.host = ch->host;
	h.port = ch->port;
	h.role = TOPO_ROLE_REPLICA;
	n = protocol_format_resolve(line, sizeof line, &h, generation);
	FUZZ_CHECK(n > 0 && line[n - 1] == '\n', "%s", line);
	line[n - 1] = '\0';
	FUZZ_CHECK(pgbi_proto_parse_resolve(line, &r, why, sizeof why) == 0,
	    "'%s': %s", line, why);
	FUZZ_CHECK(strcmp(r.host, ch->host) == 0 && r.port == ch->port &&
	    strcmp(r.role, "replica") == 0 && r.generation == generation,
	    "'%s'", line);

	h.role = TOPO_ROLE_MASTER;
	topology_cluster_init(&c, cluster, hosts, 1, 0);
	c.master = 0;
	c.master_host = &h;
	c.generation = generation;
	n = protocol_format_event(line, sizeof line, &c);
	FUZZ_CHECK(n > 0 && line[n - 1] == '\n', "%s", line);
	line[n - 1] = '\0';
	FUZZ_CHECK(pgbi_proto_parse_event(line, &e, why, sizeof why) == 0,
	    "'%s': %s", line, why);
	FUZZ_CHECK(strcmp(e.cluster, cluster) == 0 && e.has_master &&
	    strcmp(e.master_host, ch->host) == 0 && e.master_port == ch->port &&
	    e.generation == generation, "'%s'", line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	*cfg;
	char		*text, err[1024];
	size_t		 i, j;

	if (size < 1 || size > 16384)
		return (0);
	text = make_text(data, size);
	/* @include reads other files: not this target's business. */
	if (strstr(text, "@include") != NULL) {
		free(text);
		return (0);
	}
	err[0] = '\0';
	cfg = config_load_string(text, FUZZ_NAME, err, sizeof err);
	if (cfg == NULL) {
		check_error(err, text);
		free(text);
		return (0);
	}
	for (i = 0; i < cfg->nclusters; i++) {
		check_cluster_name(cfg->clusters[i].name);
		for (j = 0; j < cfg->clusters[i].nhosts; j++)
			check_host(cfg->clusters[i].name,
			    &cfg->clusters[i].hosts[j], (uint64_t)size << 40);
	}
	config_free(cfg);
	free(text);
	return (0);
}
