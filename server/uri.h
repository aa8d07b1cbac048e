/*
 * The syntax of what names a server in a request: the Host field and the authority of an
 * absolute-form or authority-form request target (RFC 9110 section 4.2, RFC 9112 section 3.2,
 * RFC 3986 section 3.2).
 *
 * Ownership: nothing is allocated or kept; the input is read, never written.
 * Threading: no state; safe from any thread.
 */
#ifndef PORTER_SERVER_URI_H
#define PORTER_SERVER_URI_H

#include <stdbool.h>
#include <stddef.h>

/* Whether `s` (`len` bytes) is a uri-host with an optional ":port": an IP-literal in brackets
 * ("[2001:db8::1]", hex digits, ':' and '.' inside), or a reg-name / IPv4 address of unreserved
 * characters, sub-delims and well-formed %XX escapes; then ':' and digits. Refused: an empty
 * host, userinfo ('@'), '/', '\\', '?', '#', spaces and control bytes, and ".." (as in nginx:
 * the name may become part of a path). */
bool pt_uri_authority_valid(const char *s, size_t len);

#endif
