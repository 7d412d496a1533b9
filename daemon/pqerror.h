/*
 * pqerror.h - reading libpq's error messages without depending on their
 * language.  Pure: no libpq calls, no I/O.
 *
 * libpq formats an error that a server sent as "<severity>:  <text>", the
 * severity in the server's lc_messages ("FATAL" in English, "ВАЖНО"
 * in Russian) and always followed by a colon and two spaces
 * (fe-protocol3.c, pqBuildErrorMessage3, whose "%s:  " is not translated).
 * libpq's own messages ("Connection refused", "server closed the
 * connection unexpectedly", a version-2 fork failure) never have that
 * shape.  So the shape, not the word "FATAL", tells whether a server
 * answered.
 */
#ifndef PGB_PQERROR_H
#define PGB_PQERROR_H

/*
 * Returns the text after the server's "<severity>:  " in msg (a libpq
 * error message, possibly prefixed by libpq's "connection to server at
 * ... failed: "), or NULL if no server sent it.  The result points into
 * msg.
 */
const char	*pqerror_server_text(const char *msg);

/*
 * Returns msg without a leading "<severity>:  ", for one-line reasons in
 * STATUS; msg itself if it does not start with one.
 */
const char	*pqerror_strip_severity(const char *msg);

#endif
