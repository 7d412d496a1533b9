/*
 * http.h - pgbeacond's optional HTTP listener (http_listen in the config),
 * on libevent's evhttp.  Everything is answered from the monitor's memory;
 * no request ever waits on a database.
 *
 * Endpoints (GET or HEAD; other methods get 405):
 *
 *   pg-status compatible, same paths and answers, so that a pg-status
 *   client cannot tell the difference:
 *     /master /replica /sync_by_time /sync_by_bytes
 *     /sync_by_time_or_bytes /sync_by_time_and_bytes
 *         200 with the host as plain text, or {"host": "..."} (no port)
 *         when the Accept header is exactly "application/json" (any
 *         other value, the "application/json, text/plain, ..." of axios included,
 *         gets plain text); 404 with an empty body (JSON: {"host": null})
 *         when no host holds the role.  A bad lag value is 400
 *         {"error_text": "Invalid lag_ms"}.
 *     /replicas_info
 *         200, always JSON: an array of the live replicas,
 *         [{"host": "...", "port": N, "lag_ms": N|null,
 *           "lag_bytes": N|null, "replay_lsn": "X/Y"|null}, ...]
 *   Unknown parameters are ignored on these, as pg-status does (a
 *   cache-buster "?_=123").
 *   pgbeacon's own:
 *     /v1/resolve?role=...   {"cluster", "host", "port", "role",
 *                            "generation"}; 404 {"error": "NOHOST", "why"}
 *     /v1/status             the JSON of the socket's STATUS
 *     /metrics               Prometheus text format 0.0.4
 *     /health/primary?host=H:P
 *     /health/replica?host=H:P[&max_lag_bytes=N][&max_lag_ms=N]
 *                            200 or 503 (for HAProxy's httpchk)
 *
 * Parameters: cluster=NAME on every endpoint but /metrics (default: the
 * first configured cluster); lag_ms / lag_bytes (pg-status's names) or
 * max_lag_ms / max_lag_bytes, min_lsn=X/Y and fallback=master|none on the
 * role endpoints.  A repeated or malformed parameter, or one holding a
 * NUL byte (%00), is 400; an unknown one is 400 on all but the pg-status
 * endpoints.  pgbeacon's richer answers (the port, the generation) are on the
 * /v1/ endpoints.
 *
 * The pure pieces (routing, parameters, rendering) are in http_api.h;
 * this is the listener.
 */
#ifndef PGB_HTTP_H
#define PGB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http_api.h"

struct event_base;
struct http;
struct monitor;
struct proxy;
struct server;

/* Longest request head (request line and headers) accepted. */
#define HTTP_MAX_HEADERS	8192
/* Idle keep-alive connections and slow clients are closed after this. */
#define HTTP_TIMEOUT_S		30
/* Default of http_request_timeout_ms: a connection that has not sent a
 * whole request head this long after it was accepted, or after its
 * previous request, is closed, however slowly it keeps sending. */
#define HTTP_REQUEST_TIMEOUT_MS	10000

/*
 * Starts listening on listen ("HOST:PORT", "[V6]:PORT" or an absolute
 * Unix socket path, created with mode; a stale socket file nobody
 * answers on is replaced).  mon and srv are borrowed and must outlive the
 * listener; srv may be NULL.  On failure returns NULL and writes the
 * reason to err.
 */
struct http *http_new(struct event_base *base, const char *listen,
	mode_t mode, struct monitor *mon, struct server *srv,
	char *err, size_t errlen) __attribute__((warn_unused_result));

/* Closes the listener and every connection, removes a Unix socket file,
 * frees h; NULL is a no-op.  Call it once the event loop has stopped. */
void http_free(struct http *h);

/* /v1/status and /metrics also show px's connection listeners
 * (borrowed, may be NULL; it must outlive h or be unset first). */
void http_set_proxy(struct http *h, struct proxy *px);

/*
 * At max_clients connections (0 is taken as 1) the listener pauses until
 * one closes; request_timeout_ms (> 0; else unchanged) is the deadline
 * of each request head (HTTP_REQUEST_TIMEOUT_MS by default).
 */
void http_set_limits(struct http *h, size_t max_clients,
	int request_timeout_ms);

/* HTTP connections open right now. */
size_t http_nclients(const struct http *h);

#endif /* PGB_HTTP_H */
