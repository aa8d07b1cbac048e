/*
 * fuzz_conf: bytes as a configuration file, through the conf parser (server/conf/conf.h) and the
 * checks of `porter -t` (pt_server_test).
 *
 * The input is the text of DIR/conf/fuzz.conf, in a temporary directory (removed at exit) that
 * also holds a document root and files to include: a server block, a location, a types
 * block, one with an error and one that includes itself. The text is loaded from memory and
 * from the file; both must agree. Checked: no crash, no leak, and every error message starts
 * with the place it is about, "FILE:LINE:COL: " (a file read, a line and a column inside it:
 * the column may be one past the line's end, the line one past the file's, where the file
 * ended too early). The one exception is the top level's error log that no server uses, which
 * -t cannot open: it has no place of its own to name.
 *
 * The loader follows `include` wherever it points and `-t` creates log files and reads
 * certificates, so inputs that could make it read outside the directory (an `include` with
 * an absolute path or a "..") are skipped, and `-t` runs only for confs whose log, certificate
 * and key files are inside it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "porter.h"
#include "server/conf/conf.h"
#include "tests/fuzz/fuzz.h"

static char dir[64], conf_path[128];
static size_t dir_len;

static void write_file(const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(text);
    FUZZ_CHECK(fd >= 0 && write(fd, text, len) == (ssize_t)len, "%s: %s", path, strerror(errno));
    close(fd);
}

static void make_dir(const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FUZZ_CHECK(mkdir(path, 0755) == 0, "%s: %s", path, strerror(errno));
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

static void remove_dir(void)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_temp_dir(dir, sizeof dir, "conf");
    dir_len = strlen(dir);
    atexit(remove_dir);
    make_dir("htdocs");
    make_dir("root");
    make_dir("conf");
    make_dir("conf/inc");
    write_file("conf/inc/server.conf", "server {\n    listen 127.0.0.1:8080;\n    root root;\n}\n");
    write_file("conf/inc/location.conf", "location /inc/ {\n    autoindex on;\n}\n");
    write_file("conf/inc/types.conf", "types {\n    text/x-fuzz fz fuzz;\n}\n");
    write_file("conf/inc/bad.conf", "# a mistake on line 2\nkeepalive_timeout forever;\n");
    write_file("conf/inc/self.conf", "include self.conf;\n");
    snprintf(conf_path, sizeof conf_path, "%s/conf/fuzz.conf", dir);
    return 0;
}

/* Whether the loader could be sent outside the directory: the text names `include` (quotes
 * and escapes aside) and holds an absolute path or a "..". */
static bool may_leave(const char *text)
{
    size_t n = strlen(text), k = 0;
    char *bare = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        if (text[i] != '"' && text[i] != '\'' && text[i] != '\\')
            bare[k++] = text[i];
    bare[k] = '\0';
    bool include = strstr(bare, "include") != NULL;
    free(bare);
    if (!include)
        return false;
    if (strstr(text, ".."))
        return true;
    for (size_t i = 0; i < n; i++)
        if (text[i] == '/' && (i == 0 || !strchr("abcdefghijklmnopqrstuvwxyz"
                                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-*?[]",
                                                 text[i - 1])))
            return true;
    return false;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    FUZZ_CHECK(d, "/proc/self/fd: %s", strerror(errno));
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static bool inside(const char *path)
{
    return !path || strcmp(path, "stderr") == 0 ||
           (strncmp(path, dir, dir_len) == 0 && path[dir_len] == '/' && !strstr(path, "/.."));
}

/* Whether every file `-t` creates or reads (logs, certificates, keys, trust stores) is in the
 * directory. */
static bool test_stays_inside(const pt_conf *c)
{
    if (!inside(c->error_log))
        return false;
    for (size_t s = 0; s < c->nservers; s++) {
        const pt_conf_server *cs = &c->servers[s];
        if (!inside(cs->error_log))
            return false;
        for (size_t i = 0; i < cs->naccess_logs; i++)
            if (!inside(cs->access_logs[i].path))
                return false;
        for (size_t i = 0; i < cs->nlocations; i++)
            for (size_t k = 0; k < cs->locations[i].naccess_logs; k++)
                if (!inside(cs->locations[i].access_logs[k].path))
                    return false;
        for (size_t i = 0; i < cs->ssl.ncerts; i++)
            if (!inside(cs->ssl.certs[i]))
                return false;
        for (size_t i = 0; i < cs->ssl.nkeys; i++)
            if (!inside(cs->ssl.keys[i]))
                return false;
        for (size_t i = 0; i < cs->nlocations; i++)
            if (!inside(cs->locations[i].proxy.ssl_trusted_certificate))
                return false;
    }
    return true;
}

/* The lines of `path` and the length of line `line` (1-based); false if it cannot be read. */
static bool measure(const char *path, int line, size_t *lines, size_t *line_len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    *lines = 1;
    *line_len = 0;
    size_t len = 0;
    for (int ch; (ch = fgetc(f)) != EOF;) {
        if (ch == '\n') {
            if ((int)*lines == line)
                *line_len = len;
            (*lines)++;
            len = 0;
        } else {
            len++;
        }
    }
    if ((int)*lines == line)
        *line_len = len;
    fclose(f);
    return true;
}

/* Checks that `err` starts "FILE:LINE:COL: " with a place inside a file of the directory. */
static void check_place(const char *what, const char *err)
{
    const char *p = err;
    FUZZ_CHECK(strncmp(p, dir, dir_len) == 0 && p[dir_len] == '/',
               "%s: the message does not start with a file of the conf: \"%s\"", what, err);
    const char *colon = strchr(p + dir_len, ':');
    int line = 0, col = 0, used = 0;
    FUZZ_CHECK(colon && sscanf(colon, ":%d:%d: %n", &line, &col, &used) == 2 && used > 0 &&
                   colon[used] != '\0',
               "%s: no \"FILE:LINE:COL: reason\" in \"%s\"", what, err);
    char path[4096];
    snprintf(path, sizeof path, "%.*s", (int)(colon - p), p);
    size_t lines, line_len;
    FUZZ_CHECK(measure(path, line, &lines, &line_len), "%s: \"%s\" names a file it cannot be: %s",
               what, err, strerror(errno));
    FUZZ_CHECK(line >= 1 && col >= 1 && (size_t)line <= lines &&
                   (size_t)col <= (line_len + 1 > 1 ? line_len + 1 : 1),
               "%s: \"%s\" points outside the file (%zu lines, that one %zu bytes)", what, err,
               lines, line_len);
}

/* Whether `err` says the top level's error log cannot be opened, where no server uses it: the
 * one error of -t with no place in the conf to name (pt_server_test). */
static bool top_error_log_failed(const pt_conf *c, const char *err)
{
    char want[4200];
    snprintf(want, sizeof want, "cannot open error log \"%s\": ", c->error_log);
    if (strncmp(err, want, strlen(want)) != 0)
        return false;
    for (size_t s = 0; s < c->nservers; s++)
        FUZZ_CHECK(strcmp(c->servers[s].error_log, c->error_log) != 0,
                   "-t: the error log of the server at %s:%d:%d named without its place: \"%s\"",
                   c->servers[s].file, c->servers[s].line, c->servers[s].col, err);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds = count_fds();
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    bool has_nul = strlen(text) != size;
    if (may_leave(text)) {
        free(text);
        return 0;
    }
    int fd = open(conf_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FUZZ_CHECK(fd >= 0 && write(fd, data, size) == (ssize_t)size, "%s: %s", conf_path,
               strerror(errno));
    close(fd);

    char err[1024], ferr[1024];
    pt_conf *c = NULL, *fc = NULL;
    int r = pt_conf_parse_string(&c, text, conf_path, dir, err, sizeof err);
    if (r < 0) {
        FUZZ_CHECK(c == NULL, "an error (%d) with a conf", r);
        check_place("parse", err);
    }
    /* The file says the same, unless a NUL ended the text early. */
    int fr = pt_conf_load(&fc, conf_path, dir, ferr, sizeof ferr);
    if (!has_nul)
        FUZZ_CHECK(fr == r && (r == 0 || strcmp(err, ferr) == 0),
                   "from memory: %d \"%s\"; from the file: %d \"%s\"", r, r ? err : "", fr,
                   fr ? ferr : "");
    if (r == 0 && !has_nul && test_stays_inside(c)) {
        /* The logs -t creates go again, so that no input sees another's. */
        const char *logs[64];
        size_t nlogs = 0;
        if (access(c->error_log, F_OK) != 0)
            logs[nlogs++] = c->error_log;
        for (size_t s = 0; s < c->nservers && nlogs + 2 <= 64; s++) {
            const pt_conf_server *cs = &c->servers[s];
            for (size_t i = 0; i < cs->naccess_logs && nlogs + 2 <= 64; i++)
                if (access(cs->access_logs[i].path, F_OK) != 0)
                    logs[nlogs++] = cs->access_logs[i].path;
            for (size_t l = 0; l < cs->nlocations; l++)
                for (size_t i = 0; i < cs->locations[l].naccess_logs && nlogs + 2 <= 64; i++)
                    if (access(cs->locations[l].access_logs[i].path, F_OK) != 0)
                        logs[nlogs++] = cs->locations[l].access_logs[i].path;
            if (access(c->servers[s].error_log, F_OK) != 0)
                logs[nlogs++] = c->servers[s].error_log;
        }
        r = pt_server_test(conf_path, dir, err, sizeof err);
        if (r < 0 && !top_error_log_failed(c, err))
            check_place("-t", err);
        for (size_t i = 0; i < nlogs; i++)
            if (strcmp(logs[i], "stderr") != 0)
                unlink(logs[i]);
    }
    pt_conf_free(c);
    pt_conf_free(fc);
    free(text);
    FUZZ_CHECK(count_fds() == fds, "%d descriptors open, %d before", count_fds(), fds);
    return 0;
}
