/*
 * if's conditions (cond.h).
 */
#include "server/core/cond.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "server/core/regex.h"
#include "server/core/vars.h"

/* A test of the file at `path` (NUL-terminated). */
static bool file_test(pt_request *req, pt_cond_op op, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG)
            pt_request_log(req, PT_LOG_CRIT, "stat() \"%s\" failed: %s", path, strerror(errno));
        return false;
    }
    switch (op) {
    case PT_COND_FILE:
        return S_ISREG(st.st_mode);
    case PT_COND_DIR:
        return S_ISDIR(st.st_mode);
    case PT_COND_EXISTS:
        return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode);
    default: /* PT_COND_EXEC: nginx's test, the owner's execute bit */
        return (st.st_mode & S_IXUSR) != 0;
    }
}

int pt_cond_eval(pt_request *req, const pt_conf_cond *c)
{
    pt_str v = pt_vars_expand_arena(req, c->subject);
    if (!v.p)
        return -1;
    bool holds;
    switch (c->op) {
    case PT_COND_VAR:
        holds = v.len && !(v.len == 1 && v.p[0] == '0');
        break;
    case PT_COND_EQUAL: {
        pt_str o = pt_vars_expand_arena(req, c->operand);
        if (!o.p)
            return -1;
        holds = o.len == v.len && memcmp(o.p, v.p, v.len) == 0;
        break;
    }
    case PT_COND_REGEX: {
        pt_captures caps;
        int m = pt_regex_match(c->re, v.p, v.len, &caps);
        if (m < 0) {
            pt_request_log(req, PT_LOG_ERROR, "if \"%s\": the regex match limit was hit",
                           pt_regex_pattern(c->re));
            return -1;
        }
        holds = m == 1;
        if (holds)
            pt_request_keep_captures(req, &caps);
        break;
    }
    default:
        holds = file_test(req, c->op, v.p);
        break;
    }
    if (req->vars_failed) /* a map read on the way could not be told */
        return -1;
    return holds != c->negate;
}
