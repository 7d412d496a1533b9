/*
 * config_table.c - reads a group of libconfig settings into a struct
 * from a table of struct config_param (config_table.h): types, defaults,
 * ranges, unknown names, "FILE:LINE: reason" errors, and the comparison
 * of the settings a reload cannot apply.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_table.h"

void
config_fail(struct config_ctx *ctx, const config_setting_t *s,
    const char *fmt, ...)
{
	char		 reason[512], *p;
	const char	*file = ctx->name;
	va_list		 ap;

	if (ctx->err == NULL || ctx->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	/* Quoted values may hold escapes ("\n"): the error stays one line. */
	for (p = reason; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}

	if (s != NULL && config_setting_source_file(s) != NULL)
		file = config_setting_source_file(s);
	if (s != NULL)
		snprintf(ctx->err, ctx->errlen, "%s:%u: %s", file,
		    (unsigned)config_setting_source_line(s), reason);
	else
		snprintf(ctx->err, ctx->errlen, "%s: %s", file, reason);
}

void
config_warn(struct config_ctx *ctx, const config_setting_t *s,
    const char *fmt, ...)
{
	char		 text[256];
	const char	*file = ctx->name;
	va_list		 ap;

	if (ctx->warning == NULL || ctx->warnlen == 0 ||
	    ctx->warning[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (config_setting_source_file(s) != NULL)
		file = config_setting_source_file(s);
	snprintf(ctx->warning, ctx->warnlen, "%s:%u: %s", file,
	    (unsigned)config_setting_source_line(s), text);
}

static const struct config_param *
config_param_find(const struct config_param *params, const char *name)
{
	for (; params->name != NULL; params++) {
		if (strcmp(params->name, name) == 0)
			return params;
	}
	return NULL;
}

/* Fails on the first member of group whose name is not in params. */
__attribute__((warn_unused_result)) static bool
config_check_names(struct config_ctx *ctx, const config_setting_t *group,
    const struct config_param *params)
{
	config_setting_t	*s;
	int			 i, n;

	n = config_setting_length(group);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(group, (unsigned)i);
		if (s == NULL || config_setting_name(s) == NULL)
			continue;
		if (config_param_find(params, config_setting_name(s)) == NULL) {
			config_fail(ctx, s, "unknown setting '%s'",
			    config_setting_name(s));
			return false;
		}
	}
	return true;
}

static bool
config_is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '*';
}

/*
 * libconfig 1.5 silently wraps a decimal literal beyond 32 bits that
 * lacks the L suffix (20000000000 reads as -1474836480).  Finds the
 * literal of the int setting s in the source text and returns true when
 * it was wrapped.  Settings from @include files are not checked.
 */
bool
config_int_wrapped(const struct config_ctx *ctx, const config_setting_t *s)
{
	const char	*name = config_setting_name(s), *p = ctx->text, *q;
	unsigned	 line = config_setting_source_line(s), l;
	uint64_t	 v;
	bool		 neg, digits;

	if (p == NULL || name == NULL || line == 0 ||
	    config_setting_source_file(s) != NULL)
		return false;
	for (l = 1; l < line && p != NULL; l++) {
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	/* s is an int without L: an occurrence followed by anything else
	 * ("name = 1L" or "name = x" in a comment) is not s, and the search
	 * goes on. */
	for (; p != NULL && (q = strstr(p, name)) != NULL; p = q + 1) {
		if ((q > ctx->text && config_is_name_char(q[-1])) ||
		    config_is_name_char(q[strlen(name)]))
			continue;
		q += strlen(name);
		q += strspn(q, " \t\r\n");
		if (*q != '=' && *q != ':')
			continue;
		q++;
		q += strspn(q, " \t\r\n");
		v = 0;
		neg = digits = false;
		if (*q == '-' || *q == '+')
			neg = *q++ == '-';
		if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X')) {
			/* libconfig keeps the low 32 bits of a hex literal
			 * without L: 0x100000003 reads as 3. */
			for (q += 2; isxdigit((unsigned char)*q); q++) {
				digits = true;
				if (v <= UINT32_MAX)
					v = v * 16 + (uint64_t)(isdigit(
					    (unsigned char)*q) ? *q - '0' :
					    (tolower((unsigned char)*q) - 'a' + 10));
			}
			if (!digits || *q == 'L')
				continue;
			return v > INT32_MAX;
		}
		for (; isdigit((unsigned char)*q); q++) {
			digits = true;
			if (v <= UINT32_MAX)
				v = v * 10 + (uint64_t)(*q - '0');
		}
		if (!digits || *q == 'L')
			continue;
		return v > (neg ? (uint64_t)INT32_MAX + 1 : (uint64_t)INT32_MAX);
	}
	return false;
}

/*
 * Reads the integer setting name of group into *out: def when absent,
 * else an int or int64 within min..max.
 */
__attribute__((warn_unused_result)) static bool
config_get_int(struct config_ctx *ctx, const config_setting_t *group,
    const char *name, int64_t def, int64_t min, int64_t max, int64_t *out)
{
	config_setting_t	*s;
	int64_t			 v;

	s = config_setting_get_member(group, name);
	if (s == NULL) {
		*out = def;
		return true;
	}
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		if (config_int_wrapped(ctx, s)) {
			config_fail(ctx, s, "%s does not fit in 32 bits: write "
			    "it with an L suffix (1000000000000L)", name);
			return false;
		}
		v = config_setting_get_int(s);
		break;
	case CONFIG_TYPE_INT64:
		v = config_setting_get_int64(s);
		break;
	default:
		config_fail(ctx, s, "%s must be an integer", name);
		return false;
	}
	if (v < min || v > max) {
		if (max == INT64_MAX)
			config_fail(ctx, s, "%s must be at least %" PRId64
			    ", not %" PRId64, name, min, v);
		else
			config_fail(ctx, s, "%s must be between %" PRId64
			    " and %" PRId64 ", not %" PRId64, name, min, max, v);
		return false;
	}
	*out = v;
	return true;
}

/*
 * Reads the string setting name of group: *out borrows libconfig's
 * string, or def (possibly NULL) when absent.  *where is the setting,
 * or group when absent.
 */
__attribute__((warn_unused_result)) static bool
config_get_string(struct config_ctx *ctx, const config_setting_t *group,
    const char *name, const char *def, const char **out,
    const config_setting_t **where)
{
	config_setting_t	*s;

	s = config_setting_get_member(group, name);
	if (where != NULL)
		*where = s != NULL ? s : group;
	if (s == NULL) {
		*out = def;
		return true;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		config_fail(ctx, s, "%s must be a string", name);
		return false;
	}
	*out = config_setting_get_string(s);
	return true;
}


/* Reads the boolean setting name of group into *out (def when absent). */
__attribute__((warn_unused_result)) static bool
config_get_bool(struct config_ctx *ctx, const config_setting_t *group,
    const char *name, bool def, bool *out)
{
	config_setting_t	*s;

	s = config_setting_get_member(group, name);
	if (s == NULL) {
		*out = def;
		return true;
	}
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		config_fail(ctx, s, "%s must be true or false", name);
		return false;
	}
	*out = config_setting_get_bool(s) != 0;
	return true;
}


bool
config_store_string(struct config_ctx *ctx, const config_setting_t *where,
    const char *v, void *field)
{
	if ((*(char **)field = strdup(v)) == NULL) {
		config_fail(ctx, where, "out of memory");
		return false;
	}
	return true;
}

bool
config_parse_params(struct config_ctx *ctx, const config_setting_t *group,
    const struct config_param *params, void *obj)
{
	const struct config_param	*p;
	const config_setting_t		*where;
	const char			*v;
	int64_t				 i64, max;
	void				*field;

	if (!config_check_names(ctx, group, params))
		return false;
	for (p = params; p->name != NULL; p++) {
		field = (char *)obj + p->offset;
		switch (p->type) {
		case CONFIG_T_INT:
		case CONFIG_T_INT64:
			max = p->max_from == NULL ? p->max : *(const int *)(void *)
			    ((char *)obj + config_param_find(params,
			    p->max_from)->offset);
			if (!config_get_int(ctx, group, p->name, p->def, p->min,
			    max, &i64))
				return false;
			if (p->type == CONFIG_T_INT)
				*(int *)field = (int)i64;
			else
				*(int64_t *)field = i64;
			break;
		case CONFIG_T_BOOL:
			if (!config_get_bool(ctx, group, p->name, p->def != 0,
			    field))
				return false;
			break;
		case CONFIG_T_STRING:
		case CONFIG_T_WORD:
			if (!config_get_string(ctx, group, p->name, p->def_str,
			    &v, &where))
				return false;
			if (v == NULL && p->missing != NULL) {
				config_fail(ctx, group, "%s", p->missing);
				return false;
			}
			if (v != NULL && !(p->conv != NULL ?
			    p->conv(ctx, where, v, obj, field) :
			    config_store_string(ctx, where, v, field)))
				return false;
			break;
		case CONFIG_T_CUSTOM:
			if (!p->parse(ctx, group, obj))
				return false;
			break;
		}
		if (p->check != NULL && (where = config_setting_get_member(
		    group, p->name)) != NULL && !p->check(ctx, where, obj))
			return false;
	}
	return true;
}

size_t
config_params_changed(const struct config_param *params, const void *a,
    const void *b, char *buf, size_t len)
{
	const struct config_param	*p;
	const char			*sa, *sb;
	size_t				 n = 0, used = 0;
	bool				 same;

	if (len > 0)
		buf[0] = '\0';
	for (p = params; p->name != NULL; p++) {
		if (!(p->flags & CF_NO_RELOAD))
			continue;
		if (p->type == CONFIG_T_STRING) {
			sa = *(char *const *)(const void *)((const char *)a +
			    p->offset);
			sb = *(char *const *)(const void *)((const char *)b +
			    p->offset);
			same = sa == NULL || sb == NULL ? sa == sb :
			    strcmp(sa, sb) == 0;
		} else
			same = memcmp((const char *)a + p->offset,
			    (const char *)b + p->offset, p->size) == 0;
		if (same)
			continue;
		if (used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s",
			    n > 0 ? ", " : "", p->name);
		n++;
	}
	return n;
}

const char *const *
config_params_names(const struct config_param *params, const char **names,
    size_t n)
{
	size_t	i;

	for (i = 0; i + 1 < n && params[i].name != NULL; i++)
		names[i] = params[i].name;
	names[i] = NULL;
	return names;
}
