/*
 * roles.h - the role names of the socket protocol: what a client asks for
 * (RESOLVE's role, a listener's role) and what a host is (the role= of a
 * RESOLVE reply, STATUS).  One table for the daemon and the library.
 */
#ifndef PGB_COMMON_ROLES_H
#define PGB_COMMON_ROLES_H

#include <stdbool.h>

/* What a client asks for; append-only. */
enum pgbc_want {
	PGBC_WANT_MASTER,		/* "master", alias "primary" */
	PGBC_WANT_REPLICA,		/* "replica", alias "standby" */
	PGBC_WANT_SYNC_BY_TIME,		/* "sync_by_time" */
	PGBC_WANT_SYNC_BY_BYTES,	/* "sync_by_bytes" */
	PGBC_WANT_SYNC_BY_TIME_OR_BYTES, /* "sync_by_time_or_bytes" */
	PGBC_WANT_SYNC_BY_TIME_AND_BYTES, /* "sync_by_time_and_bytes" */
	PGBC_WANT_ANY,			/* "any" */
};

/* What a host is; append-only. */
enum pgbc_role {
	PGBC_ROLE_NONE,		/* "none": dead, foreign, a losing primary */
	PGBC_ROLE_MASTER,	/* "master" */
	PGBC_ROLE_REPLICA,	/* "replica" */
};

/* Reads a role name or alias (case-sensitive); false when unknown. */
bool pgbc_want_parse(const char *name, enum pgbc_want *out)
	__attribute__((warn_unused_result));
/* The first name pgbc_want_parse() takes for want ("master"). */
const char *pgbc_want_name(enum pgbc_want want);
/* True when want asks for the primary (so "master" and "primary"). */
bool pgbc_want_is_master(const char *name);

/* "none", "master", "replica". */
const char *pgbc_role_name(enum pgbc_role role);
/* Reads what pgbc_role_name() writes; false on anything else. */
bool pgbc_role_parse(const char *name, enum pgbc_role *out)
	__attribute__((warn_unused_result));

#endif /* PGB_COMMON_ROLES_H */
