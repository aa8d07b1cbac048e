/*
 * The directive table machinery of server/conf/ (h2o's configurators are the model): a module
 * (core.c, static.c, tls.c, proxy.c, http2.c, compress.c, realip.c) registers a table of the
 * directives it configures, each row naming the contexts it may stand in, its number of arguments,
 * whether it is a block or may repeat, the setter that checks and stores it, and the field it sets
 * at each level; the loader (load.c) hands the tree to pt_conf_apply(), which finds each directive
 * in the modules' tables, checks what the row promises and calls the setter. A module may also
 * check what it configures once a location, a server or the whole conf is complete.
 *
 * Here too: the setters many directives share (sizes, counts, times, flags, strings, paths),
 * the values they read, and the levels of a pt_conf (the top level's defaults, a server
 * starting from the top level's values, a location from its server's, freeing them all).
 *
 * Everything here is private to server/conf/; conf.h is the folder's face. Threading: none.
 * Errors: setters return 0 or -EINVAL with "FILE:LINE:COL: reason" written through the loader.
 */
#ifndef PORTER_SERVER_CONF_DIRECTIVES_H
#define PORTER_SERVER_CONF_DIRECTIVES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/conf/conf.h"
#include "server/conf/parse.h"
#include "server/core/vars.h"

/* Where a directive may stand: the top level of the main file, an `http { }` block, a server,
 * an `events { }` block, a location, an `if` block in a server, an `if` block in a location. */
enum {
    C_MAIN = 1,
    C_HTTP = 2,
    C_SERVER = 4,
    C_EVENTS = 8,
    C_LOCATION = 16,
    C_SIF = 32,
    C_LIF = 64
};
#define C_IF (C_SIF | C_LIF)
/* An `upstream { }` block, which reads its directives itself (conf/upstream.c): no level is
 * applied in it, so a row with only this context names a directive allowed nowhere else. */
#define C_UPSTREAM 128
#define C_TOP (C_MAIN | C_HTTP)
#define C_ANY (C_TOP | C_SERVER)
#define C_ALL (C_ANY | C_LOCATION)

enum { F_BLOCK = 1, F_MULTI = 2 /* may repeat at one level */ };

/* The field a row sets at each level: its offset in pt_conf (top level, http, events),
 * pt_conf_server and pt_conf_location, or NONE where the directive sets no field there. */
#define NONE SIZE_MAX
/* clang-format off */
#define BOTH(f) {offsetof(pt_conf, f), offsetof(pt_conf_server, f), NONE}
#define ALL(f) {offsetof(pt_conf, f), offsetof(pt_conf_server, f), offsetof(pt_conf_location, f)}
#define TOP(f) {offsetof(pt_conf, f), NONE, NONE}
#define SRV(f) {NONE, offsetof(pt_conf_server, f), NONE}
#define LOC(f) {NONE, NONE, offsetof(pt_conf_location, f)}
#define SRVLOC(f) {NONE, offsetof(pt_conf_server, f), offsetof(pt_conf_location, f)}
#define NOWHERE {NONE, NONE, NONE}
/* clang-format on */

typedef struct pt_conf_loader pt_conf_loader;

/* A setter gets the directive, the field its row names at this level (NULL for none) and the
 * row's companion field (a count, a level), which only the setters that use one read. */
typedef int (*pt_conf_set_fn)(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux);

typedef struct pt_conf_directive {
    const char *name;
    unsigned ctx, flags;
    int min, max; /* number of arguments; max -1: any */
    pt_conf_set_fn set;
    size_t off[3]; /* the field: [0] in pt_conf (top level, http, events), [1] in pt_conf_server,
                      [2] in pt_conf_location */
    size_t aux[3]; /* the companion field, for the setters that use one */
} pt_conf_directive;

/* A module: its directives, and what it checks once a level is complete (each may be NULL).
 * The loader runs the checks of every module, in the order it lists them. */
typedef struct pt_conf_module {
    const pt_conf_directive *directives;
    size_t ndirectives;
    int (*location_done)(pt_conf_loader *cx, pt_conf_location *l);
    int (*server_done)(pt_conf_loader *cx, pt_conf_server *s);
    int (*conf_done)(pt_conf_loader *cx); /* the top level read; core.c builds the servers */
} pt_conf_module;

/* Frees a level's script (its steps, their `if` blocks), and the conf's own variables and
 * their maps. */
void pt_conf_script_dispose(pt_conf_script *s);
void pt_conf_vars_dispose(pt_conf_vars *v);

/* The modules (conf/core.c, static.c, tls.c, proxy.c, upstream.c, http2.c, compress.c, rate.c,
 * access.c, limits.c, log.c, rewrite.c, realip.c); load.c lists them. */
extern const pt_conf_module pt_conf_core_module;
extern const pt_conf_module pt_conf_static_module;
extern const pt_conf_module pt_conf_tls_module;
extern const pt_conf_module pt_conf_proxy_module;
extern const pt_conf_module pt_conf_upstream_module;
extern const pt_conf_module pt_conf_rewrite_module;
extern const pt_conf_module pt_conf_http2_module;
extern const pt_conf_module pt_conf_compress_module;
extern const pt_conf_module pt_conf_access_module;
extern const pt_conf_module pt_conf_rate_module;
extern const pt_conf_module pt_conf_limits_module;
extern const pt_conf_module pt_conf_log_module;
extern const pt_conf_module pt_conf_realip_module;
extern const pt_conf_module pt_conf_map_module;

/* Declares the variable of every `set` and `map` in the tree under `root` (the http, server,
 * location and if blocks), before any directive is applied: the conf's own variables are known
 * everywhere, wherever they are set (conf/map.c). */
void pt_conf_vars_declare(pt_conf_loader *cx, const pt_conf_node *root);

/* The script the rewrite module's directives being read join: the `if` block's, the
 * location's or the server's (conf/rewrite.c). */
pt_conf_script *pt_conf_script_here(pt_conf_loader *cx);

/* Checks that word `i` of `d` is "$NAME", one of the conf's own variables (porter's own cannot
 * be changed: nginx's "duplicate variable"). Returns its id (pt_conf.vars), or -EINVAL
 * (reported). */
long pt_conf_own_var(pt_conf_loader *cx, const pt_conf_node *d, size_t i);

/* `return CODE [TEXT]` (checked) as a step of the script being read. */
void pt_conf_script_return(pt_conf_loader *cx, int code, const char *text);

/* A level's compression settings, made and freed with the level: the defaults (each coding
 * off, its default level, min_length 20 and types text/html; Vary on; HTTP/1.1; porter's order;
 * the cache on); a deep copy of the parent's (the type lists copied, gzip_disable's
 * expressions compiled anew); everything released. */
void pt_conf_compress_init(pt_conf_compress *c);
void pt_conf_compress_inherit(pt_conf_compress *d, const pt_conf_compress *s);
void pt_conf_compress_dispose(pt_conf_compress *c);

/* A level's access settings (access.c), made and freed with the level: the defaults (no rule,
 * satisfy all, auth_basic off); a deep copy of the parent's (the user table shared by
 * reference); everything released. */
void pt_conf_access_init(pt_conf_access *a);
void pt_conf_access_inherit(pt_conf_access *d, const pt_conf_access *s);
void pt_conf_access_dispose(pt_conf_access *a);
/* A level's limits (conf/limits.c), made and freed with the level: the defaults (no limit,
 * status 503, log level error, no dry run); a deep copy of the parent's; everything released.
 * pt_conf_zones_free() releases the zones of a conf. */
void pt_conf_limit_init(pt_conf_limit *l);
void pt_conf_limit_inherit(pt_conf_limit *d, const pt_conf_limit *s);
void pt_conf_limit_dispose(pt_conf_limit *l);
void pt_conf_zones_free(pt_conf *c);

/* A coding's types back to the default list (text/html alone). */
void pt_conf_compress_types_default(pt_conf_coding *k);

/* Adds the gzip_disable expression `pattern` (POSIX extended, ignoring case); a regcomp error
 * is returned with its text in `why`, nothing added. pt_conf_compress_disable_clear() drops the
 * level's expressions and msie6. */
int pt_conf_compress_disable_add(pt_conf_compress *c, const char *pattern, char *why,
                                 size_t whylen);
void pt_conf_compress_disable_clear(pt_conf_compress *c);

/* A level's realip settings (realip.c; the defaults are all zero: nothing trusted, X-Real-IP,
 * not recursive): a deep copy of the parent's; everything released. */
void pt_conf_realip_inherit(pt_conf_realip *d, const pt_conf_realip *s);
void pt_conf_realip_dispose(pt_conf_realip *r);

/* A reference to a named location (`@NAME`, word `i` of try_files or error_page), checked once
 * the server holding it is read. */
typedef struct pt_conf_named_ref {
    const pt_conf_node *d;
    size_t i;
} pt_conf_named_ref;

/* The state of one load. */
struct pt_conf_loader {
    pt_conf_parser parse; /* the text's tree; its `err` receives the message */
    pt_conf *conf;
    const pt_conf_module *const *modules;
    size_t nmodules;
    pt_conf_server *srv;   /* the server being filled; NULL at the top level */
    pt_conf_location *loc; /* the location being filled */
    const void **seen;     /* fields set at this level, to reject duplicates */
    size_t nseen;
    bool first;                   /* the running directive is the first of its field here */
    const pt_conf_node **servers; /* server blocks, applied after the whole top level */
    size_t nservers;
    const pt_conf_node **locs; /* the location blocks of cx->srv, applied after its directives */
    size_t nlocs;
    /* `@NAME` in try_files and error_page, checked against each server's named locations:
     * the top level's (the first ntoprefs) for every server, then the server's own. */
    pt_conf_named_ref refs[64];
    size_t nrefs, ntoprefs;
    /* Every error met, in order ("FILE:LINE:COL: reason"): a directive in error is left out and
     * loading goes on, so that a check reports them all. */
    char **errors;
    size_t nerrors;
    int first_rc; /* the first error's negative errno; 0: none */
    /* The named groups of the regexes read so far ($name in the texts after them). */
    char **capture_names;
    size_t ncapture_names;
    /* The `if` block being read: its directives go to its script, its add_header, limit_rate
     * and proxy_pass to cx->loc, a location of its own for the time (conf/rewrite.c); NULL:
     * none. */
    pt_conf_if *in_if;
};

/* The most errors one load keeps. */
#define PT_CONF_MAX_ERRORS 100

/* Remembers the named groups of `re` as variables the texts after it may name. */
void pt_conf_capture_names(pt_conf_loader *cx, const struct pt_regex *re);

/* Whether a text of `user` may name the variable `v`: one of porter's that `user` expands, a
 * numbered group, a named group of a regex read before, or one of the conf's own (set, map). */
bool pt_conf_var_ok(const pt_conf_loader *cx, int user, const pt_var_ref *v);

/* Applies the directives `list` in context `ctx` (C_*) to the top level, cx->srv or cx->loc. */
int pt_conf_apply(pt_conf_loader *cx, const pt_conf_node *list, size_t n, unsigned ctx);

/* Keeps the error `rc` (< 0) whose message the loader's buffer holds, once however many levels
 * pass it up, and returns `rc`; 0 passes through. A function that goes on after an error it got
 * from a level below (a location of a server in error) keeps it first, or the next message
 * would replace it. */
int pt_conf_keep(pt_conf_loader *cx, int rc);

/* Removes the last location of `s` (one whose block could not be read: its path is invalid). */
void pt_conf_location_pop(pt_conf_server *s);

/* The directive that makes a location answer as `kind` does ("status", "metrics", "return",
 * "proxy_pass"), for messages about two of them in one location (core.c). */
const char *pt_conf_handler_directive(pt_handler_kind kind);

/* Returns true if `name` is one of nginx's directives that porter does not have (nginx.c), so
 * its message can say so instead of "unknown". */
bool pt_conf_nginx_directive(const char *name);

/* Writes "FILE:LINE:COL: reason" and returns `rc`. */
__attribute__((format(printf, 6, 7))) int pt_conf_fail(pt_conf_loader *cx, int rc, const char *file,
                                                       int line, int col, const char *fmt, ...);

/* Reports an invalid directive at its word `i` (0: the name) and returns -EINVAL. */
__attribute__((format(printf, 4, 5))) int pt_conf_bad(pt_conf_loader *cx, const pt_conf_node *d,
                                                      size_t i, const char *fmt, ...);

/* Word `i` of `d` as a value for the setters conf.h shares with the embedding API. */
pt_conf_value pt_conf_word_value(pt_conf_loader *cx, const pt_conf_node *d, size_t i);

/* Writes "PLACE: reason" for value `v` (its file and position, or its file alone) and returns
 * -EINVAL. */
__attribute__((format(printf, 2, 3))) int pt_conf_refuse(const pt_conf_value *v, const char *fmt,
                                                         ...);

/* Remembers a reference to a named location, checked when the server is complete. */
int pt_conf_named_ref_add(pt_conf_loader *cx, const pt_conf_node *d, size_t i);

/* ---- values ---- */

/* A directive's first argument. */
static inline const char *arg1(const pt_conf_node *d)
{
    return d->w[1].s;
}

/* Parses a whole string of digits no greater than `max`: 0, -EINVAL or -ERANGE. */
int pt_conf_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* "off" or "unlimited". */
bool pt_conf_is_off(const char *s);

/* An HTTP token (a header field's name). */
bool pt_conf_is_token(const char *s);

/* Returns `rel` made absolute against the directory `base`, cleaned lexically ("//" and "/./"
 * collapse, a trailing "/" goes; ".." stays, because with symlinks it is not lexical). */
char *pt_conf_path_join(const char *base, const char *rel);

/* A path value: *field becomes it under c's prefix (an empty one is refused). */
int pt_conf_path(const pt_conf *c, char **field, const pt_conf_value *v);

/* ---- setters many directives share; `field` is the row's ---- */

int pt_conf_set_size(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux);
int pt_conf_set_count(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux);
int pt_conf_set_time(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux);
int pt_conf_set_flag(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux);
int pt_conf_set_string(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux);
int pt_conf_set_path(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux);
/* a size where "off" means 0 (nothing) */
int pt_conf_set_size_or_off(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux);
/* a time where 0 means "every time" rather than "no limit" */
int pt_conf_set_interval(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux);
/* a time that must be positive: "off" and 0 make no sense for it */
int pt_conf_set_positive_time(pt_conf_loader *cx, const pt_conf_node *d, void *field, void *aux);

#endif
