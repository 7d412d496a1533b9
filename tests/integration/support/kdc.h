/*
 * kdc.h - a throwaway MIT Kerberos KDC (Debian's krb5-kdc,
 * krb5-admin-server and krb5-user, see scripts/deps.sh) for the GSSAPI
 * tests: realm IT_KDC_REALM, every file in one directory of it_tmpdir()
 * (krb5.conf, kdc.conf, the database, the keytabs, the credential
 * caches), krb5kdc in the foreground on a free TCP port of 127.0.0.1,
 * started with spawn.h (it dies with the test).
 *
 * The environment: it_kdc_start() sets KRB5_CONFIG and KRB5_KDC_PROFILE
 * to the KDC's files, so that the servers, the daemon and the clients
 * started after it use this realm, and KRB5CCNAME to an empty cache of
 * the directory: a libpq with gssencmode=prefer (the harness's psql, the
 * daemon's probes, the walreceivers) then has no credentials and does
 * not try GSSAPI.  Only between it_kdc_ticket(k, true) and
 * it_kdc_ticket(k, false) does KRB5CCNAME name the client's cache, which
 * holds a ticket; a libpq connection or a psql started then uses it.
 * it_kdc_stop() unsets the three.
 *
 * Failures (a tool missing or failing, the KDC not coming up) fail the
 * test (it_fail), with the tool's output.
 */
#ifndef PGB_IT_KDC_H
#define PGB_IT_KDC_H

#include <stdbool.h>

/* The realm of every KDC of it_kdc_start(). */
#define IT_KDC_REALM	"PGBEACON.TEST"

/* A running KDC.  Owns its directory and its krb5kdc process. */
struct it_kdc;

/*
 * Creates the realm with the service principal "postgres/<host>" (host:
 * the name the clients give libpq as host=, which names the principal;
 * "localhost" in the tests) in a keytab that the servers' user can read,
 * and the client principal "<client>" (no instance) in a keytab of its
 * own; starts the KDC, waits up to 15 s until it accepts connections,
 * and runs kinit -k for the client into the client's cache.  Sets the
 * environment as the top of this file says.  Never NULL.
 */
struct it_kdc *it_kdc_start(const char *host, const char *client);

/* The service keytab, for krb_server_keyfile.  Borrowed. */
const char *it_kdc_server_keytab(const struct it_kdc *k);
/* The KDC's directory.  Borrowed. */
const char *it_kdc_dir(const struct it_kdc *k);

/* KRB5CCNAME: the client's cache, with its ticket (on), or the empty
 * one (off). */
void it_kdc_ticket(struct it_kdc *k, bool on);

/* Stops krb5kdc, unsets the environment, removes the directory, frees
 * k.  NULL is a no-op.  Never fails the test. */
void it_kdc_stop(struct it_kdc *k);

#endif /* PGB_IT_KDC_H */
