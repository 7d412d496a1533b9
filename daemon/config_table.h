/*
 * config_table.h - the table-driven reader under config.c: a group of
 * libconfig settings is described by an array of struct config_param
 * (name, type, offset, default, range, reload flag) and read by
 * config_parse_params() into a struct.  Anchor: pgbouncer's
 * bouncer_params (CF_NO_RELOAD) over libusual's cfparser.
 *
 * Only config.c includes this header.
 */
#ifndef PGB_CONFIG_TABLE_H
#define PGB_CONFIG_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libconfig.h>

/* Where errors go while one file is validated. */
struct config_ctx {
	const char	*name;		/* borrowed; file name for messages */
	const char	*text;		/* borrowed; the source text */
	char		*err;		/* borrowed; the caller's buffer */
	size_t		 errlen;
	char		*warning;	/* borrowed; the first remark, or "" */
	size_t		 warnlen;
};

/* How a setting's value is read (struct config_param). */
enum config_type {
	CONFIG_T_INT,		/* an int within min..max */
	CONFIG_T_INT64,		/* an int64_t within min..max */
	CONFIG_T_BOOL,		/* a bool */
	CONFIG_T_STRING,	/* a char *: conv checks and stores it, or a
				   strdup of it */
	CONFIG_T_WORD,		/* a string conv turns into a value */
	CONFIG_T_CUSTOM,	/* parse reads it: lists, int-or-string */
};

#define CF_NO_RELOAD	0x01	/* a reload keeps the running value */

/*
 * One setting of a group (the top level, a cluster, a listener): the
 * parser, the reload check and config_setting_names() read these tables.
 * The tables are in the order the settings are validated.
 */
struct config_param {
	const char	*name;
	enum config_type type;
	size_t		 offset;	/* of the field in its struct */
	size_t		 size;		/* of the field */
	int64_t		 def;		/* INT, INT64, BOOL: when absent */
	const char	*def_str;	/* STRING, WORD: when absent */
	int64_t		 min, max;	/* INT, INT64 */
	const char	*max_from;	/* INT: the setting that is the max */
	unsigned	 flags;		/* CF_* */
	const char	*missing;	/* STRING, WORD: error when absent */
	/* STRING, WORD: checks v and stores it in field (of obj). */
	bool		(*conv)(struct config_ctx *, const config_setting_t *,
			    const char *v, void *obj, void *field);
	/* CUSTOM: reads the setting of group into obj. */
	bool		(*parse)(struct config_ctx *, const config_setting_t *,
			    void *obj);
	/* After the value is stored, when the setting is present. */
	bool		(*check)(struct config_ctx *, const config_setting_t *,
			    const void *obj);
};

/* The offset and size of member m of struct type t. */
#define CONFIG_FIELD(t, m)	offsetof(struct t, m), sizeof(((struct t *)0)->m)

/* Writes "FILE:LINE: reason" (or "FILE: reason" without a setting) to
 * ctx->err.  Never echo a conninfo string: it may hold a password. */
void config_fail(struct config_ctx *ctx, const config_setting_t *s,
	const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records a remark that does not refuse the file, "FILE:LINE: text", in
 * ctx->warning (the first one only). */
void config_warn(struct config_ctx *ctx, const config_setting_t *s,
	const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* True when libconfig wrapped the 32-bit int literal of s (no L). */
bool config_int_wrapped(const struct config_ctx *ctx,
	const config_setting_t *s);

/* Stores a copy of v in the char * at field; false when out of memory. */
bool config_store_string(struct config_ctx *ctx, const config_setting_t *where,
	const char *v, void *field) __attribute__((warn_unused_result));

/*
 * Fails on a member of group that params does not name, then reads every
 * setting of params, in table order, into obj.  false after config_fail().
 */
bool config_parse_params(struct config_ctx *ctx, const config_setting_t *group,
	const struct config_param *params, void *obj)
	__attribute__((warn_unused_result));

/* The CF_NO_RELOAD settings of params whose values differ between the
 * structs a and b: their names, ", "-separated, in buf; how many. */
size_t config_params_changed(const struct config_param *params,
	const void *a, const void *b, char *buf, size_t len);

/* The names of params into names (room for n, NULL included); names. */
const char *const *config_params_names(const struct config_param *params,
	const char **names, size_t n);

#endif /* PGB_CONFIG_TABLE_H */
