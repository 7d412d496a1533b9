/*
 * proxy_cancel.c - CancelRequests through a listener: sent to the server
 * whose session the key names (BackendKeyData seen in clear), else to the
 * role's current host.
 */

#include "proxy_int.h"

/* A CancelRequest: to the server whose session has this key, else to the
 * role's current host (a key sent under TLS is unknown). */
void
proxy_cancel(struct proxy_conn *c)
{
	struct proxy_listener *l = c->l, *ol;
	struct proxy *px = l->px;
	struct proxy_conn *oc;
	struct topo_cluster *cl;
	const struct topo_host *h;
	uint8_t pkt[8 + 4 + PGWIRE_MAX_KEY];
	uint32_t len = (uint32_t)(8 + c->first.keylen);
	char why[256];
	bool found = false;

	evbuffer_drain(bufferevent_get_input(c->cli), c->first.len);
	TAILQ_FOREACH(ol, &px->listeners, entry) {
		TAILQ_FOREACH(oc, &ol->conns, entry) {
			if (oc->state == PC_RELAY && oc->track.has_key &&
			    oc->track.keylen == c->first.keylen &&
			    memcmp(oc->track.key, c->first.key,
			    c->first.keylen) == 0) {
				snprintf(c->host, sizeof(c->host), "%s",
				    oc->host);
				c->port = oc->port;
				found = true;
				break;
			}
		}
		if (found)
			break;
	}
	if (!found) {
		cl = monitor_find_cluster(px->mon, l->cluster);
		h = cl != NULL ? topology_resolve(cl, &l->cfg.query,
		    monitor_limits(px->mon), why, sizeof(why)) : NULL;
		if (h == NULL) {
			log_info("listener %s %s: client %" PRIu64 ": cancel "
			    "request for an unknown session and no host to "
			    "send it to", l->cluster, l->cfg.address, c->id);
			proxy_conn_close(c);
			return;
		}
		snprintf(c->host, sizeof(c->host), "%s", h->host);
		c->port = h->port;
	}
	log_debug("listener %s %s: client %" PRIu64 ": cancel request to "
	    "%s:%d (%s session)", l->cluster, l->cfg.address, c->id, c->host,
	    c->port, found ? "its" : "unknown");
	c->srv = bufferevent_socket_new(px->base, -1,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->srv == NULL) {
		proxy_conn_close(c);
		return;
	}
	proxy_conn_set_state(c, PC_CANCEL);
	bufferevent_setcb(c->srv, NULL, proxy_write_cb, proxy_srv_event_cb, c);
	bufferevent_disable(c->cli, EV_READ);
	pkt[0] = (uint8_t)(len >> 24);
	pkt[1] = (uint8_t)(len >> 16);
	pkt[2] = (uint8_t)(len >> 8);
	pkt[3] = (uint8_t)len;
	pkt[4] = (uint8_t)(PGWIRE_CANCEL_CODE >> 24);
	pkt[5] = (uint8_t)(PGWIRE_CANCEL_CODE >> 16);
	pkt[6] = (uint8_t)(PGWIRE_CANCEL_CODE >> 8);
	pkt[7] = (uint8_t)PGWIRE_CANCEL_CODE;
	memcpy(pkt + 8, c->first.key, c->first.keylen);
	bufferevent_write(c->srv, pkt, len);
	bufferevent_enable(c->srv, EV_WRITE);
	proxy_timer_set(c, l->cfg.connect_timeout_ms);
	proxy_bev_connect(px, c->srv, c->host, c->port);
}
