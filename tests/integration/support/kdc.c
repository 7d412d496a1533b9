/*
 * kdc.c - a throwaway MIT Kerberos KDC for the GSSAPI tests; see kdc.h.
 */
#include <sys/stat.h>

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"
#include "kdc.h"
#include "proxy_util.h"
#include "spawn.h"

/* One KDC: its directory and process, and the files the environment
 * names.  Owns every string and the process. */
struct it_kdc {
	char	*dir;
	char	*server_keytab;		/* dir/server.keytab */
	char	*client_cc;		/* "FILE:dir/client.ccache" */
	char	*empty_cc;		/* "FILE:dir/empty.ccache", never made */
	pid_t	 pid;			/* krb5kdc */
	int	 port;			/* its TCP port on 127.0.0.1 */
};

/* The master key's password: the database is thrown away. */
#define KDC_MASTER_PW	"pgbeacon-it-master"

static char *
kdc_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
kdc_printf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		it_fail("out of memory");
	return s;
}

/* dir/name with text in it (mode 0644: the servers' user reads it). */
static void
kdc_write(const struct it_kdc *k, const char *name, const char *text)
{
	char	*path = kdc_printf("%s/%s", k->dir, name);
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL)
		it_fail("%s: %s", path, strerror(errno));
	fputs(text, f);
	if (fclose(f) != 0)
		it_fail("%s: %s", path, strerror(errno));
	free(path);
}

/* name in /usr/sbin (kdb5_util, kadmin.local and krb5kdc live there,
 * which root's PATH need not hold), else as found in $PATH. */
static char *
kdc_tool(const char *name)
{
	char	*path = kdc_printf("/usr/sbin/%s", name);

	if (access(path, X_OK) == 0)
		return path;
	free(path);
	return kdc_printf("%s", name);
}

/* Runs argv (argv[0] looked up by kdc_tool()) to its end; fails the test,
 * with its output, when it does not exit 0.  Its output (caller frees)
 * when out is not NULL. */
static void
kdc_run(const char **argv, char **out)
{
	char	*tool = kdc_tool(argv[0]), *text;
	const char *name = argv[0];
	int	 rc;

	argv[0] = tool;
	rc = it_run_capture(argv, &text);
	argv[0] = name;
	free(tool);
	if (rc != 0)
		it_fail("%s exited %d: %s", name, rc, text);
	if (out != NULL)
		*out = text;
	else
		free(text);
}

/* kadmin.local -q query; kadmin.local exits 0 even when the query
 * fails, so its output must hold expect. */
static void
kdc_admin(const char *query, const char *expect)
{
	const char	*argv[] = { "kadmin.local", "-r", IT_KDC_REALM, "-q",
	    query, NULL };
	char		*out;

	kdc_run(argv, &out);
	if (strstr(out, expect) == NULL)
		it_fail("kadmin.local -q '%s': %s", query, out);
	free(out);
}

static void
kdc_write_config(struct it_kdc *k)
{
	char	*text;

	/* udp_preference_limit = 1: TCP, the only transport of this KDC;
	 * no DNS, no canonical host names: host= names the principal. */
	text = kdc_printf(
	    "[libdefaults]\n"
	    "\tdefault_realm = %s\n"
	    "\tdns_lookup_kdc = false\n"
	    "\tdns_lookup_realm = false\n"
	    "\tdns_canonicalize_hostname = false\n"
	    "\trdns = false\n"
	    "\tudp_preference_limit = 1\n"
	    "[realms]\n"
	    "\t%s = {\n"
	    "\t\tkdc = 127.0.0.1:%d\n"
	    "\t}\n", IT_KDC_REALM, IT_KDC_REALM, k->port);
	kdc_write(k, "krb5.conf", text);
	free(text);
	/* kdc_listen empty: no UDP port to collide with another's. */
	text = kdc_printf(
	    "[kdcdefaults]\n"
	    "\tkdc_listen = \"\"\n"
	    "\tkdc_tcp_listen = 127.0.0.1:%d\n"
	    "[realms]\n"
	    "\t%s = {\n"
	    "\t\tdatabase_name = %s/principal\n"
	    "\t\tkey_stash_file = %s/stash\n"
	    "\t\tacl_file = %s/kadm5.acl\n"
	    "\t}\n"
	    "[logging]\n"
	    "\tkdc = FILE:%s/kdc.log\n"
	    "\tadmin_server = FILE:%s/kadmin.log\n"
	    "\tdefault = FILE:%s/kdc.log\n", k->port, IT_KDC_REALM, k->dir,
	    k->dir, k->dir, k->dir, k->dir, k->dir);
	kdc_write(k, "kdc.conf", text);
	free(text);
	kdc_write(k, "kadm5.acl", "");
}

/* Gives the service keytab to the servers' user (pgcluster runs them as
 * postgres when the tests run as root). */
static void
kdc_give_keytab(const struct it_kdc *k)
{
	struct passwd	*pw;

	if (geteuid() != 0)
		return;
	if ((pw = getpwnam("postgres")) == NULL)
		it_fail("no user postgres for the service keytab");
	if (chown(k->server_keytab, pw->pw_uid, pw->pw_gid) == -1)
		it_fail("chown %s: %s", k->server_keytab, strerror(errno));
}

/* True when the KDC accepts a TCP connection; fails the test when it
 * exited. */
static bool
kdc_ready(struct it_kdc *k)
{
	int	fd, st;

	if (it_wait_pid(k->pid, 0, &st)) {
		char *log = kdc_printf("%s/krb5kdc.out", k->dir);
		char *tail = it_file_tail(log, 2000);

		k->pid = -1;
		it_fail("krb5kdc exited (%d): %s", it_exit_code(st), tail);
	}
	if ((fd = itp_tcp_connect(k->port)) == -1)
		return false;
	close(fd);
	return true;
}

struct it_kdc *
it_kdc_start(const char *host, const char *client)
{
	struct it_kdc	*k;
	struct it_spawn	 s;
	char		*path, *princ, *query, *out, *kdcbin;
	const char	*dbargv[] = { "kdb5_util", "-P", KDC_MASTER_PW, "-r",
	    IT_KDC_REALM, "create", "-s", NULL };
	const char	*klargv[] = { "klist", "-k", NULL, NULL };
	const char	*kiargv[] = { "kinit", "-c", NULL, "-k", "-t", NULL,
	    client, NULL };
	const char	*kdcargv[] = { NULL, "-n", NULL };

	if ((k = calloc(1, sizeof *k)) == NULL)
		it_fail("out of memory");
	k->pid = -1;
	k->dir = it_tmpdir("kdc");
	/* the servers' user reads krb5.conf and its keytab here */
	if (chmod(k->dir, 0755) == -1)
		it_fail("chmod %s: %s", k->dir, strerror(errno));
	k->port = it_free_port();
	k->server_keytab = kdc_printf("%s/server.keytab", k->dir);
	k->client_cc = kdc_printf("FILE:%s/client.ccache", k->dir);
	k->empty_cc = kdc_printf("FILE:%s/empty.ccache", k->dir);
	kdc_write_config(k);

	path = kdc_printf("%s/krb5.conf", k->dir);
	setenv("KRB5_CONFIG", path, 1);
	free(path);
	path = kdc_printf("%s/kdc.conf", k->dir);
	setenv("KRB5_KDC_PROFILE", path, 1);
	free(path);
	setenv("KRB5CCNAME", k->empty_cc, 1);

	/* the realm, its principals and keytabs */
	kdc_run(dbargv, NULL);
	princ = kdc_printf("postgres/%s", host);
	query = kdc_printf("addprinc -randkey %s", princ);
	kdc_admin(query, "created");
	free(query);
	query = kdc_printf("ktadd -k %s %s", k->server_keytab, princ);
	kdc_admin(query, "added to keytab");
	free(query);
	klargv[2] = k->server_keytab;
	kdc_run(klargv, &out);
	if (strstr(out, princ) == NULL)
		it_fail("%s lacks %s: %s", k->server_keytab, princ, out);
	free(out);
	free(princ);
	kdc_give_keytab(k);
	query = kdc_printf("addprinc -randkey %s", client);
	kdc_admin(query, "created");
	free(query);
	path = kdc_printf("%s/client.keytab", k->dir);
	query = kdc_printf("ktadd -k %s %s", path, client);
	kdc_admin(query, "added to keytab");
	free(query);

	/* krb5kdc -n: in the foreground, a child of this test */
	kdcbin = kdc_tool("krb5kdc");
	kdcargv[0] = kdcbin;
	memset(&s, 0, sizeof s);
	s.argv = kdcargv;
	s.in = -1;
	s.log_path = out = kdc_printf("%s/krb5kdc.out", k->dir);
	s.reset_signals = true;
	k->pid = it_spawn(&s);
	free(out);
	free(kdcbin);
	if (k->pid == -1)
		it_fail("cannot start krb5kdc: %s", strerror(errno));
	if (!IT_POLL_UNTIL(kdc_ready(k), 15000))
		it_fail("krb5kdc does not accept connections on 127.0.0.1:%d",
		    k->port);

	/* the client's ticket, in its own cache */
	kiargv[2] = k->client_cc;
	kiargv[5] = path;
	kdc_run(kiargv, NULL);
	free(path);
	return k;
}

const char *
it_kdc_server_keytab(const struct it_kdc *k)
{
	return k->server_keytab;
}

const char *
it_kdc_dir(const struct it_kdc *k)
{
	return k->dir;
}

void
it_kdc_ticket(struct it_kdc *k, bool on)
{
	setenv("KRB5CCNAME", on ? k->client_cc : k->empty_cc, 1);
}

void
it_kdc_stop(struct it_kdc *k)
{
	if (k == NULL)
		return;
	if (k->pid != -1)
		(void)it_stop_pid(k->pid, SIGTERM, 5000);
	unsetenv("KRB5_CONFIG");
	unsetenv("KRB5_KDC_PROFILE");
	unsetenv("KRB5CCNAME");
	it_rmdir_all(k->dir);
	free(k->dir);
	free(k->server_keytab);
	free(k->client_cc);
	free(k->empty_cc);
	free(k);
}
