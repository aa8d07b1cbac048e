/*
 * Memory of the conf folder: a conf is made once, at start-up or by the embedding API, so
 * running out of memory aborts; arrays grow by doubling and need no capacity field; the lists
 * a pt_conf holds (strings, header lines, types) are copied and freed here.
 *
 * Everything is static inline: each file of server/conf/ that includes this gets its own copy,
 * and nothing here is a symbol of the library. Threading: no state.
 */
#ifndef PORTER_SERVER_CONF_MEM_H
#define PORTER_SERVER_CONF_MEM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/core/conf.h"

/* Logs the place (file:line) and aborts: nothing in a conf can go on without its memory. */
#define oom() conf_oom(__FILE__, __LINE__)

__attribute__((noreturn)) static inline void conf_oom(const char *file, int line)
{
    fprintf(stderr, "porter: out of memory (%s:%d)\n", file, line);
    abort();
}

static inline void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

static inline void *xcalloc(size_t size)
{
    return memset(xrealloc(NULL, size), 0, size);
}

static inline char *xstrndup(const char *s, size_t len)
{
    char *d = xrealloc(NULL, len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* NULL stays NULL. */
static inline char *xstrdup(const char *s)
{
    return s ? xstrndup(s, strlen(s)) : NULL;
}

/* Arrays grow by doubling when their length reaches a power of two, so they need no capacity
 * field: PUSH(a, n) appends one element (uninitialised) and yields its address. */
static inline void *array_grow(void *a, size_t n, size_t size)
{
    if (n & (n - 1))
        return a;
    return xrealloc(a, (n ? 2 * n : 1) * size);
}

#define PUSH(a, n) ((a) = array_grow((a), (n), sizeof *(a)), &(a)[(n)++])

static inline void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Empties a list a level is about to replace. */
static inline void strv_clear(char ***v, size_t *n)
{
    strv_free(*v, *n);
    *v = NULL;
    *n = 0;
}

static inline void strv_copy(char ***dst, size_t *ndst, char *const *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        *PUSH(*dst, *ndst) = xstrdup(src[i]);
}

static inline void headers_free(pt_conf_header *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
}

/* Appends deep copies of `n` header entries (a NULL name or value stays NULL). */
static inline void headers_copy(pt_conf_header **dst, size_t *ndst, const pt_conf_header *src,
                                size_t n)
{
    for (size_t i = 0; i < n; i++)
        *PUSH(*dst, *ndst) =
            (pt_conf_header){xstrdup(src[i].name), xstrdup(src[i].value), src[i].always};
}

/* A level that names a list directive (add_header, proxy_set_header, ...) first drops the list
 * it inherited. */
static inline void headers_clear(pt_conf_header **v, size_t *n)
{
    headers_free(*v, *n);
    *v = NULL;
    *n = 0;
}

static inline void types_free(pt_conf_type *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].type);
        free(t[i].ext);
    }
    free(t);
}

static inline void access_logs_free(pt_conf_access_log *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].path);
    free(v);
}

/* Appends deep copies of `n` access logs (their formats are the conf's: shared). */
static inline void access_logs_copy(pt_conf_access_log **dst, size_t *ndst,
                                    const pt_conf_access_log *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pt_conf_access_log *a = PUSH(*dst, *ndst);
        *a = src[i];
        a->path = xstrdup(src[i].path);
    }
}

/* A level naming access_log drops the list it inherited. */
static inline void access_logs_clear(pt_conf_access_log **v, size_t *n)
{
    access_logs_free(*v, *n);
    *v = NULL;
    *n = 0;
}

#endif
