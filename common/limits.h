/*
 * limits.h - the limits of the socket protocol, one place for the daemon
 * and the library (DESIGN.md, "The socket protocol").
 *
 * The public header's size constants (PGB_CLUSTER_MAX, PGB_HOST_MAX, ...)
 * are the sizes of the public structs' fields and stay as they are for
 * the ABI; what the grammar accepts is decided here.
 */
#ifndef PGB_COMMON_LIMITS_H
#define PGB_COMMON_LIMITS_H

#include <stdint.h>

/* Longest request line, end of line excluded. */
#define PGBC_LINE_MAX		4096
/* Longest cluster name, in a request and in the configuration. */
#define PGBC_CLUSTER_NAME_MAX	63
/* Longest role token a request may carry (unknown roles are BADROLE). */
#define PGBC_ROLE_NAME_MAX	64
/* Longest host in a reply ("[addr]" brackets excluded), NUL excluded. */
#define PGBC_HOST_LEN_MAX	255
/* Longest DNS name a configured host may have. */
#define PGBC_DNS_NAME_MAX	253
/* Largest max_lag_ms / max_lag_bytes a request may give (socket, HTTP). */
#define PGBC_LAG_MAX		(INT64_C(1) << 62)
/* Ports. */
#define PGBC_PORT_MIN		1
#define PGBC_PORT_MAX		65535
/* Text form of an LSN, "FFFFFFFF/FFFFFFFF", and its NUL. */
#define PGBC_LSN_STRLEN		18

#endif /* PGB_COMMON_LIMITS_H */
