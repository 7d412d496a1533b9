/*
 * pgwire.c - first packets, the cancel-key tracker and ErrorResponse; see
 * pgwire.h.
 */
#include <stdio.h>
#include <string.h>

#include "pgwire.h"

static uint32_t
pgwire_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void
pgwire_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

enum pgwire_kind
pgwire_parse_first(const uint8_t *buf, size_t avail, struct pgwire_first *out,
    char *why, size_t why_len)
{
	uint32_t	len, code;

	memset(out, 0, sizeof(*out));
	out->kind = PGWIRE_NEED_MORE;
	if (avail < 4)
		return PGWIRE_NEED_MORE;
	len = pgwire_get32(buf);
	if (len < 8 || len > PGWIRE_MAX_STARTUP) {
		snprintf(why, why_len, "first packet length %u is not a "
		    "PostgreSQL startup packet", len);
		return out->kind = PGWIRE_BAD;
	}
	out->len = len;
	if (avail < 8)
		return PGWIRE_NEED_MORE;
	code = pgwire_get32(buf + 4);
	switch (code) {
	case PGWIRE_SSL_CODE:
	case PGWIRE_GSSENC_CODE:
		if (len != 8) {
			snprintf(why, why_len, "%s of length %u",
			    code == PGWIRE_SSL_CODE ? "SSLRequest" :
			    "GSSENCRequest", len);
			return out->kind = PGWIRE_BAD;
		}
		return out->kind = code == PGWIRE_SSL_CODE ? PGWIRE_SSL :
		    PGWIRE_GSSENC;
	case PGWIRE_CANCEL_CODE:
		if (len < 16 || len > 8 + 4 + PGWIRE_MAX_KEY) {
			snprintf(why, why_len, "CancelRequest of length %u",
			    len);
			return out->kind = PGWIRE_BAD;
		}
		if (avail < len)
			return PGWIRE_NEED_MORE;
		out->keylen = len - 8;
		memcpy(out->key, buf + 8, out->keylen);
		return out->kind = PGWIRE_CANCEL;
	default:
		break;
	}
	if (code >> 16 != 3) {
		snprintf(why, why_len, "unsupported protocol %u.%u in the "
		    "first packet", code >> 16, code & 0xffff);
		return out->kind = PGWIRE_BAD;
	}
	if (avail < len)
		return PGWIRE_NEED_MORE;
	/* name\0value\0 ... \0: the packet ends with a NUL. */
	if (buf[len - 1] != '\0') {
		snprintf(why, why_len, "startup packet not terminated");
		return out->kind = PGWIRE_BAD;
	}
	out->version = code;
	return out->kind = PGWIRE_STARTUP;
}

void
pgwire_track_init(struct pgwire_track *t)
{
	memset(t, 0, sizeof(*t));
	t->state = PGWIRE_TR_CLIENT_PACKET;
}

void
pgwire_track_client(struct pgwire_track *t, const uint8_t *p, size_t n)
{
	uint32_t	code;
	size_t		take;

	while (n > 0 && t->state == PGWIRE_TR_CLIENT_PACKET) {
		take = sizeof(t->hdr) - t->hdrlen;
		if (take > n)
			take = n;
		memcpy(t->hdr + t->hdrlen, p, take);
		t->hdrlen += take;
		p += take;
		n -= take;
		if (t->hdrlen < sizeof(t->hdr))
			return;
		t->hdrlen = 0;
		code = pgwire_get32(t->hdr + 4);
		if (code == PGWIRE_SSL_CODE || code == PGWIRE_GSSENC_CODE)
			t->state = PGWIRE_TR_SERVER_BYTE;
		else
			/* The StartupMessage: the rest is the server's. */
			t->state = PGWIRE_TR_SERVER_MSGS;
	}
}

void
pgwire_track_server(struct pgwire_track *t, const uint8_t *p, size_t n)
{
	size_t		take;
	uint32_t	len;

	while (n > 0) {
		switch (t->state) {
		case PGWIRE_TR_CLIENT_PACKET:
		case PGWIRE_TR_DONE:
			return;
		case PGWIRE_TR_SERVER_BYTE:
			if (*p == 'N') {
				/* Refused: the client goes on in clear. */
				t->state = PGWIRE_TR_CLIENT_PACKET;
			} else {
				t->encrypted = *p == 'S' || *p == 'G';
				t->state = PGWIRE_TR_DONE;
			}
			p++;
			n--;
			continue;
		case PGWIRE_TR_SERVER_MSGS:
			break;
		}
		if (t->skip > 0) {
			take = n < t->skip ? n : t->skip;
			if (t->type == 'K' && t->bodypos < sizeof(t->key)) {
				size_t room = sizeof(t->key) - t->bodypos;
				size_t c = take < room ? take : room;

				memcpy(t->key + t->bodypos, p, c);
			}
			t->bodypos += (uint32_t)take;
			t->skip -= (uint32_t)take;
			p += take;
			n -= take;
			if (t->skip == 0 && t->type == 'K' && t->bodypos >= 8) {
				t->keylen = t->bodypos < sizeof(t->key) ?
				    t->bodypos : sizeof(t->key);
				t->has_key = true;
			}
			continue;
		}
		take = 5 - t->hdrlen;
		if (take > n)
			take = n;
		memcpy(t->hdr + t->hdrlen, p, take);
		t->hdrlen += take;
		p += take;
		n -= take;
		if (t->hdrlen < 5)
			return;
		t->hdrlen = 0;
		t->type = t->hdr[0];
		len = pgwire_get32(t->hdr + 1);
		if (t->type == 'Z' || t->type == 'E' || len < 4) {
			/* Ready, refused, or not the protocol we know. */
			t->state = PGWIRE_TR_DONE;
			return;
		}
		t->skip = len - 4;
		t->bodypos = 0;
	}
}

size_t
pgwire_format_error(uint8_t *buf, const char *sqlstate, const char *message)
{
	size_t	pos = 5, mlen = strlen(message);
	size_t	room = PGWIRE_ERROR_MAX - 5 - 7 * 2 - 1 - 7 - 2 - 1;

	if (mlen > room)
		mlen = room;
	buf[0] = 'E';
	memcpy(buf + pos, "SFATAL", 7);		/* with its NUL */
	pos += 7;
	memcpy(buf + pos, "VFATAL", 7);
	pos += 7;
	buf[pos++] = 'C';
	memcpy(buf + pos, sqlstate, 5);
	pos += 5;
	buf[pos++] = '\0';
	buf[pos++] = 'M';
	memcpy(buf + pos, message, mlen);
	pos += mlen;
	buf[pos++] = '\0';
	buf[pos++] = '\0';
	pgwire_put32(buf + 1, (uint32_t)(pos - 1));
	return pos;
}

/* The SQLSTATE of the ErrorResponse buf[0..len) into sqlstate, "" when
 * it has none. */
static void
pgwire_error_code(const uint8_t *buf, size_t len, char sqlstate[6])
{
	size_t	pos;

	/* Fields: a type byte, then a NUL-terminated string; 0 ends them. */
	for (pos = 5; pos < len && buf[pos] != '\0';) {
		uint8_t	 type = buf[pos++];
		const uint8_t *nul = memchr(buf + pos, '\0', len - pos);

		if (nul == NULL)
			break;
		if (type == 'C' && (size_t)(nul - (buf + pos)) == 5) {
			memcpy(sqlstate, buf + pos, 5);
			sqlstate[5] = '\0';
		}
		pos = (size_t)(nul - buf) + 1;
	}
}

enum pgwire_answer
pgwire_startup_answer(const uint8_t *buf, size_t avail, char sqlstate[6])
{
	size_t	pos = 0, len;

	sqlstate[0] = '\0';
	for (;;) {
		if (avail - pos < 5)
			goto more;
		len = (size_t)pgwire_get32(buf + pos + 1) + 1;
		if (len < 5 || len > PGWIRE_MAX_ANSWER)
			return buf[pos] == 'E' ? PGWIRE_ANS_ERROR :
			    PGWIRE_ANS_OTHER;
		switch (buf[pos]) {
		case 'Z':
			return PGWIRE_ANS_READY;
		case 'R':
			if (len < 9)
				return PGWIRE_ANS_OTHER;
			if (avail - pos < 9)
				goto more;
			if (pgwire_get32(buf + pos + 5) != 0)
				return PGWIRE_ANS_AUTH;
			break;		/* AuthenticationOk */
		case 'E':
			if (avail - pos < len)
				goto more;
			pgwire_error_code(buf + pos, len, sqlstate);
			return PGWIRE_ANS_ERROR;
		case 'S':	/* ParameterStatus */
		case 'K':	/* BackendKeyData */
		case 'N':	/* NoticeResponse */
		case 'v':	/* NegotiateProtocolVersion */
			break;
		default:
			return PGWIRE_ANS_OTHER;
		}
		if (avail - pos < len)
			goto more;
		pos += len;
	}
more:
	/* Undecided: wait for the rest, unless it is already too long. */
	return avail >= PGWIRE_MAX_ANSWER ? PGWIRE_ANS_OTHER : PGWIRE_ANS_MORE;
}
