/*
 * proxy_int.h - what the files of the connection listeners share; private
 * to them (the interface is proxy.h):
 *
 *   proxy.c         the listener set: start, reload, accept, free, figures
 *   proxy_conn.c    one client's life before the relay: first packet,
 *                   routing, holding, connecting, refusals, deadlines
 *   proxy_relay.c   the relay data path: pumping with watermarks, the
 *                   startup kept and its answers held for a retry,
 *                   draining a closing side
 *   proxy_fence.c   fencing connections whose host lost the role
 *   proxy_cancel.c  CancelRequests, sent to the server of their session
 *
 * A connection goes through these states:
 *
 *   FIRST ---> HELD <---> CONNECTING ---> RELAY ---> DRAIN ---> (freed)
 *     |         |            |              |
 *     |         +-> REFUSE <-+              +--> fenced: closed at once
 *     +-> CANCEL (a CancelRequest, sent on to its server)
 *
 * Closed connections are unlinked, their bufferevents freed, and the
 * struct itself freed by a reaper event after the callback returns.
 */
#ifndef PGB_PROXY_INT_H
#define PGB_PROXY_INT_H

#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "log.h"
#include "monitor.h"
#include "pgwire.h"
#include "proxy.h"
#include "unixsock.h"

/* Bytes queued towards one side before reading from the other stops. */
#define PROXY_HIGH_WATER	(256 * 1024)
/* How long a closing side has to take what is still queued for it. */
#define PROXY_DRAIN_MS		5000
/* Bytes read from a relayed socket at once (a heap chain of 32 KiB with
 * the evbuffer's header): libevent 2.1's own reads are 4 KiB, each after
 * an ioctl(FIONREAD). */
#define PROXY_READ_SIZE		(32 * 1024 - 256)
/* Descriptors kept for the monitor, the socket and HTTP clients. */
#define PROXY_FD_RESERVE	64

enum proxy_state {
	PC_FIRST,	/* reading the client's first packet */
	PC_HELD,	/* no host holds the role: waiting for one */
	PC_CONNECTING,	/* connecting to the host picked */
	PC_RELAY,	/* relaying both ways */
	PC_DRAIN,	/* one side closed: flushing to the other */
	PC_REFUSE,	/* answering the client with an ErrorResponse */
	PC_CANCEL,	/* passing a CancelRequest on to its server */
};

struct proxy_listener;

/* One accepted client.  Owned by its listener's list, then by the
 * proxy's reap list once closed. */
struct proxy_conn {
	TAILQ_ENTRY(proxy_conn)	 entry;
	struct proxy_listener	*l;		/* back pointer; NULL once closed */
	uint64_t		 id;
	enum proxy_state	 state;
	struct bufferevent	*cli;		/* owned, owns the client fd */
	struct bufferevent	*srv;		/* owned; NULL until connecting */
	struct event		*timer;		/* owned: the current deadline */
	int64_t			 hold_until_ms;	/* monotonic end of the wait */
	struct pgwire_first	 first;
	/* where it is relayed (valid from CONNECTING on) */
	char			 host[256];
	int			 port;
	enum topo_role		 role;		/* the host's role when picked */
	uint64_t		 generation;	/* the cluster's then */
	struct pgwire_track	 track;
	/* RELAY and DRAIN: reading each side, in place of its bufferevent's
	 * reading (see proxy_relay_read_cb()); NULL before and after */
	struct event		*rd_cli;	/* owned */
	struct event		*rd_srv;	/* owned */
	/* the StartupMessage sent to the server, kept (and the server's
	 * answers held) until they show whether the session began there: a
	 * retry elsewhere needs it again (see proxy_srv_read_cb()) */
	uint8_t			*startup;	/* owned; NULL when none */
	size_t			 startup_len;
	bool			 startup_watch;	/* it may still come */
	const char		*fence_why;	/* set while fencing */
	struct bufferevent	*drain_to;	/* DRAIN: the side being flushed */
	bool			 cancel_sent;	/* CANCEL: connected, request out */
	char			 refuse_state[6]; /* SQLSTATE of the refusal */
	char			 refuse_msg[300];
};

TAILQ_HEAD(proxy_conn_list, proxy_conn);

/* One listening address.  Owned by the proxy. */
struct proxy_listener {
	TAILQ_ENTRY(proxy_listener) entry;
	struct proxy		*px;		/* back pointer */
	char			*cluster;	/* owned */
	struct config_listen	 cfg;		/* owned copy of its strings */
	char			*unix_path;	/* owned; NULL for TCP */
	struct evconnlistener	*evl;		/* owned, owns the socket */
	struct event		*accept_retry;	/* owned */
	struct proxy_conn_list	 conns;
	uint64_t		 nrelay;	/* in RELAY or DRAIN */
	uint64_t		 nwait;		/* in HELD or CONNECTING */
	uint64_t		 nconns;	/* every state */
	struct proto_listener_stats	 st;		/* totals; gauges filled on read */
};

struct proxy {
	struct event_base	*base;		/* borrowed */
	struct evdns_base	*dns;		/* borrowed, may be NULL */
	struct monitor		*mon;		/* borrowed */
	mode_t			 mode;
	TAILQ_HEAD(, proxy_listener) listeners;
	struct proxy_conn_list	 dead;		/* closed, to free */
	struct event		*reaper;	/* owned */
	uint64_t		 next_id;
	size_t			 nconns;	/* over every listener */
	size_t			 max_conns;	/* from RLIMIT_NOFILE */
};

/* proxy_conn.c: one client before (and around) the relay. */
void proxy_reaper_cb(evutil_socket_t fd, short what, void *arg);
void proxy_conn_count(struct proxy_conn *c, int dir);
void proxy_conn_set_state(struct proxy_conn *c, enum proxy_state s);
void proxy_conn_close(struct proxy_conn *c);
void proxy_timer_set(struct proxy_conn *c, int64_t ms);
void proxy_set_nodelay(struct bufferevent *bev);
void proxy_refuse(struct proxy_conn *c, const char *sqlstate,
	const char *msg);
void proxy_bev_connect(struct proxy *px, struct bufferevent *bev,
	const char *host, int port);
void proxy_route(struct proxy_conn *c);
void proxy_timer_cb(evutil_socket_t fd, short what, void *arg);
void proxy_cli_read_cb(struct bufferevent *bev, void *arg);
void proxy_cli_event_cb(struct bufferevent *bev, short what, void *arg);

/* proxy_relay.c: the data path. */
bool proxy_relay_start(struct proxy_conn *c)
	__attribute__((warn_unused_result));
void proxy_relay_stop(struct proxy_conn *c);
void proxy_read_set(struct proxy_conn *c, struct bufferevent *bev, bool on);
void proxy_pump(struct proxy_conn *c, struct bufferevent *src,
	struct bufferevent *dst, bool up);
void proxy_srv_read_cb(struct bufferevent *bev, void *arg);
void proxy_write_cb(struct bufferevent *bev, void *arg);
void proxy_conn_rehold(struct proxy_conn *c);
void proxy_conn_drain(struct proxy_conn *c, struct bufferevent *gone);
void proxy_srv_event_cb(struct bufferevent *bev, short what, void *arg);

/* proxy_fence.c */
void proxy_listener_fence(struct proxy_listener *l, struct topo_cluster *cl);

/* proxy_cancel.c */
void proxy_cancel(struct proxy_conn *c);

#endif /* PGB_PROXY_INT_H */
