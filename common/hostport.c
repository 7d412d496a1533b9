/*
 * hostport.c - "host:port" parsing and formatting; see hostport.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "hostport.h"
#include "limits.h"
#include "num.h"
#include "request.h"

/* What may stand between brackets: an IPv6 address, IPv4-mapped too. */
#define HOSTPORT_V6_CHARS	"0123456789abcdefABCDEF:."

static bool
hostport_fail(const char **why, const char *reason)
{
	if (why != NULL)
		*why = reason;
	return (false);
}

/* PGBC_HP_STRICT's name: [A-Za-z0-9_.-], not starting with '.' or '-'. */
static bool
hostport_dns_name_ok(const char *s, size_t len)
{
	return (len > 0 && len <= PGBC_DNS_NAME_MAX && s[0] != '.' &&
	    s[0] != '-' && pgbc_name_chars_ok(s, len));
}

/* PGBC_HP_STRICT's IPv6 address: the len bytes at s are one. */
static bool
hostport_v6_ok(const char *s, size_t len)
{
	char		tmp[INET6_ADDRSTRLEN + 1];
	struct in6_addr	addr;

	if (len > INET6_ADDRSTRLEN)
		return (false);
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return (inet_pton(AF_INET6, tmp, &addr) == 1);
}

bool
pgbc_hostport_parse(const char *s, size_t len, unsigned flags,
    struct pgbc_hostport *out, const char **why)
{
	const char		*colon = NULL, *h;
	size_t			 i, hlen;
	int			 port;
	enum pgbc_host_kind	 kind;

	if (s == NULL)
		return (hostport_fail(why, "no host:port"));
	for (i = 0; i < len; i++) {
		if (s[i] == ':')
			colon = s + i;
	}
	if (colon == NULL)
		return (hostport_fail(why, "no ':PORT'"));
	if (!pgbc_parse_port(colon + 1, len - (size_t)(colon + 1 - s), &port))
		return (hostport_fail(why,
		    "port must be a number from 1 to 65535"));
	h = s;
	hlen = (size_t)(colon - s);
	if (hlen == 0)
		return (hostport_fail(why, "no host before ':'"));
	if (h[0] == '/') {
		if ((flags & PGBC_HP_ALLOW_DIR) == 0)
			return (hostport_fail(why, "a path has no port"));
		kind = PGBC_HOST_DIR;
	} else if (h[0] == '[') {
		if (hlen < 3 || h[hlen - 1] != ']' ||
		    memchr(h + 1, ':', hlen - 2) == NULL ||
		    /* the closing bracket stops strspn inside s */
		    strspn(h + 1, HOSTPORT_V6_CHARS) < hlen - 2 ||
		    ((flags & PGBC_HP_STRICT) != 0 &&
		    !hostport_v6_ok(h + 1, hlen - 2)))
			return (hostport_fail(why, "bad IPv6 address"));
		h++;
		hlen -= 2;
		kind = PGBC_HOST_IPV6;
	} else if (memchr(h, ':', hlen) != NULL)
		return (hostport_fail(why, "an IPv6 address needs brackets"));
	else if (memchr(h, '[', hlen) != NULL ||
	    memchr(h, ']', hlen) != NULL ||
	    ((flags & PGBC_HP_STRICT) != 0 && !hostport_dns_name_ok(h, hlen)))
		return (hostport_fail(why, "bad host name"));
	else
		kind = PGBC_HOST_NAME;
	if (hlen > PGBC_HOST_LEN_MAX)
		return (hostport_fail(why, kind == PGBC_HOST_DIR ?
		    "socket directory too long" : "host too long"));
	for (i = 0; i < hlen; i++) {
		if ((unsigned char)h[i] <= ' ' || (unsigned char)h[i] >= 0x7f)
			return (hostport_fail(why, kind == PGBC_HOST_DIR ?
			    "a socket directory must be printable ASCII "
			    "without spaces" : "host must be printable "
			    "ASCII without spaces"));
	}
	out->host = h;
	out->hostlen = hlen;
	out->port = port;
	out->kind = kind;
	return (true);
}

int
pgbc_hostport_format(char *buf, size_t len, const char *host, int port)
{
	if (host[0] != '/' && strchr(host, ':') != NULL)
		return (snprintf(buf, len, "[%s]:%d", host, port));
	return (snprintf(buf, len, "%s:%d", host, port));
}
