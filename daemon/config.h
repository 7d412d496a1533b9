/*
 * config.h - pgbeacond's configuration: parse a libconfig file, validate
 * every value, and hand back one self-contained struct.
 *
 * The struct owns copies of every string (libconfig's are freed with its
 * config_t before config_load returns).  Reload parses a new struct and
 * swaps it in only when it is valid, so a broken file never replaces a
 * working configuration.
 */
#ifndef PGB_CONFIG_H
#define PGB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"
#include "topology.h"

#define CONFIG_DEFAULT_PATH   "/etc/pgbeacon/pgbeacon.conf"
#define CONFIG_DEFAULT_SOCKET "/run/pgbeacon/pgbeacon.sock"
#define CONFIG_DEFAULT_STATE_FILE "/var/lib/pgbeacon/state"

/* One PostgreSQL server to watch.  host is a name, an address, or an
 * absolute directory for a Unix-domain socket (as libpq's host=). */
struct config_host {
	char	*host;		/* owned */
	int	 port;		/* 1..65535 */
};

/* One connection listener of a cluster (listen = ( { ... } )): accepted
 * connections are relayed to the host RESOLVE would answer for query. */
struct config_listen {
	char		*address;	/* owned; as written: the listener's identity */
	char		*host;		/* owned; address, name or socket directory */
	int		 port;		/* 1..65535 */
	bool		 is_unix;	/* host is a directory: <host>/.s.PGSQL.<port> */
	char		*role;		/* owned; the role name as written */
	struct topo_query query;	/* want, max_lag_ms/bytes, fallback */
	int		 wait_ms;	/* how long a client is held, 0: not held */
	bool		 fence_on_lag;	/* a replica over the lag bound is fenced */
	int		 max_clients;	/* clients at once (held ones included) */
	int		 connect_timeout_ms; /* to the server */
	int		 client_timeout_ms; /* for the client's first packet */
};

struct config_cluster {
	char			*name;		/* owned; [A-Za-z0-9_.-]{1,63} */
	char			*conninfo;	/* owned; libpq keywords, no host/port */
	uint64_t		 system_identifier; /* 0: learnt from the hosts */
	size_t			 nhosts;
	struct config_host	*hosts;		/* owned array of nhosts */
	size_t			 nlisten;
	struct config_listen	*listen;	/* owned array of nlisten */
};

struct config {
	char			*path;		/* owned; the file it came from */
	char			*socket_path;	/* owned */
	mode_t			 socket_mode;
	char			*http_listen;	/* owned; NULL: no HTTP listener */
	enum log_level		 log_level;
	char			*state_file;	/* owned; "": not persisted */

	int			 check_interval_ms;	/* normal probe period */
	int			 fast_check_interval_ms; /* while no primary is known */
	int			 connect_timeout_ms;
	int			 query_timeout_ms;
	int			 reconnect_max_ms;	/* backoff cap for dead hosts */
	int			 max_fails;
	int			 connect_check_interval_ms; /* 0: no checks */
	int64_t			 sync_max_lag_ms;
	int64_t			 sync_max_lag_bytes;
	int			 socket_max_clients;	/* the listener pauses here */
	int			 http_max_clients;
	int			 http_request_timeout_ms; /* deadline of a request head */
	char			 warning[512];	/* "FILE:LINE: ..." to log, or "" */

	size_t			 nclusters;
	struct config_cluster	*clusters;	/* owned array of nclusters */
};

/*
 * Reads and validates path.  On success returns a new config the caller
 * frees with config_free().  On failure returns NULL and writes one line,
 * "FILE:LINE: reason" (or "FILE: reason" when no line applies), to err.
 */
struct config *config_load(const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The same, from a string; name stands for the file in error messages. */
struct config *config_load_string(const char *text, const char *name,
	char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * A 64-bit digest of the file at path, to recognise a file that already
 * failed to load: libconfig 1.5 leaks the string token a syntax error
 * stops at (a few dozen bytes, up to the longest string of the file), so
 * the daemon parses a broken file once, not at every SIGHUP.  Returns 0,
 * or -1 when the file cannot be read.
 */
int config_file_digest(const char *path, uint64_t *digest)
	__attribute__((warn_unused_result));

/* Frees cfg and everything it owns; NULL is a no-op. */
void config_free(struct config *cfg);

/* Where a setting may stand, for config_setting_names(). */
enum config_level {
	CONFIG_LEVEL_TOP,	/* the file's top level */
	CONFIG_LEVEL_CLUSTER,	/* a group of clusters */
	CONFIG_LEVEL_LISTEN,	/* a group of a cluster's listen list */
};

/* The names of the settings allowed at level, NULL-terminated: what the
 * parser accepts, so that the documentation can be checked against it.
 * Static storage. */
const char *const *config_setting_names(enum config_level level);

/*
 * The settings a reload cannot apply (socket, http_listen, ...: they take
 * effect at restart) whose values differ between old and new: writes
 * their names, ", "-separated, to buf and returns how many.
 */
size_t config_restart_changes(const struct config *old,
	const struct config *new, char *buf, size_t len);

/* The cluster called name, or NULL.  Borrowed: lives as long as cfg. */
const struct config_cluster *config_find_cluster(const struct config *cfg,
	const char *name);

#endif /* PGB_CONFIG_H */
