/*
 * fuzz_pgwire.c - the proxy's first-packet reader, its cancel-key tracker
 * and its ErrorResponse (pgwire.c).
 *
 * Properties:
 *  - a packet pgwire_parse_first() accepts has the length its header
 *    says, fits in what was read, and is the same packet whatever follows
 *    it; any shorter prefix asks for more; SSL and GSSENC requests are 8
 *    bytes; a startup packet ends with a NUL and speaks protocol 3;
 *  - a CancelRequest's key is the bytes after the code, and a
 *    CancelRequest built from that key parses back to the same key;
 *  - a refusal gives a reason;
 *  - the tracker learns the same things whether the bytes come whole or
 *    one at a time, and a key it learns is what was sent;
 *  - the verdict on a server's answers to a startup never changes as
 *    more bytes come: every prefix is undecided or has the same verdict,
 *    and an undecided stream stays undecided only below
 *    PGWIRE_MAX_ANSWER bytes;
 *  - an ErrorResponse built from the input is a well-formed message of
 *    the length its header says, no longer than PGWIRE_ERROR_MAX, with
 *    severity FATAL, the given SQLSTATE and a prefix of the message.
 */
#include <string.h>

#include "fuzz.h"
#include "pgwire.h"

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
check_first(const uint8_t *data, size_t size)
{
	struct pgwire_first	 f, g;
	enum pgwire_kind	 k, k2;
	uint8_t			 pkt[8 + 4 + PGWIRE_MAX_KEY];
	char			 why[256];

	why[0] = '\0';
	k = pgwire_parse_first(data, size, &f, why, sizeof why);
	FUZZ_CHECK(f.kind == k, "kind %d, returned %d", f.kind, k);
	if (k == PGWIRE_BAD) {
		FUZZ_CHECK(why[0] != '\0', "no reason");
		return;
	}
	if (k == PGWIRE_NEED_MORE) {
		FUZZ_CHECK(f.len == 0 || f.len > size || size < 8,
		    "needs more with %zu of %zu bytes", size, f.len);
		return;
	}
	FUZZ_CHECK(size >= 8 && f.len == get32(data), "len %zu", f.len);
	FUZZ_CHECK(f.len >= 8 && f.len <= size, "len %zu of %zu", f.len, size);
	FUZZ_CHECK(f.len <= PGWIRE_MAX_STARTUP, "len %zu", f.len);
	switch (k) {
	case PGWIRE_SSL:
	case PGWIRE_GSSENC:
		FUZZ_CHECK(f.len == 8, "len %zu", f.len);
		FUZZ_CHECK(get32(data + 4) == (k == PGWIRE_SSL ?
		    PGWIRE_SSL_CODE : PGWIRE_GSSENC_CODE), "code");
		break;
	case PGWIRE_CANCEL:
		FUZZ_CHECK(f.keylen == f.len - 8 && f.keylen >= 8 &&
		    f.keylen <= 4 + PGWIRE_MAX_KEY, "keylen %zu", f.keylen);
		FUZZ_CHECK(memcmp(f.key, data + 8, f.keylen) == 0, "key");
		/* Round trip: the request rebuilt from the key. */
		put32(pkt, (uint32_t)(8 + f.keylen));
		put32(pkt + 4, PGWIRE_CANCEL_CODE);
		memcpy(pkt + 8, f.key, f.keylen);
		FUZZ_CHECK(pgwire_parse_first(pkt, 8 + f.keylen, &g, why,
		    sizeof why) == PGWIRE_CANCEL, "rebuilt cancel refused");
		FUZZ_CHECK(g.keylen == f.keylen &&
		    memcmp(g.key, f.key, f.keylen) == 0, "key round trip");
		break;
	case PGWIRE_STARTUP:
		FUZZ_CHECK(f.version >> 16 == 3 && f.version == get32(data + 4),
		    "version %u", f.version);
		FUZZ_CHECK(data[f.len - 1] == '\0', "not NUL-terminated");
		break;
	default:
		FUZZ_CHECK(0, "kind %d", k);
	}
	/* The same packet alone, and any shorter prefix needs more. */
	k2 = pgwire_parse_first(data, f.len, &g, why, sizeof why);
	FUZZ_CHECK(k2 == k && g.len == f.len && g.keylen == f.keylen &&
	    g.version == f.version, "trailing bytes changed %d -> %d", k, k2);
	k2 = pgwire_parse_first(data, f.len - 1, &g, why, sizeof why);
	FUZZ_CHECK(k2 == PGWIRE_NEED_MORE, "prefix of %zu: %d", f.len - 1, k2);
	k2 = pgwire_parse_first(data, 4, &g, why, sizeof why);
	FUZZ_CHECK(k2 == PGWIRE_NEED_MORE && g.len == f.len,
	    "header only: %d, len %zu", k2, g.len);
}

/* The first split bytes go to the tracker as client bytes, the rest as
 * server bytes, whole and then one byte at a time. */
static void
check_track(const uint8_t *data, size_t size)
{
	struct pgwire_track	a, b;
	size_t			split, i;

	if (size < 1)
		return;
	split = data[0] % 16;
	data++;
	size--;
	if (split > size)
		split = size;
	pgwire_track_init(&a);
	pgwire_track_init(&b);
	pgwire_track_client(&a, data, split);
	pgwire_track_server(&a, data + split, size - split);
	for (i = 0; i < split; i++)
		pgwire_track_client(&b, data + i, 1);
	for (i = split; i < size; i++)
		pgwire_track_server(&b, data + i, 1);
	FUZZ_CHECK(a.state == b.state && a.encrypted == b.encrypted &&
	    a.has_key == b.has_key, "whole %d/%d/%d, bytewise %d/%d/%d",
	    a.state, a.encrypted, a.has_key, b.state, b.encrypted, b.has_key);
	if (a.has_key) {
		FUZZ_CHECK(a.keylen == b.keylen && a.keylen >= 8 &&
		    a.keylen <= sizeof a.key, "keylen %zu/%zu", a.keylen,
		    b.keylen);
		FUZZ_CHECK(memcmp(a.key, b.key, a.keylen) == 0, "keys differ");
		FUZZ_CHECK(!a.encrypted, "key under encryption");
	}
	FUZZ_CHECK(!(a.encrypted && a.state != PGWIRE_TR_DONE), "state %d",
	    a.state);
}

static void
check_answer(const uint8_t *data, size_t size)
{
	enum pgwire_answer	 whole, a;
	char			 st[6], st2[6];
	size_t			 i;

	whole = pgwire_startup_answer(data, size, st);
	FUZZ_CHECK(whole != PGWIRE_ANS_MORE || size < PGWIRE_MAX_ANSWER,
	    "undecided with %zu bytes", size);
	FUZZ_CHECK(strlen(st) == 0 || (whole == PGWIRE_ANS_ERROR &&
	    strlen(st) == 5), "sqlstate '%s' with verdict %d", st, whole);
	/* every prefix of a short input, a sample of a long one's */
	for (i = 0; i < size; i += size > 1024 ? size / 512 + 1 : 1) {
		a = pgwire_startup_answer(data, i, st2);
		FUZZ_CHECK(a == PGWIRE_ANS_MORE || (a == whole &&
		    strcmp(st, st2) == 0), "prefix %zu: %d '%s', whole %d '%s'",
		    i, a, st2, whole, st);
	}
}

static void
check_error(const uint8_t *data, size_t size)
{
	static const char	 alnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	uint8_t			 buf[PGWIRE_ERROR_MAX + 64];
	char			 state[6], *msg;
	const uint8_t		*p, *end, *nul;
	size_t			 n, i, mlen;
	bool			 sev = false, code = false, text = false;

	if (size < 5)
		return;
	for (i = 0; i < 5; i++)
		state[i] = alnum[data[i] % 36];
	state[5] = '\0';
	msg = fuzz_cstr(data + 5, size - 5);
	mlen = strlen(msg);
	memset(buf, 0xa5, sizeof buf);
	n = pgwire_format_error(buf, state, msg);
	FUZZ_CHECK(n <= PGWIRE_ERROR_MAX, "%zu bytes", n);
	for (i = n; i < sizeof buf; i++)
		FUZZ_CHECK(buf[i] == 0xa5, "wrote byte %zu of %zu", i, n);
	FUZZ_CHECK(buf[0] == 'E' && get32(buf + 1) == n - 1, "header");
	FUZZ_CHECK(buf[n - 1] == '\0', "no terminator");
	/* Fields: a type byte, a NUL-terminated value; a NUL ends them. */
	p = buf + 5;
	end = buf + n - 1;
	while (p < end) {
		nul = memchr(p + 1, '\0', (size_t)(end - p - 1) + 1);
		FUZZ_CHECK(nul != NULL && nul < end + 1, "unterminated field");
		FUZZ_CHECK(*p != '\0', "empty field type");
		if (*p == 'S' || *p == 'V') {
			FUZZ_CHECK(strcmp((const char *)p + 1, "FATAL") == 0,
			    "severity");
			sev = true;
		} else if (*p == 'C') {
			FUZZ_CHECK(strcmp((const char *)p + 1, state) == 0,
			    "sqlstate '%s' not '%s'", p + 1, state);
			code = true;
		} else if (*p == 'M') {
			n = strlen((const char *)p + 1);
			FUZZ_CHECK(n <= mlen && memcmp(p + 1, msg, n) == 0 &&
			    (n == mlen || n > 400), "message cut to %zu of %zu",
			    n, mlen);
			text = true;
		}
		p = nul + 1;
	}
	FUZZ_CHECK(p == end, "fields overrun");
	FUZZ_CHECK(sev && code && text, "missing field");
	free(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > PGWIRE_MAX_STARTUP + 64)
		return (0);
	check_first(data, size);
	check_track(data, size);
	check_answer(data, size);
	check_error(data, size);
	return (0);
}
