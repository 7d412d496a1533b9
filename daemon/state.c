/*
 * state.c - the state file: per cluster, its generation and the highest
 * timeline seen.  Parsing and formatting are pure; loading and saving are
 * the only I/O, done on start and on a change (never per probe).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/num.h"
#include "common/request.h"

#include "state.h"

#define STATE_HEADER	"pgbeacon-state"
#define STATE_VERSION	1
/* Largest file read: far more than STATE_MAX_ENTRIES lines need. */
#define STATE_FILE_MAX	(8 * 1024 * 1024)

static void	state_fail(char *err, size_t errlen, size_t line,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

struct state *
state_new(const char *path)
{
	struct state	*st;

	if ((st = calloc(1, sizeof *st)) == NULL)
		return (NULL);
	if (path != NULL && path[0] != '\0' &&
	    (st->path = strdup(path)) == NULL) {
		free(st);
		return (NULL);
	}
	return (st);
}

void
state_free(struct state *st)
{
	if (st == NULL)
		return;
	free(st->entries);
	free(st->path);
	free(st);
}

/* "line N: reason" into err (line 0: no line). */
static void
state_fail(char *err, size_t errlen, size_t line, const char *fmt, ...)
{
	char	reason[200];
	va_list	ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(err, errlen, "line %zu: %s", line, reason);
	else
		snprintf(err, errlen, "%s", reason);
}

/* A cluster name as config.c allows it: [A-Za-z0-9_.-]{1,63}. */
struct state_entry *
state_find(struct state *st, const char *name)
{
	size_t	i;

	for (i = 0; i < st->n; i++)
		if (strcmp(st->entries[i].name, name) == 0)
			return (&st->entries[i]);
	return (NULL);
}

struct state_entry *
state_get(struct state *st, const char *name)
{
	struct state_entry	*e;
	size_t			 cap;

	if ((e = state_find(st, name)) != NULL)
		return (e);
	if (strlen(name) >= STATE_NAME_MAX || st->n >= STATE_MAX_ENTRIES)
		return (NULL);
	if (st->n == st->cap) {
		cap = st->cap == 0 ? 8 : st->cap * 2;
		e = realloc(st->entries, cap * sizeof *e);
		if (e == NULL)
			return (NULL);	/* st->entries is unchanged */
		st->entries = e;
		st->cap = cap;
	}
	e = &st->entries[st->n++];
	memset(e, 0, sizeof *e);
	memcpy(e->name, name, strlen(name) + 1);
	return (e);
}

/*
 * Parses one "cluster=..." line (len bytes, no newline) into a new entry.
 * -1 with err set.
 */
static int
state_parse_line(struct state *st, const char *p, size_t len, size_t lineno,
    char *err, size_t errlen)
{
	const char		*end = p + len, *tok, *eq;
	struct state_entry	 e;
	struct state_entry	*ne;
	size_t			 tlen, klen, vlen;
	uint64_t		 v;
	bool			 has_gen = false;

	memset(&e, 0, sizeof e);
	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p == end)
			break;
		tok = p;
		while (p < end && *p != ' ' && *p != '\t')
			p++;
		tlen = (size_t)(p - tok);
		if ((eq = memchr(tok, '=', tlen)) == NULL) {
			state_fail(err, errlen, lineno, "expected key=value, "
			    "not \"%.*s\"", (int)(tlen > 40 ? 40 : tlen), tok);
			return (-1);
		}
		klen = (size_t)(eq - tok);
		vlen = tlen - klen - 1;
		eq++;
#define KEY(k)	(klen == sizeof(k) - 1 && memcmp(tok, k, klen) == 0)
		if (KEY("cluster")) {
			if (!pgbc_config_name_ok(eq, vlen)) {
				state_fail(err, errlen, lineno, "bad cluster "
				    "name");
				return (-1);
			}
			memcpy(e.name, eq, vlen);
			e.name[vlen] = '\0';
		} else if (KEY("generation")) {
			if (!pgbc_parse_u64(eq, vlen, UINT64_MAX,
			    &e.generation)) {
				state_fail(err, errlen, lineno, "bad generation");
				return (-1);
			}
			has_gen = true;
		} else if (KEY("system_identifier")) {
			if (!pgbc_parse_u64(eq, vlen, UINT64_MAX,
			    &e.system_id)) {
				state_fail(err, errlen, lineno,
				    "bad system_identifier");
				return (-1);
			}
		} else if (KEY("timeline")) {
			if (!pgbc_parse_u64(eq, vlen, UINT32_MAX, &v)) {
				state_fail(err, errlen, lineno, "bad timeline");
				return (-1);
			}
			e.timeline = (uint32_t)v;
		} else if (KEY("timeline_host")) {
			if (vlen >= sizeof e.timeline_host) {
				state_fail(err, errlen, lineno,
				    "timeline_host too long");
				return (-1);
			}
			memcpy(e.timeline_host, eq, vlen);
			e.timeline_host[vlen] = '\0';
		}
		/* Other keys: a newer daemon's; ignored. */
#undef KEY
	}
	if (e.name[0] == '\0' || !has_gen) {
		state_fail(err, errlen, lineno, "a cluster line needs cluster= "
		    "and generation=");
		return (-1);
	}
	if (state_find(st, e.name) != NULL) {
		state_fail(err, errlen, lineno, "cluster %s twice", e.name);
		return (-1);
	}
	if ((ne = state_get(st, e.name)) == NULL) {
		state_fail(err, errlen, lineno, "too many clusters or out of "
		    "memory");
		return (-1);
	}
	*ne = e;
	return (0);
}

int
state_parse(struct state *st, const char *text, size_t len, char *err,
    size_t errlen)
{
	const char	*p = text, *end = text + len, *nl;
	size_t		 lineno = 0, llen;
	bool		 header = false;
	uint64_t	 version;

	st->n = 0;
	if (memchr(text, '\0', len) != NULL) {
		state_fail(err, errlen, 0, "binary data");
		return (-1);
	}
	while (p < end) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		llen = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (nl == NULL) {
			/* The writer ends every line: a cut file. */
			state_fail(err, errlen, lineno, "last line unterminated");
			goto fail;
		}
		if (llen == 0 || p[0] == '#') {
			p = nl + 1;
			continue;
		}
		if (!header) {
			if (llen <= sizeof(STATE_HEADER) ||
			    memcmp(p, STATE_HEADER " ", sizeof STATE_HEADER) != 0 ||
			    !pgbc_parse_u64(p + sizeof STATE_HEADER,
			    llen - sizeof STATE_HEADER, UINT32_MAX, &version)) {
				state_fail(err, errlen, lineno, "not a pgbeacon "
				    "state file (no \"" STATE_HEADER " %d\")",
				    STATE_VERSION);
				goto fail;
			}
			if (version != STATE_VERSION) {
				state_fail(err, errlen, lineno, "version %" PRIu64
				    " unknown here", version);
				goto fail;
			}
			header = true;
		} else if (llen < 8 || memcmp(p, "cluster=", 8) != 0) {
			state_fail(err, errlen, lineno, "expected cluster=...");
			goto fail;
		} else if (state_parse_line(st, p, llen, lineno, err,
		    errlen) == -1)
			goto fail;
		p = nl + 1;
	}
	if (!header) {
		state_fail(err, errlen, 0, "empty file (no \"" STATE_HEADER
		    " %d\")", STATE_VERSION);
		goto fail;
	}
	return (0);
fail:
	st->n = 0;
	return (-1);
}

char *
state_format(const struct state *st)
{
	char	*text = NULL, *p;
	size_t	 len = 0, i;
	FILE	*f;

	if ((f = open_memstream(&text, &len)) == NULL)
		return (NULL);
	fprintf(f, "# pgbeacond state: per cluster, the generation and the "
	    "highest timeline seen.\n# Written by pgbeacond on every change; "
	    "clear a cluster's timeline with\n# \"pgbeacon forget CLUSTER\", "
	    "not by editing this file.\n" STATE_HEADER " %d\n", STATE_VERSION);
	for (i = 0; i < st->n; i++) {
		const struct state_entry *e = &st->entries[i];
		char host[STATE_HOST_MAX];

		snprintf(host, sizeof host, "%s", e->timeline_host);
		for (p = host; *p != '\0'; p++)
			if ((unsigned char)*p <= ' ' || *p == 0x7f)
				*p = '?';
		fprintf(f, "cluster=%s generation=%" PRIu64
		    " system_identifier=%" PRIu64 " timeline=%" PRIu32, e->name,
		    e->generation, e->system_id, e->timeline);
		if (host[0] != '\0')
			fprintf(f, " timeline_host=%s", host);
		fputc('\n', f);
	}
	if (ferror(f)) {
		fclose(f);
		free(text);
		return (NULL);
	}
	if (fclose(f) != 0) {
		free(text);
		return (NULL);
	}
	return (text);
}

enum state_load_result
state_load(struct state *st, char *err, size_t errlen)
{
	char	*buf = NULL;
	size_t	 len = 0, cap = 0;
	ssize_t	 r;
	int	 fd;

	st->n = 0;
	if (st->path == NULL)
		return (STATE_MISSING);
	if ((fd = open(st->path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return (STATE_MISSING);
		state_fail(err, errlen, 0, "cannot open: %s", strerror(errno));
		return (STATE_CORRUPT);
	}
	for (;;) {
		if (len == cap) {
			char *nb;

			if (cap >= STATE_FILE_MAX) {
				state_fail(err, errlen, 0, "larger than %d bytes",
				    STATE_FILE_MAX);
				goto fail;
			}
			cap = cap == 0 ? 4096 : cap * 2;
			if ((nb = realloc(buf, cap)) == NULL) {
				state_fail(err, errlen, 0, "out of memory");
				goto fail;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			state_fail(err, errlen, 0, "cannot read: %s",
			    strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	fd = -1;
	if (state_parse(st, buf != NULL ? buf : "", len, err, errlen) == -1)
		goto fail;
	free(buf);
	return (STATE_LOADED);
fail:
	if (fd != -1)
		close(fd);
	free(buf);
	st->n = 0;
	return (STATE_CORRUPT);
}

/* Writes all of buf to fd; -1 with errno. */
static int
state_write_all(int fd, const char *buf, size_t len)
{
	ssize_t	w;

	while (len > 0) {
		w = write(fd, buf, len);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return (-1);
		buf += w;
		len -= (size_t)w;
	}
	return (0);
}

int
state_save(const struct state *st, char *err, size_t errlen)
{
	char	*text = NULL, *tmp = NULL;
	int	 fd = -1, saved;

	if (st->path == NULL)
		return (0);
	if ((text = state_format(st)) == NULL ||
	    asprintf(&tmp, "%s.tmp", st->path) == -1) {
		tmp = NULL;
		state_fail(err, errlen, 0, "out of memory");
		goto fail;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0640);
	if (fd == -1) {
		state_fail(err, errlen, 0, "cannot create %s: %s", tmp,
		    strerror(errno));
		free(tmp);
		tmp = NULL;	/* nothing to remove */
		goto fail;
	}
	if (state_write_all(fd, text, strlen(text)) == -1) {
		state_fail(err, errlen, 0, "cannot write %s: %s", tmp,
		    strerror(errno));
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		state_fail(err, errlen, 0, "cannot write %s: %s", tmp,
		    strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, st->path) == -1) {
		state_fail(err, errlen, 0, "cannot rename %s to %s: %s", tmp,
		    st->path, strerror(errno));
		goto fail;
	}
	free(tmp);
	free(text);
	return (0);
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	if (tmp != NULL) {
		unlink(tmp);
		free(tmp);
	}
	free(text);
	errno = saved;
	return (-1);
}
