/*
 * faultrelay.c - a TCP forwarder for the tests, put between pgbeacond and
 * a PostgreSQL server to make the network misbehave on command.  This
 * machine has neither netem nor iptables, so faults are made here.
 *
 *   faultrelay TARGET_HOST TARGET_PORT
 *
 * Listens on 127.0.0.1 on a free port and prints "PORT <n>" on stdout.
 * Then reads one command per line on stdin and answers "OK" (or "ERR
 * <reason>") on stdout once the command is in force:
 *
 *   pass        forward everything both ways (the initial mode)
 *   delay N     forward everything N ms late (0 .. 600000)
 *   blackhole   forward nothing and close nothing: no FIN, no RST; new
 *               connections are accepted and left unanswered
 *   reset       reset every connection (RST) and every new one
 *   refuse      stop listening: new connections are refused
 *               (ECONNREFUSED); established ones keep their mode
 *   close       accept new connections and close them at once (FIN,
 *               nothing read or sent); established ones keep their mode
 *
 * Leaving blackhole forwards what was held back; leaving refuse listens
 * again on the same port.  It exits on EOF on stdin, and with its parent
 * (PR_SET_PDEATHSIG), so a test that dies takes it along.
 */
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

enum relay_mode {
	RELAY_PASS,		/* forward at once */
	RELAY_DELAY,		/* forward delay_ms late */
	RELAY_BLACKHOLE,	/* hold everything, close nothing */
	RELAY_RESET,		/* RST every connection */
};

/* Data read from one side, due on the other at due_ms.  Owned by its
 * direction's queue. */
struct relay_chunk {
	TAILQ_ENTRY(relay_chunk) entry;
	int64_t			 due_ms;
	struct evbuffer		*data;		/* owned */
};
TAILQ_HEAD(relay_chunks, relay_chunk);

struct relay;

/* One accepted connection and its upstream.  Owned by the relay's list. */
struct relay_pair {
	LIST_ENTRY(relay_pair)	 entry;
	struct relay		*relay;		/* back pointer */
	struct bufferevent	*side[2];	/* owned; 0 client, 1 server */
	struct relay_chunks	 queue[2];	/* from side i, to side 1 - i */
	struct event		*timer;		/* owned; the next due chunk */
	bool			 eof[2];	/* side i closed its end */
	bool			 connecting;	/* side[1] connect started */
	bool			 connected;	/* side[1] was connected */
};
LIST_HEAD(relay_pairs, relay_pair);

struct relay {
	struct event_base	*base;		/* owned */
	struct evconnlistener	*listener;	/* owned; NULL while refusing */
	struct sockaddr_in	 listen_addr;	/* the port, once bound */
	struct sockaddr_in	 target;
	struct relay_pairs	 pairs;
	enum relay_mode		 mode;
	int			 delay_ms;
	bool			 close_new;	/* "close": new connections closed at once */
	struct bufferevent	*ctl;		/* owned; reads stdin */
};

static void	relay_pair_flush(struct relay_pair *);

static int64_t
relay_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
relay_pair_free(struct relay_pair *p)
{
	struct relay_chunk *c;
	int i;

	LIST_REMOVE(p, entry);
	for (i = 0; i < 2; i++) {
		while ((c = TAILQ_FIRST(&p->queue[i])) != NULL) {
			TAILQ_REMOVE(&p->queue[i], c, entry);
			evbuffer_free(c->data);
			free(c);
		}
		if (p->side[i] != NULL)
			bufferevent_free(p->side[i]);
	}
	event_free(p->timer);
	free(p);
}

/* Closes p with an RST towards the client. */
static void
relay_pair_reset(struct relay_pair *p)
{
	struct linger lg = { 1, 0 };
	evutil_socket_t fd = bufferevent_getfd(p->side[0]);

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	relay_pair_free(p);
}

/* True when p is done: a side closed and nothing is left to deliver. */
static bool
relay_pair_done(struct relay_pair *p)
{
	int i;

	for (i = 0; i < 2; i++)
		if (p->eof[i] && TAILQ_EMPTY(&p->queue[i]) &&
		    evbuffer_get_length(bufferevent_get_output(
		    p->side[1 - i])) == 0)
			return true;
	return false;
}

/* Moves what is due from the queues to the other sides, per the mode. */
static void
relay_pair_flush(struct relay_pair *p)
{
	struct relay *r = p->relay;
	struct relay_chunk *c;
	int64_t now = relay_now_ms(), next = -1;
	struct timeval tv;
	int i;

	if (r->mode == RELAY_BLACKHOLE || !p->connected)
		return;
	for (i = 0; i < 2; i++) {
		while ((c = TAILQ_FIRST(&p->queue[i])) != NULL) {
			if (r->mode == RELAY_DELAY && c->due_ms > now) {
				if (next < 0 || c->due_ms < next)
					next = c->due_ms;
				break;
			}
			TAILQ_REMOVE(&p->queue[i], c, entry);
			bufferevent_write_buffer(p->side[1 - i], c->data);
			evbuffer_free(c->data);
			free(c);
		}
	}
	if (next >= 0) {
		tv.tv_sec = (next - now) / 1000;
		tv.tv_usec = ((next - now) % 1000) * 1000;
		event_add(p->timer, &tv);
	}
	if (relay_pair_done(p))
		relay_pair_free(p);
}

static void
relay_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	relay_pair_flush(arg);
}

static void
relay_read_cb(struct bufferevent *bev, void *arg)
{
	struct relay_pair *p = arg;
	struct relay_chunk *c;
	int i = bev == p->side[0] ? 0 : 1;

	if (p->relay->mode == RELAY_BLACKHOLE)
		return;		/* left in the input buffer */
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->data = evbuffer_new()) == NULL) {
		free(c);
		return;
	}
	c->due_ms = relay_now_ms() + (p->relay->mode == RELAY_DELAY ?
	    p->relay->delay_ms : 0);
	evbuffer_add_buffer(c->data, bufferevent_get_input(bev));
	TAILQ_INSERT_TAIL(&p->queue[i], c, entry);
	relay_pair_flush(p);
}

static void
relay_write_cb(struct bufferevent *bev, void *arg)
{
	struct relay_pair *p = arg;

	(void)bev;
	if (relay_pair_done(p))
		relay_pair_free(p);
}

static void
relay_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct relay_pair *p = arg;
	int i = bev == p->side[0] ? 0 : 1;

	if (what & BEV_EVENT_CONNECTED) {
		p->connected = true;
		if (p->relay->mode != RELAY_BLACKHOLE)
			bufferevent_enable(p->side[0], EV_READ);
		relay_pair_flush(p);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		relay_pair_reset(p);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* what was read before the EOF still goes across */
		relay_read_cb(bev, p);
		p->eof[i] = true;
		bufferevent_disable(bev, EV_READ);
		if (relay_pair_done(p))
			relay_pair_free(p);
	}
}

/* Connects p upstream (not in blackhole: a held connection stays put). */
static void
relay_pair_connect(struct relay_pair *p)
{
	struct relay *r = p->relay;

	if (p->connecting)
		return;
	p->connecting = true;
	bufferevent_enable(p->side[1], EV_READ);
	if (bufferevent_socket_connect(p->side[1],
	    (struct sockaddr *)&r->target, sizeof(r->target)) != 0)
		relay_pair_reset(p);
}

static void
relay_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct relay *r = arg;
	struct relay_pair *p;
	int i;

	(void)l;
	(void)sa;
	(void)salen;
	if (r->close_new || (p = calloc(1, sizeof(*p))) == NULL) {
		close(fd);
		return;
	}
	p->relay = r;
	LIST_INSERT_HEAD(&r->pairs, p, entry);
	p->side[0] = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	p->side[1] = bufferevent_socket_new(r->base, -1, BEV_OPT_CLOSE_ON_FREE);
	p->timer = evtimer_new(r->base, relay_timer_cb, p);
	TAILQ_INIT(&p->queue[0]);
	TAILQ_INIT(&p->queue[1]);
	if (p->side[0] == NULL || p->side[1] == NULL || p->timer == NULL) {
		if (p->side[0] == NULL)
			close(fd);
		if (p->timer == NULL)
			p->timer = evtimer_new(r->base, relay_timer_cb, p);
		relay_pair_free(p);
		return;
	}
	for (i = 0; i < 2; i++)
		bufferevent_setcb(p->side[i], relay_read_cb, relay_write_cb,
		    relay_event_cb, p);
	if (r->mode == RELAY_RESET) {
		relay_pair_reset(p);
		return;
	}
	if (r->mode != RELAY_BLACKHOLE)
		relay_pair_connect(p);
}

static bool
relay_listen(struct relay *r)
{
	r->listener = evconnlistener_new_bind(r->base, relay_accept_cb, r,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
	    (struct sockaddr *)&r->listen_addr, sizeof(r->listen_addr));
	return r->listener != NULL;
}

/* Applies a new mode to every connection. */
static void
relay_set_mode(struct relay *r, enum relay_mode mode)
{
	struct relay_pair *p, *next;

	r->mode = mode;
	for (p = LIST_FIRST(&r->pairs); p != NULL; p = next) {
		next = LIST_NEXT(p, entry);
		switch (mode) {
		case RELAY_RESET:
			relay_pair_reset(p);
			break;
		case RELAY_BLACKHOLE:
			bufferevent_disable(p->side[0], EV_READ);
			bufferevent_disable(p->side[1], EV_READ);
			break;
		case RELAY_PASS:
		case RELAY_DELAY:
			if (!p->connected) {
				relay_pair_connect(p);
				break;
			}
			if (!p->eof[0])
				bufferevent_enable(p->side[0], EV_READ);
			if (!p->eof[1])
				bufferevent_enable(p->side[1], EV_READ);
			/* what arrived while held back goes now */
			relay_read_cb(p->side[0], p);
			break;
		}
	}
	/* the other direction of every pair, after the loop above (a
	 * flush may free a pair) */
	if (mode == RELAY_PASS || mode == RELAY_DELAY)
		for (p = LIST_FIRST(&r->pairs); p != NULL; p = next) {
			next = LIST_NEXT(p, entry);
			if (p->connected)
				relay_read_cb(p->side[1], p);
		}
}

/* Runs one command line; the answer goes to the control output. */
static void
relay_command(struct relay *r, const char *line)
{
	char *end;
	long n;

	if (strcmp(line, "pass") == 0 || strcmp(line, "accept") == 0) {
		r->close_new = false;
		if (r->listener == NULL && !relay_listen(r)) {
			dprintf(STDOUT_FILENO, "ERR cannot listen again: %s\n",
			    strerror(errno));
			return;
		}
		if (strcmp(line, "pass") == 0)
			relay_set_mode(r, RELAY_PASS);
	} else if (strncmp(line, "delay ", 6) == 0) {
		errno = 0;
		n = strtol(line + 6, &end, 10);
		if (errno != 0 || end == line + 6 || *end != '\0' || n < 0 ||
		    n > 600000) {
			dprintf(STDOUT_FILENO, "ERR bad delay\n");
			return;
		}
		r->delay_ms = (int)n;
		relay_set_mode(r, RELAY_DELAY);
	} else if (strcmp(line, "blackhole") == 0)
		relay_set_mode(r, RELAY_BLACKHOLE);
	else if (strcmp(line, "reset") == 0)
		relay_set_mode(r, RELAY_RESET);
	else if (strcmp(line, "close") == 0)
		r->close_new = true;
	else if (strcmp(line, "refuse") == 0) {
		if (r->listener != NULL) {
			evconnlistener_free(r->listener);
			r->listener = NULL;
		}
	} else {
		dprintf(STDOUT_FILENO, "ERR unknown command\n");
		return;
	}
	dprintf(STDOUT_FILENO, "OK\n");
}

static void
relay_ctl_read_cb(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	char *line;
	size_t n;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), &n,
	    EVBUFFER_EOL_LF)) != NULL) {
		relay_command(r, line);
		free(line);
	}
}

static void
relay_ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct relay *r = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		event_base_loopexit(r->base, NULL);
}

int
main(int argc, char **argv)
{
	struct relay r;
	struct relay_pair *p;
	socklen_t len = sizeof(r.listen_addr);
	char *end;
	long port;
	int rc = 1;

	/* dies with the test that started it */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	memset(&r, 0, sizeof(r));
	LIST_INIT(&r.pairs);
	if (argc != 3) {
		fprintf(stderr, "usage: faultrelay TARGET_HOST TARGET_PORT\n");
		return 2;
	}
	port = strtol(argv[2], &end, 10);
	r.target.sin_family = AF_INET;
	if (inet_pton(AF_INET, argv[1], &r.target.sin_addr) != 1 ||
	    *end != '\0' || port < 1 || port > 65535) {
		fprintf(stderr, "faultrelay: bad target %s:%s\n", argv[1],
		    argv[2]);
		return 2;
	}
	r.target.sin_port = htons((uint16_t)port);
	r.listen_addr.sin_family = AF_INET;
	r.listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((r.base = event_base_new()) == NULL)
		goto fail;
	if (!relay_listen(&r)) {
		fprintf(stderr, "faultrelay: listen: %s\n", strerror(errno));
		goto fail;
	}
	if (getsockname(evconnlistener_get_fd(r.listener),
	    (struct sockaddr *)&r.listen_addr, &len) != 0)
		goto fail;
	/* stdin and stdout are pipes: one bufferevent reads one and writes
	 * the other */
	evutil_make_socket_nonblocking(STDIN_FILENO);
	r.ctl = bufferevent_socket_new(r.base, STDIN_FILENO, 0);
	if (r.ctl == NULL)
		goto fail;
	bufferevent_setcb(r.ctl, relay_ctl_read_cb, NULL, relay_ctl_event_cb,
	    &r);
	bufferevent_disable(r.ctl, EV_WRITE);
	bufferevent_enable(r.ctl, EV_READ);
	/* replies go to stdout with dprintf: a few bytes to a pipe */
	dprintf(STDOUT_FILENO, "PORT %d\n", ntohs(r.listen_addr.sin_port));
	rc = event_base_dispatch(r.base) == 0 ? 0 : 1;
fail:
	while ((p = LIST_FIRST(&r.pairs)) != NULL)
		relay_pair_free(p);
	if (r.ctl != NULL)
		bufferevent_free(r.ctl);
	if (r.listener != NULL)
		evconnlistener_free(r.listener);
	if (r.base != NULL)
		event_base_free(r.base);
	return rc;
}
