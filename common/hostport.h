/*
 * hostport.h - "host:port" as the daemon writes it in replies, events and
 * STATUS, and as the configuration, HTTP health checks and the library
 * read it.  Pure.
 *
 * Grammar (the last ':' separates the port, a decimal from 1 to 65535):
 *   name:port     a DNS name or IPv4 address: no ':', '[' or ']'
 *   [v6]:port     an IPv6 address in brackets (hex digits, '.' and at
 *                 least one ':'); the brackets are not part of the host
 *   /dir:port     a Unix socket directory (only where the caller allows
 *                 it), taken whole: it may hold ':' and brackets
 * The host is 1 to PGBC_HOST_LEN_MAX bytes of printable ASCII without
 * spaces.  pgbc_hostport_format() writes exactly this grammar, so that
 * parse(format(h, p)) gives h and p back for any host parse accepts.
 *
 * The configuration narrows it (PGBC_HP_STRICT): a name is then a DNS
 * name or IPv4 address of at most PGBC_DNS_NAME_MAX bytes of A-Z a-z 0-9
 * _ . - not starting with '.' or '-', and an IPv6 address must be one
 * (inet_pton).  What the configuration takes, replies can carry.
 */
#ifndef PGB_COMMON_HOSTPORT_H
#define PGB_COMMON_HOSTPORT_H

#include <stdbool.h>
#include <stddef.h>

/* What kind of host was read. */
enum pgbc_host_kind {
	PGBC_HOST_NAME,		/* a DNS name or IPv4 address */
	PGBC_HOST_IPV6,		/* was in brackets */
	PGBC_HOST_DIR,		/* a socket directory, "/..." */
};

/* Flags of pgbc_hostport_parse(). */
#define PGBC_HP_ALLOW_DIR	0x1	/* "/dir:port" is allowed */
#define PGBC_HP_STRICT		0x2	/* names and IPv6 as the config
					   takes them (above) */

/* A parsed "host:port"; host borrows from the string parsed (not NUL-
 * terminated there). */
struct pgbc_hostport {
	const char		*host;
	size_t			 hostlen;
	int			 port;
	enum pgbc_host_kind	 kind;
};

/*
 * Parses the len bytes at s.  Returns true and fills *out, or false with
 * a short static reason in *why (when why is not NULL).
 */
bool pgbc_hostport_parse(const char *s, size_t len, unsigned flags,
	struct pgbc_hostport *out, const char **why)
	__attribute__((warn_unused_result));

/*
 * Writes host and port into buf as snprintf does ("[h]:p" when a host
 * that is not a directory holds a ':', else "h:p") and returns what
 * snprintf returns.
 */
int pgbc_hostport_format(char *buf, size_t len, const char *host, int port);

#endif /* PGB_COMMON_HOSTPORT_H */
