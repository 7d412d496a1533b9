/*
 * pgwire.h - the little of the PostgreSQL wire protocol that a connection
 * listener needs: the client's first packet (SSLRequest, GSSENCRequest,
 * CancelRequest or StartupMessage), a tracker that follows the start of a
 * relayed connection to learn its cancel key (BackendKeyData) while the
 * bytes pass untouched, and an ErrorResponse to send a refused client.
 * Pure: no sockets, no clock.
 *
 * Every multi-byte integer on the wire is big-endian.  A first packet is
 * int32 length (itself included), int32 code, then the body.
 */
#ifndef PGB_PGWIRE_H
#define PGB_PGWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGWIRE_CANCEL_CODE	80877102u
#define PGWIRE_SSL_CODE		80877103u
#define PGWIRE_GSSENC_CODE	80877104u
/* The largest startup packet PostgreSQL accepts (MAX_STARTUP_PACKET_LENGTH). */
#define PGWIRE_MAX_STARTUP	10000
/* The longest cancel key (protocol 3.2 allows up to 256 bytes). */
#define PGWIRE_MAX_KEY		256
/* Room for any ErrorResponse pgwire_format_error() writes. */
#define PGWIRE_ERROR_MAX	600

enum pgwire_kind {
	PGWIRE_NEED_MORE,	/* not a whole packet yet */
	PGWIRE_SSL,		/* SSLRequest */
	PGWIRE_GSSENC,		/* GSSENCRequest */
	PGWIRE_CANCEL,		/* CancelRequest */
	PGWIRE_STARTUP,		/* StartupMessage, protocol 3.x */
	PGWIRE_BAD,		/* anything else: close the connection */
};

/* A client's first packet. */
struct pgwire_first {
	enum pgwire_kind kind;
	size_t		 len;		/* the whole packet's length */
	uint32_t	 version;	/* STARTUP: the protocol version */
	size_t		 keylen;	/* CANCEL: bytes in key */
	uint8_t		 key[4 + PGWIRE_MAX_KEY]; /* CANCEL: pid then secret */
};

/*
 * Looks at the first avail bytes of a client's stream.  Returns
 * PGWIRE_NEED_MORE while they do not hold a whole packet (out->len then
 * says how many bytes are wanted when known, else 0), PGWIRE_BAD with a
 * one-line reason in why for anything that is not one of the four
 * packets, else the kind, with out filled.  Nothing is consumed.
 */
enum pgwire_kind pgwire_parse_first(const uint8_t *buf, size_t avail,
	struct pgwire_first *out, char *why, size_t why_len);

/* Where a tracker is in the start of a connection. */
enum pgwire_track_state {
	PGWIRE_TR_CLIENT_PACKET, /* reading a client's start packet */
	PGWIRE_TR_SERVER_BYTE,	/* the server's answer to SSL/GSSENCRequest */
	PGWIRE_TR_SERVER_MSGS,	/* server messages up to ReadyForQuery */
	PGWIRE_TR_DONE,		/* nothing more to learn */
};

/*
 * Follows both directions of a relayed connection from its first byte
 * until the server's first ReadyForQuery (or an error, or encryption),
 * remembering the BackendKeyData.  Under TLS or GSS encryption nothing
 * after the one-byte answer can be read: has_key stays false.
 */
struct pgwire_track {
	enum pgwire_track_state state;
	bool		 encrypted;	/* the server accepted SSL or GSS */
	bool		 has_key;	/* key holds a BackendKeyData */
	size_t		 keylen;	/* pid (4 bytes) + secret */
	uint8_t		 key[4 + PGWIRE_MAX_KEY];
	/* private */
	uint8_t		 hdr[8];	/* the header being read */
	size_t		 hdrlen;
	uint8_t		 type;		/* the server message being skipped */
	uint32_t	 skip;		/* body bytes still to skip */
	uint32_t	 bodypos;	/* K: bytes of the body seen */
	bool		 client_wait;	/* a client packet was sent, not answered */
};

void pgwire_track_init(struct pgwire_track *t);
/* Feeds bytes going from client to server, in order. */
void pgwire_track_client(struct pgwire_track *t, const uint8_t *p, size_t n);
/* Feeds bytes going from server to client, in order. */
void pgwire_track_server(struct pgwire_track *t, const uint8_t *p, size_t n);

/*
 * Writes a FATAL ErrorResponse with sqlstate (5 characters) and message
 * (cut to fit; NUL bytes cannot occur) into buf, which has room for
 * PGWIRE_ERROR_MAX bytes.  Returns its length.
 */
size_t pgwire_format_error(uint8_t *buf, const char *sqlstate,
	const char *message);

/* The most of a server's answers to a StartupMessage that is read for a
 * verdict; a startup that says more is relayed without one. */
#define PGWIRE_MAX_ANSWER	16384

/* What a server's answers to a StartupMessage show. */
enum pgwire_answer {
	PGWIRE_ANS_MORE,	/* no verdict yet: the rest comes */
	PGWIRE_ANS_READY,	/* ReadyForQuery: the session is up */
	PGWIRE_ANS_AUTH,	/* an authentication request the client must
				 * answer (password, SASL, GSSAPI, SSPI) */
	PGWIRE_ANS_ERROR,	/* an ErrorResponse: the session ends */
	PGWIRE_ANS_OTHER,	/* anything a startup does not send, or more
				 * than PGWIRE_MAX_ANSWER bytes */
};

/*
 * Reads a server's answers to a StartupMessage, the first avail bytes of
 * its stream, up to the first message that decides how the startup ends:
 * ReadyForQuery, an authentication request other than AuthenticationOk,
 * or an ErrorResponse, whose SQLSTATE goes to sqlstate ("" when it has
 * none or cannot be read).  AuthenticationOk, ParameterStatus,
 * BackendKeyData, NoticeResponse and NegotiateProtocolVersion are read
 * past.  Returns PGWIRE_ANS_MORE while the bytes end before a verdict,
 * PGWIRE_ANS_OTHER once avail reaches PGWIRE_MAX_ANSWER without one.
 *
 * A server that cannot take connections answers before authenticating:
 * 57P03 (shutting down, starting up).  One that shuts down while a new
 * backend starts answers 57P01 after AuthenticationOk when the client
 * had nothing to send (trust, peer): until ReadyForQuery no session has
 * begun, and the client can be sent elsewhere.
 */
enum pgwire_answer pgwire_startup_answer(const uint8_t *buf, size_t avail,
	char sqlstate[6]);

#endif /* PGB_PGWIRE_H */
