/*
 * slowdns.c - a slow DNS server for the tests: it answers every query
 * late, so that a test can show that resolving a name does not block an
 * event loop.
 *
 *   slowdns DELAY_MS NAME=IPV4 [NAME=IPV4 ...]
 *
 * Listens on UDP 127.0.0.1 on a free port and prints "PORT <n>" on
 * stdout.  A query (one question, class IN) for a NAME given is answered
 * DELAY_MS ms after it came: type A with its IPV4 (TTL 0), any other type
 * with no answer; a query for another name gets NXDOMAIN, as late.  It
 * exits on EOF on stdin, and with its parent (PR_SET_PDEATHSIG).
 */
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#define MAX_NAMES	16
#define MAX_MSG		512

struct name {
	char		 name[256];	/* dotted, no final dot */
	struct in_addr	 addr;
};

/* One answer waiting for its time.  Owned by the pending list until its
 * timer's callback sends and frees it (or the exit frees it). */
struct reply {
	TAILQ_ENTRY(reply)	 entry;
	struct event		*ev;		/* owned */
	int			 fd;		/* borrowed */
	struct sockaddr_storage	 to;
	socklen_t		 tolen;
	unsigned char		 msg[MAX_MSG];
	size_t			 len;
};

static struct name	names[MAX_NAMES];
static int		nnames;
static struct timeval	delay;
static TAILQ_HEAD(, reply) pending = TAILQ_HEAD_INITIALIZER(pending);

static void	reply_cb(evutil_socket_t fd, short what, void *arg);

/*
 * The question of the query q (len bytes) as a dotted name in out; the
 * offset just after its QTYPE and QCLASS, or 0 when malformed.
 */
static size_t
parse_question(const unsigned char *q, size_t len, char *out, size_t outlen,
    uint16_t *qtype)
{
	size_t	 off = 12, o = 0;
	unsigned n;

	if (len < 12 || q[4] != 0 || q[5] != 1)
		return (0);
	while (off < len && (n = q[off]) != 0) {
		if (n > 63 || off + 1 + n >= len || o + n + 2 > outlen)
			return (0);
		if (o > 0)
			out[o++] = '.';
		memcpy(out + o, q + off + 1, n);
		o += n;
		off += 1 + n;
	}
	if (off + 5 > len)
		return (0);
	out[o] = '\0';
	*qtype = (uint16_t)(q[off + 1] << 8 | q[off + 2]);
	return (off + 5);
}

/* Builds the answer to query q in r; 0, or -1 when q is malformed. */
static int
make_reply(struct reply *r, const unsigned char *q, size_t len)
{
	char		 qname[256];
	uint16_t	 qtype;
	size_t		 qend;
	int		 i, found = -1;

	if ((qend = parse_question(q, len, qname, sizeof qname, &qtype)) == 0)
		return (-1);
	for (i = 0; i < nnames; i++)
		if (strcasecmp(names[i].name, qname) == 0)
			found = i;
	memcpy(r->msg, q, qend);	/* id, flags, counts, question */
	r->msg[2] = 0x84 | (q[2] & 0x01);	/* QR, AA, RD as asked */
	r->msg[3] = found == -1 ? 0x03 : 0x00;	/* NXDOMAIN or NOERROR */
	r->msg[6] = r->msg[7] = 0;		/* ANCOUNT */
	r->msg[8] = r->msg[9] = r->msg[10] = r->msg[11] = 0;
	r->len = qend;
	if (found != -1 && qtype == 1) {
		static const unsigned char rr[] = { 0xc0, 0x0c, 0, 1, 0, 1,
		    0, 0, 0, 0, 0, 4 };

		if (r->len + sizeof rr + 4 > sizeof r->msg)
			return (-1);
		r->msg[7] = 1;
		memcpy(r->msg + r->len, rr, sizeof rr);
		memcpy(r->msg + r->len + sizeof rr, &names[found].addr, 4);
		r->len += sizeof rr + 4;
	}
	return (0);
}

static void
query_cb(evutil_socket_t fd, short what, void *arg)
{
	struct event_base	*base = arg;
	unsigned char		 q[MAX_MSG];
	struct reply		*r;
	ssize_t			 n;

	(void)what;
	for (;;) {
		if ((r = calloc(1, sizeof *r)) == NULL)
			return;
		r->tolen = sizeof r->to;
		n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&r->to,
		    &r->tolen);
		if (n <= 0 || make_reply(r, q, (size_t)n) == -1 ||
		    (r->ev = evtimer_new(base, reply_cb, r)) == NULL ||
		    evtimer_add(r->ev, &delay) == -1) {
			if (r->ev != NULL)
				event_free(r->ev);
			free(r);
			if (n <= 0)
				return;
			continue;
		}
		r->fd = fd;
		TAILQ_INSERT_TAIL(&pending, r, entry);
	}
}

static void
reply_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reply	*r = arg;

	(void)fd;
	(void)what;
	(void)sendto(r->fd, r->msg, r->len, 0, (struct sockaddr *)&r->to,
	    r->tolen);
	TAILQ_REMOVE(&pending, r, entry);
	event_free(r->ev);
	free(r);
}

static void
stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	char	buf[256];

	(void)what;
	if (read(fd, buf, sizeof buf) <= 0)
		event_base_loopbreak(arg);
}

int
main(int argc, char **argv)
{
	struct event_base	*base;
	struct event		*qev, *iev;
	struct reply		*r;
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof sin;
	char			*eq, *end;
	long			 ms;
	int			 fd, i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (argc < 3) {
		fprintf(stderr, "usage: slowdns DELAY_MS NAME=IPV4 ...\n");
		return (2);
	}
	errno = 0;
	ms = strtol(argv[1], &end, 10);
	if (errno != 0 || *end != '\0' || ms < 0 || ms > 600000) {
		fprintf(stderr, "slowdns: bad delay %s\n", argv[1]);
		return (2);
	}
	delay.tv_sec = ms / 1000;
	delay.tv_usec = (ms % 1000) * 1000;
	for (i = 2; i < argc && nnames < MAX_NAMES; i++) {
		eq = strchr(argv[i], '=');
		if (eq == NULL || (size_t)(eq - argv[i]) >= sizeof names[0].name ||
		    inet_pton(AF_INET, eq + 1, &names[nnames].addr) != 1) {
			fprintf(stderr, "slowdns: bad NAME=IPV4 %s\n", argv[i]);
			return (2);
		}
		memcpy(names[nnames].name, argv[i], (size_t)(eq - argv[i]));
		nnames++;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &slen) == -1) {
		fprintf(stderr, "slowdns: socket: %s\n", strerror(errno));
		return (1);
	}
	if ((base = event_base_new()) == NULL ||
	    (qev = event_new(base, fd, EV_READ | EV_PERSIST, query_cb,
	    base)) == NULL ||
	    (iev = event_new(base, STDIN_FILENO, EV_READ | EV_PERSIST,
	    stdin_cb, base)) == NULL ||
	    event_add(qev, NULL) == -1 || event_add(iev, NULL) == -1) {
		fprintf(stderr, "slowdns: cannot set up the event loop\n");
		return (1);
	}
	printf("PORT %d\n", ntohs(sin.sin_port));
	fflush(stdout);
	event_base_dispatch(base);
	while ((r = TAILQ_FIRST(&pending)) != NULL) {
		TAILQ_REMOVE(&pending, r, entry);
		event_free(r->ev);
		free(r);
	}
	event_free(iev);
	event_free(qev);
	event_base_free(base);
	close(fd);
	return (0);
}
