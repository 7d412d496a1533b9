/*
 * log.h - one line per event on stderr, for journald.
 *
 * journald adds the timestamp; each line starts with a sd-daemon(3) level
 * prefix ("<3>") so the journal keeps the severity, followed by the level
 * name so the line also reads well on a terminal.  libevent's own
 * messages are routed here by log_init().  Never log a password or a whole
 * conninfo string.
 */
#ifndef PGB_LOG_H
#define PGB_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR,	/* something failed and was not retried */
	LOG_LEVEL_WARN,		/* something failed and will be retried */
	LOG_LEVEL_INFO,		/* a state change worth a line: roles, reloads */
	LOG_LEVEL_DEBUG,	/* per-probe detail */
};

/* Routes libevent's log to ours and sets the threshold. */
void log_init(enum log_level level);
void log_set_level(enum log_level level);

/* Parses "error", "warn", "info" or "debug"; false on anything else. */
bool log_level_parse(const char *name, enum log_level *out)
	__attribute__((warn_unused_result));

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif /* PGB_LOG_H */
