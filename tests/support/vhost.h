/*
 * A virtual host built from conf text the way server.c builds one, without a server: the text
 * loaded by the conf loader (pt_conf_parse_string), its first server's root opened, its
 * locations set up; and for tests that serve files, a MIME table from its types and a file
 * cache. Its handler table is the test's (test_vhost.vh.handlers), its logs the process's.
 *
 * Include after cmocka and tests/support.h. vhost_unbuild() releases everything
 * vhost_build() made, whether the build succeeded or not.
 */
#ifndef PORTER_TESTS_SUPPORT_VHOST_H
#define PORTER_TESTS_SUPPORT_VHOST_H

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "server/conf/conf.h"
#include "server/core/mime.h"
#include "server/handlers/filecache.h"
#include "server/site/location.h"
#include "server/site/site.h"

typedef struct test_vhost {
    pt_conf *conf;
    pt_vhost vh;
    pt_mime *mime;       /* with `files`: the conf's types over the built-in table */
    pt_filecache *cache; /* with `files`: sized by the conf's file cache directives */
} test_vhost;

/* Loads `text` (relative paths from `prefix`) and builds the vhost of its first server: its
 * root (a missing default root stays -1, as in server.c; a named one must exist), its
 * locations, and with `files` its MIME table (the system's mime.types is not read, so the
 * conf's types are all a test depends on) and its file cache. A conf the loader refuses fails
 * the test. Returns 0 or pt_locations_setup()'s error, with its message in `err`. */
static inline int vhost_build(test_vhost *b, const char *text, const char *prefix, bool files,
                              char *err, size_t errlen)
{
    char cerr[512];
    memset(b, 0, sizeof *b);
    b->vh.root_fd = -1;
    if (pt_conf_parse_string(&b->conf, text, "t.conf", prefix, cerr, sizeof cerr) != 0)
        fail_msg("%s", cerr);
    const pt_conf_server *cs = &b->conf->servers[0];
    b->vh.conf = cs;
    b->vh.limits = cs->limits;
    b->vh.error_level = cs->error_log_level;
    for (size_t i = 0; i < cs->nnames && !b->vh.server_name.len; i++)
        if (!strpbrk(cs->names[i], "*~") && cs->names[i][0] != '.')
            b->vh.server_name = (pt_str){cs->names[i], strlen(cs->names[i])};
    b->vh.root_fd = open(cs->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cs->root_named && b->vh.root_fd < 0)
        fail_msg("root %s: %s", cs->root, strerror(errno));
    if (files) {
        /* "/nonexistent": only the built-in table under the conf's types. */
        assert_int_equal(pt_mime_new(&b->mime, "/nonexistent/mime.types", NULL), 0);
        if (cs->default_type)
            assert_int_equal(pt_mime_set_default(b->mime, cs->default_type), 0);
        for (size_t i = 0; i < cs->ntypes; i++)
            assert_int_equal(pt_mime_add(b->mime, cs->types[i].type, cs->types[i].ext), 0);
        pt_filecache_options fco = {
            .max_bytes = b->conf->file_cache_size,
            .max_file = b->conf->file_cache_max_file,
            .validity = b->conf->file_cache_valid,
            .max_open = b->conf->open_file_cache_max,
            .inactive = b->conf->open_file_cache_inactive,
        };
        b->cache = pt_filecache_new(&fco);
        assert_non_null(b->cache);
        b->vh.mime = b->mime;
        b->vh.cache = b->cache;
    }
    return pt_locations_setup(&b->vh, err, errlen);
}

/* Releases what vhost_build() made. */
static inline void vhost_unbuild(test_vhost *b)
{
    pt_locations_dispose(&b->vh);
    if (b->vh.root_fd >= 0)
        close(b->vh.root_fd);
    b->vh.root_fd = -1;
    pt_filecache_free(b->cache);
    b->cache = NULL;
    pt_mime_free(b->mime);
    b->mime = NULL;
    pt_conf_free(b->conf);
    b->conf = NULL;
}

#endif
