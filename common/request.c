/*
 * request.c - tokens, cluster names and RESOLVE's option table; see
 * request.h.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "limits.h"
#include "lsn.h"
#include "num.h"
#include "request.h"

/* The bound in the message must be PGBC_LAG_MAX: checked in the tests. */
#define REQUEST_LAG_EXPECT	"a number from 0 to 4611686018427387904"

const struct pgbc_opt pgbc_opts[PGBC_OPT_COUNT] = {
	{ PGBC_OPT_MAX_LAG_MS, "max_lag_ms", "lag_ms", PGBC_OPT_INT,
	    0, PGBC_LAG_MAX, REQUEST_LAG_EXPECT },
	{ PGBC_OPT_MAX_LAG_BYTES, "max_lag_bytes", "lag_bytes", PGBC_OPT_INT,
	    0, PGBC_LAG_MAX, REQUEST_LAG_EXPECT },
	{ PGBC_OPT_MIN_LSN, "min_lsn", NULL, PGBC_OPT_LSN, 0, 0,
	    "an LSN like 16/B374D848" },
	{ PGBC_OPT_FALLBACK, "fallback", NULL, PGBC_OPT_FALLBACK_KIND, 0, 0,
	    "master or none" },
};

/* The len bytes at s are printable ASCII; spaces and tabs too if blanks. */
static bool
request_ascii_ok(const char *s, size_t len, bool blanks)
{
	size_t		i;
	unsigned char	c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x7f || (c <= ' ' &&
		    !(blanks && (c == ' ' || c == '\t'))))
			return (false);
	}
	return (true);
}

bool
pgbc_line_text_ok(const char *s, size_t len)
{
	return (request_ascii_ok(s, len, true));
}

bool
pgbc_name_chars_ok(const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return (false);
	}
	return (true);
}

bool
pgbc_token_ok(const char *s, size_t max)
{
	size_t	len;

	if (s == NULL)
		return (false);
	len = strnlen(s, max < SIZE_MAX ? max + 1 : max);
	return (len > 0 && len <= max && request_ascii_ok(s, len, false));
}

bool
pgbc_cluster_name_ok(const char *s)
{
	return (pgbc_token_ok(s, PGBC_CLUSTER_NAME_MAX));
}

bool
pgbc_config_name_ok(const char *s, size_t len)
{
	return (s != NULL && len > 0 && len <= PGBC_CLUSTER_NAME_MAX &&
	    pgbc_name_chars_ok(s, len));
}

const struct pgbc_opt *
pgbc_opt_find(const char *name, bool aliases)
{
	size_t	i;

	if (name == NULL)
		return (NULL);
	for (i = 0; i < PGBC_OPT_COUNT; i++) {
		if (strcmp(name, pgbc_opts[i].name) == 0 ||
		    (aliases && pgbc_opts[i].alias != NULL &&
		    strcmp(name, pgbc_opts[i].alias) == 0))
			return (&pgbc_opts[i]);
	}
	return (NULL);
}

bool
pgbc_opt_parse(const struct pgbc_opt *o, const char *val,
    struct pgbc_opt_value *out)
{
	if (val == NULL)
		return (false);
	switch (o->type) {
	case PGBC_OPT_INT:
		return (pgbc_parse_i64(val, strlen(val), o->min, o->max,
		    &out->num));
	case PGBC_OPT_LSN:
		return (pgbc_lsn_parse(val, &out->lsn));
	case PGBC_OPT_FALLBACK_KIND:
		break;
	}
	if (strcmp(val, "master") == 0)
		out->fallback = PGBC_FALLBACK_MASTER;
	else if (strcmp(val, "none") == 0)
		out->fallback = PGBC_FALLBACK_NONE;
	else
		return (false);
	return (true);
}

int
pgbc_opt_format(char *buf, size_t len, const struct pgbc_opt *o,
    const struct pgbc_opt_value *v)
{
	char	lsn[PGBC_LSN_STRLEN];

	switch (o->type) {
	case PGBC_OPT_INT:
		return (snprintf(buf, len, "%" PRId64, v->num));
	case PGBC_OPT_LSN:
		pgbc_lsn_format(v->lsn, lsn);
		return (snprintf(buf, len, "%s", lsn));
	case PGBC_OPT_FALLBACK_KIND:
		break;
	}
	return (snprintf(buf, len, "%s",
	    v->fallback == PGBC_FALLBACK_NONE ? "none" : "master"));
}
