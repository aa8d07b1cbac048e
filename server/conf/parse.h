/*
 * The conf's syntax (nginx's), knowing no directive: text into a tree of directives whose
 * words carry their file, line and column.
 *
 * Directives are `name arg ...;` or blocks `name arg ... { ... }`; `#` comments run to the end
 * of the line; arguments may be quoted with "..." or '...' (escapes \" \' \\ \n \t \r; other
 * escapes stay as written). `include PATH;` may stand anywhere: PATH may be a glob (no match is
 * not an error, as in nginx) and is relative to the directory of the file holding the include;
 * the files it names are parsed in its place, so the tree has no includes left. Includes nest
 * at most PT_CONF_INCLUDE_DEPTH deep and a cycle is an error.
 *
 * Ownership: a tree owns its words and children (pt_conf_node_dispose). A node's `file` points
 * into the parser's `files`, the names of every file read (the main one first), which the
 * caller takes over and frees. Threading: none.
 * Errors: 0 or a negative errno (-EINVAL for the syntax, -ELOOP for an include cycle or
 * nesting too deep, the open/read errno for an unreadable file), with one line
 * "FILE:LINE:COL: reason" (1-based; the column counts bytes) in the parser's `err`. The
 * position is the offending token's; for a missing ';' or '}' it is where the file ended or
 * the '}' that came instead, for an unterminated string its opening quote. What was parsed
 * before an error stays in the tree for the caller to dispose.
 */
#ifndef PORTER_SERVER_CONF_PARSE_H
#define PORTER_SERVER_CONF_PARSE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "server/conf/conf.h" /* PT_CONF_INCLUDE_DEPTH */

typedef struct pt_conf_word {
    char *s;
    int line, col;
} pt_conf_word;

/* One directive: its words (w[0] is its name), and with a block its children. */
typedef struct pt_conf_node {
    pt_conf_word *w;
    size_t nw;
    const char *file;
    int tline, tcol; /* the ';' or '{' that ended the directive */
    bool block;
    struct pt_conf_node *kids;
    size_t nkids;
} pt_conf_node;

typedef struct pt_conf_parser {
    char *err; /* where the message goes (`errlen` bytes); may be NULL */
    size_t errlen;
    char **files; /* every file read, as named in messages; the caller's to take */
    size_t nfiles;
    int eof_line, eof_col; /* where the main text ended */
    /* the files being read, for include cycles, and the texts being parsed */
    struct {
        dev_t dev;
        ino_t ino;
    } open[PT_CONF_INCLUDE_DEPTH + 1];
    int nopen;
    int depth;
} pt_conf_parser;

/* Reads and parses the file at `path` (relative to the current directory) into `into`'s
 * children. An unreadable file is "PATH: cannot open: reason". */
int pt_conf_parse_file(pt_conf_parser *p, const char *path, pt_conf_node *into);

/* Parses `len` bytes of `text` (borrowed) into `into`'s children; `name` is the file name of
 * messages and the base of relative includes (its directory). */
int pt_conf_parse_text(pt_conf_parser *p, const char *name, const char *text, size_t len,
                       pt_conf_node *into);

/* Frees a node's words and children (not the node itself). */
void pt_conf_node_dispose(pt_conf_node *n);

/* Writes "FILE:LINE:COL: reason" into `err` (`errlen` bytes, always NUL-terminated; `err` may be
 * NULL), or "FILE: reason" when `line` is 0 (a value from no file: `file` names where it came
 * from), and returns `rc`. */
int pt_conf_vreport(char *err, size_t errlen, int rc, const char *file, int line, int col,
                    const char *fmt, va_list ap);

#endif
