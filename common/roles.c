/*
 * roles.c - role names; see roles.h.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "roles.h"

static const struct {
	const char	*name;
	enum pgbc_want	 want;
} roles_want[] = {
	/* The first name of each is the canonical one. */
	{ "master", PGBC_WANT_MASTER },
	{ "primary", PGBC_WANT_MASTER },
	{ "replica", PGBC_WANT_REPLICA },
	{ "standby", PGBC_WANT_REPLICA },
	{ "sync_by_time", PGBC_WANT_SYNC_BY_TIME },
	{ "sync_by_bytes", PGBC_WANT_SYNC_BY_BYTES },
	{ "sync_by_time_or_bytes", PGBC_WANT_SYNC_BY_TIME_OR_BYTES },
	{ "sync_by_time_and_bytes", PGBC_WANT_SYNC_BY_TIME_AND_BYTES },
	{ "any", PGBC_WANT_ANY },
	{ NULL, PGBC_WANT_ANY },
};

static const char *const roles_role[] = {
	[PGBC_ROLE_NONE] = "none",
	[PGBC_ROLE_MASTER] = "master",
	[PGBC_ROLE_REPLICA] = "replica",
};

#define ROLES_NROLE	(sizeof roles_role / sizeof roles_role[0])

bool
pgbc_want_parse(const char *name, enum pgbc_want *out)
{
	size_t	i;

	if (name == NULL)
		return (false);
	for (i = 0; roles_want[i].name != NULL; i++) {
		if (strcmp(name, roles_want[i].name) == 0) {
			*out = roles_want[i].want;
			return (true);
		}
	}
	return (false);
}

const char *
pgbc_want_name(enum pgbc_want want)
{
	size_t	i;

	for (i = 0; roles_want[i].name != NULL; i++) {
		if (roles_want[i].want == want)
			return (roles_want[i].name);
	}
	return ("any");
}

bool
pgbc_want_is_master(const char *name)
{
	enum pgbc_want	want;

	return (pgbc_want_parse(name, &want) && want == PGBC_WANT_MASTER);
}

const char *
pgbc_role_name(enum pgbc_role role)
{
	if ((size_t)role >= ROLES_NROLE)
		return ("none");
	return (roles_role[role]);
}

bool
pgbc_role_parse(const char *name, enum pgbc_role *out)
{
	size_t	i;

	if (name == NULL)
		return (false);
	for (i = 0; i < ROLES_NROLE; i++) {
		if (strcmp(name, roles_role[i]) == 0) {
			*out = (enum pgbc_role)i;
			return (true);
		}
	}
	return (false);
}
