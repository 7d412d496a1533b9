/*
 * it_install.c - `make install` into a DESTDIR with another PREFIX and
 * SYSCONFDIR: every file lands where the variables say, the unit file
 * points at the installed binary and configuration, the example
 * configuration passes `pgbeacond -t`, a program builds against the
 * installed library through pkg-config and runs (shared, and statically
 * with docs/library.md's recipe), and a second install leaves an edited
 * configuration alone.
 *
 * Runs make from the repository root (the tests' working directory) with
 * the plain build directory, whatever $BUILD says: the sanitizer build's
 * objects cannot be linked without the sanitizer flags.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "pgbeacon.h"
#include "support/itest.h"
#include "support/spawn.h"

#include "../check_main.h"

#define PREFIX	"/opt/pgb"
#define ETC	"/opt/pgb/etc"

static char *root;	/* it_tmpdir("install"), set up per test */

/* Runs cmd with sh; its exit status, its output in *out (may be NULL). */
static int
run(char **out, const char *fmt, ...)
{
	char *cmd, buf[4096];
	size_t len = 0, n;
	va_list ap;
	FILE *p;
	int rc;

	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		ck_abort_msg("out of memory");
	va_end(ap);
	if ((p = it_popen(cmd)) == NULL)
		ck_abort_msg("it_popen %s", cmd);
	if (out != NULL)
		*out = NULL;
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
		if (out == NULL)
			continue;
		*out = realloc(*out, len + n + 1);
		memcpy(*out + len, buf, n);
		len += n;
		(*out)[len] = '\0';
	}
	rc = it_pclose(p);
	free(cmd);
	if (out != NULL && *out == NULL)
		*out = strdup("");
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static char *
path(const char *rel)
{
	char *p;

	if (asprintf(&p, "%s%s", root, rel) < 0)
		ck_abort_msg("out of memory");
	return p;
}

static mode_t
mode_of(const char *rel)
{
	struct stat st;
	char *p = path(rel);
	int rc = lstat(p, &st);

	free(p);
	return rc == 0 ? st.st_mode : 0;
}

/* `make install` into root; a make running us must not pass its flags
 * (BUILD, SANITIZE) down through MAKEFLAGS. */
static void
make_install(void)
{
	char *out;

	ck_assert_msg(run(&out, "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "
	    "make -s --no-print-directory BUILD=build DESTDIR=%s PREFIX="
	    PREFIX " SYSCONFDIR=" ETC " install 2>&1", root) == 0,
	    "make install failed:\n%s", out);
	free(out);
}

static void
setup(void)
{
	root = it_tmpdir("install");
	make_install();
}

static void
teardown(void)
{
	char *out;

	(void)run(&out, "rm -rf %s", root);
	free(out);
	free(root);
	root = NULL;
}

START_TEST(test_files_land_where_the_variables_say)
{
	ck_assert(S_ISREG(mode_of(PREFIX "/sbin/pgbeacond")));
	ck_assert_int_eq(mode_of(PREFIX "/sbin/pgbeacond") & 0777, 0755);
	ck_assert(S_ISREG(mode_of(PREFIX "/bin/pgbeacon")));
	ck_assert(S_ISREG(mode_of(PREFIX "/lib/libpgbeacon.so."
	    PGB_VERSION_STRING)));
	ck_assert(S_ISLNK(mode_of(PREFIX "/lib/libpgbeacon.so.1")));
	ck_assert(S_ISLNK(mode_of(PREFIX "/lib/libpgbeacon.so")));
	ck_assert(S_ISREG(mode_of(PREFIX "/lib/libpgbeacon.a")));
	ck_assert(S_ISREG(mode_of(PREFIX "/include/pgbeacon.h")));
	ck_assert(S_ISREG(mode_of(PREFIX "/lib/pkgconfig/pgbeacon.pc")));
	{
		char *out;

		/* The .pc names the PREFIX of this install, not the default,
		 * and derives libdir and includedir from it. */
		ck_assert_int_eq(run(&out, "grep -cxF -e 'prefix=" PREFIX "' "
		    "-e 'libdir=${prefix}/lib' -e 'includedir=${prefix}/include' "
		    "%s" PREFIX "/lib/pkgconfig/pgbeacon.pc", root), 0);
		ck_assert_str_eq(out, "3\n");
		free(out);
	}
	ck_assert(S_ISREG(mode_of(PREFIX "/lib/systemd/system/pgbeacon.service")));
	ck_assert(S_ISREG(mode_of(ETC "/pgbeacon/pgbeacon.conf")));
	ck_assert(S_ISREG(mode_of(PREFIX "/share/man/man1/pgbeacon.1")));
	ck_assert(S_ISREG(mode_of(PREFIX "/share/man/man3/libpgbeacon.3")));
	ck_assert(S_ISREG(mode_of(PREFIX "/share/man/man5/pgbeacon.conf.5")));
	ck_assert(S_ISREG(mode_of(PREFIX "/share/man/man8/pgbeacond.8")));
	/* It may name a password file or hold one: not world-readable. */
	ck_assert_int_eq(mode_of(ETC "/pgbeacon/pgbeacon.conf") & 0777, 0640);
}
END_TEST

/* Every installed page renders, and groff has nothing to say about it. */
START_TEST(test_man_pages_render_without_warnings)
{
	static const char *const pages[] = {
		"man1/pgbeacon.1", "man3/libpgbeacon.3", "man5/pgbeacon.conf.5",
		"man8/pgbeacond.8",
	};
	size_t	 i;
	char	*out;

	for (i = 0; i < sizeof pages / sizeof pages[0]; i++) {
		ck_assert_msg(run(&out, "LC_ALL=C.UTF-8 MANWIDTH=80 man "
		    "--warnings=all -l %s" PREFIX "/share/man/%s 2>&1 >/dev/null",
		    root, pages[i]) == 0, "%s: man failed: %s", pages[i], out);
		ck_assert_msg(out[0] == '\0', "%s: %s", pages[i], out);
		free(out);
	}
}
END_TEST

START_TEST(test_unit_runs_the_installed_binary_on_the_installed_config)
{
	char *out;

	ck_assert_int_eq(run(&out, "grep '^Exec' %s" PREFIX
	    "/lib/systemd/system/pgbeacon.service", root), 0);
	ck_assert_msg(strstr(out, "ExecStartPre=" PREFIX "/sbin/pgbeacond -t -c "
	    ETC "/pgbeacon/pgbeacon.conf\n") != NULL, "unit says:\n%s", out);
	ck_assert_msg(strstr(out, "ExecStart=" PREFIX "/sbin/pgbeacond -c "
	    ETC "/pgbeacon/pgbeacon.conf\n") != NULL, "unit says:\n%s", out);
	ck_assert_msg(strstr(out, "/usr/local") == NULL, "unit says:\n%s", out);
	free(out);

	ck_assert_msg(run(&out, "%s" PREFIX "/sbin/pgbeacond -t -c %s" ETC
	    "/pgbeacon/pgbeacon.conf 2>&1", root, root) == 0,
	    "the installed example configuration is refused:\n%s", out);
	free(out);
}
END_TEST

START_TEST(test_program_builds_against_the_installed_library)
{
	char *out, *src = path("/v.c");
	FILE *f = fopen(src, "w");

	ck_assert_ptr_nonnull(f);
	fputs("#include <stdio.h>\n#include <string.h>\n#include <pgbeacon.h>\n"
	    "int main(void) { puts(pgb_version()); "
	    "return strcmp(pgb_version(), PGB_VERSION_STRING) != 0; }\n", f);
	fclose(f);
	/* The installed .pc, moved under DESTDIR as if installed there
	 * (--define-variable would also redefine libpq.pc's includedir). */
	ck_assert_int_eq(run(NULL, "mkdir -p %s/pc && sed 's|" PREFIX "|%s"
	    PREFIX "|g' %s" PREFIX "/lib/pkgconfig/pgbeacon.pc > "
	    "%s/pc/pgbeacon.pc", root, root, root, root), 0);
	ck_assert_msg(run(&out, "cc -o %s/v %s $(PKG_CONFIG_PATH=%s/pc "
	    "pkg-config --cflags --libs pgbeacon) 2>&1", root, src, root) == 0,
	    "cannot build against the installed library:\n%s", out);
	free(out);
	ck_assert_int_eq(run(&out, "LD_LIBRARY_PATH=%s" PREFIX "/lib %s/v",
	    root, root), 0);
	ck_assert_str_eq(out, PGB_VERSION_STRING "\n");
	free(out);
	free(src);
}
END_TEST

/*
 * docs/library.md's recipe for the static archive, read from it (the
 * lines from "    cc -o app app.c $(pkg-config --cflags pgbeacon) \"
 * to the first without a trailing backslash), into a new string.
 */
static char *
readme_static_recipe(void)
{
	static const char start[] =
	    "    cc -o app app.c $(pkg-config --cflags pgbeacon) \\\n";
	FILE	*f = fopen("docs/library.md", "r");
	char	 line[512], *cmd = NULL;
	size_t	 len = 0, n;
	bool	 in = false;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (!in && strcmp(line, start) != 0)
			continue;
		in = true;
		n = strlen(line);
		cmd = realloc(cmd, len + n + 1);
		ck_assert_ptr_nonnull(cmd);
		memcpy(cmd + len, line, n + 1);
		len += n;
		if (n < 2 || line[n - 2] != '\\')
			break;
	}
	fclose(f);
	ck_assert_msg(cmd != NULL, "docs/library.md has no static-link recipe");
	return cmd;
}

/* The static recipe of docs/library.md builds a program that runs without
 * libpgbeacon.so: ldd does not list it, libpq stays shared. */
START_TEST(test_readme_static_recipe_links_the_archive)
{
	char *out, *recipe = readme_static_recipe(), *src = path("/st/app.c");
	FILE *f;

	ck_assert_int_eq(run(NULL, "mkdir -p %s/st %s/pc && sed 's|" PREFIX
	    "|%s" PREFIX "|g' %s" PREFIX "/lib/pkgconfig/pgbeacon.pc > "
	    "%s/pc/pgbeacon.pc", root, root, root, root, root), 0);
	ck_assert_ptr_nonnull(f = fopen(src, "w"));
	/* The event-driven API and a pgb_db pull libevent and libpq in. */
	fputs("#include <stdio.h>\n#include <pgbeacon.h>\n"
	    "int main(int argc, char **argv) {\n"
	    "\tpgb_loop *loop = pgb_loop_new(NULL, NULL);\n"
	    "\tif (argc > 1)\n"
	    "\t\tpgb_db_free(pgb_db_new(argv[1], \"main\", \"master\", NULL));\n"
	    "\tputs(pgb_version());\n"
	    "\treturn loop != NULL;\n}\n", f);
	fclose(f);
	free(src);
	src = path("/st/recipe.sh");
	ck_assert_ptr_nonnull(f = fopen(src, "w"));
	fputs(recipe, f);
	fclose(f);
	ck_assert_msg(run(&out, "cd %s/st && PKG_CONFIG_PATH=%s/pc sh -e "
	    "recipe.sh 2>&1", root, root) == 0, "the docs' recipe fails:\n"
	    "%s\n%s", recipe, out);
	free(out);
	ck_assert_int_eq(run(&out, "%s/st/app", root), 0);
	ck_assert_str_eq(out, PGB_VERSION_STRING "\n");
	free(out);
	ck_assert_int_eq(run(&out, "ldd %s/st/app", root), 0);
	ck_assert_msg(strstr(out, "libpgbeacon") == NULL, "ldd: %s", out);
	ck_assert_msg(strstr(out, "libpq.so") != NULL, "ldd: %s", out);
	free(out);
	free(recipe);
	free(src);
}
END_TEST

/* The installed man pages carry the version of pgbeacon.h. */
START_TEST(test_man_pages_carry_the_version)
{
	char *out;

	ck_assert_int_eq(run(&out, "head -qn1 %s" PREFIX "/share/man/man*/*",
	    root), 0);
	ck_assert_msg(strstr(out, "@VERSION@") == NULL, "%s", out);
	ck_assert_msg(strstr(out, "\"pgbeacon " PGB_VERSION_STRING "\"")
	    != NULL, "%s", out);
	free(out);
}
END_TEST

/* A LIBDIR outside PREFIX is written as it is, not under ${prefix}. */
START_TEST(test_pc_with_libdir_outside_prefix)
{
	char *out;

	ck_assert_msg(run(&out, "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "
	    "make -s --no-print-directory BUILD=build DESTDIR=%s/other PREFIX="
	    PREFIX " LIBDIR=/srv/lib64 SYSCONFDIR=" ETC " install 2>&1", root)
	    == 0, "make install failed:\n%s", out);
	free(out);
	ck_assert_int_eq(run(&out, "grep -cxF -e 'prefix=" PREFIX "' "
	    "-e 'libdir=/srv/lib64' -e 'includedir=${prefix}/include' "
	    "%s/other/srv/lib64/pkgconfig/pgbeacon.pc", root), 0);
	ck_assert_str_eq(out, "3\n");
	free(out);
}
END_TEST

START_TEST(test_reinstall_keeps_an_edited_config)
{
	char *out, *conf = path(ETC "/pgbeacon/pgbeacon.conf");
	FILE *f = fopen(conf, "a");

	ck_assert_ptr_nonnull(f);
	fputs("# edited by the administrator\n", f);
	fclose(f);
	make_install();
	ck_assert_int_eq(run(&out, "grep -c 'edited by the administrator' %s",
	    conf), 0);
	ck_assert_str_eq(out, "1\n");
	free(out);
	free(conf);
}
END_TEST

static Suite *
install_suite(void)
{
	Suite *s = suite_create("install");
	TCase *tc = tcase_create("install");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);	/* builds build/ if it is not there */
	tcase_add_test(tc, test_files_land_where_the_variables_say);
	tcase_add_test(tc, test_man_pages_render_without_warnings);
	tcase_add_test(tc, test_unit_runs_the_installed_binary_on_the_installed_config);
	tcase_add_test(tc, test_program_builds_against_the_installed_library);
	tcase_add_test(tc, test_readme_static_recipe_links_the_archive);
	tcase_add_test(tc, test_man_pages_carry_the_version);
	tcase_add_test(tc, test_pc_with_libdir_outside_prefix);
	tcase_add_test(tc, test_reinstall_keeps_an_edited_config);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run_suite(install_suite());
}
