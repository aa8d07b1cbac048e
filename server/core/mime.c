#include "server/core/mime.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/core/request.h"

#define DEFAULT_TYPE "application/octet-stream"
#define SYSTEM_FILE "/etc/mime.types"
#define INITIAL_SLOTS 256 /* a power of two */
#define ARENA_BLOCK 4096

/* The common web types, for a system without /etc/mime.types. Names follow IANA and Debian's
 * media-types, so the same extension gets the same type with or without the system file. */
static const struct {
    const char *ext, *type;
} builtin[] = {
    {"html", "text/html"},
    {"htm", "text/html"},
    {"shtml", "text/html"},
    {"css", "text/css"},
    {"js", "text/javascript"},
    {"mjs", "text/javascript"},
    {"json", "application/json"},
    {"map", "application/json"}, /* source maps */
    {"jsonld", "application/ld+json"},
    {"webmanifest", "application/manifest+json"},
    {"txt", "text/plain"},
    {"text", "text/plain"},
    {"csv", "text/csv"},
    {"md", "text/markdown"},
    {"markdown", "text/markdown"},
    {"ics", "text/calendar"},
    {"xml", "application/xml"},
    {"xsl", "application/xslt+xml"},
    {"xhtml", "application/xhtml+xml"},
    {"atom", "application/atom+xml"},
    {"rss", "application/rss+xml"},
    {"svg", "image/svg+xml"},
    {"svgz", "image/svg+xml"},
    {"png", "image/png"},
    {"apng", "image/apng"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ico", "image/vnd.microsoft.icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"eot", "application/vnd.ms-fontobject"},
    {"pdf", "application/pdf"},
    {"wasm", "application/wasm"},
    {"mp4", "video/mp4"},
    {"m4v", "video/mp4"},
    {"webm", "video/webm"},
    {"ogv", "video/ogg"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"m4a", "audio/mp4"},
    {"ogg", "audio/ogg"},
    {"oga", "audio/ogg"},
    {"opus", "audio/ogg"},
    {"wav", "audio/wav"},
    {"flac", "audio/flac"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"bz2", "application/x-bzip2"},
    {"xz", "application/x-xz"},
    {"zst", "application/zstd"},
    {"7z", "application/x-7z-compressed"},
};

typedef struct slot {
    const char *ext; /* lower case; NULL: empty */
    const char *type;
} slot;

/* Strings live in blocks freed together: entries are never removed one by one, and a replaced
 * type simply stays behind until the table is freed. */
typedef struct block {
    struct block *next;
    size_t used, cap;
    char data[];
} block;

struct pt_mime {
    slot *slots;
    size_t nslots, count; /* nslots is a power of two */
    const char *deftype;
    block *blocks;
};

/* FNV-1a over the lower-cased bytes, so a lookup needs no copy of the name. */
static uint64_t hash_ext(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= pt_ascii_lower((unsigned char)s[i]);
        h *= 1099511628211ULL;
    }
    return h;
}

static bool ext_equal(const char *stored, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (stored[i] != (char)pt_ascii_lower((unsigned char)s[i]))
            return false;
    }
    return stored[len] == '\0';
}

static char *arena_copy(pt_mime *m, const char *s, size_t len, bool lowercase)
{
    block *b = m->blocks;
    if (b == NULL || b->cap - b->used < len + 1) {
        size_t cap = len + 1 > ARENA_BLOCK ? len + 1 : ARENA_BLOCK;
        b = malloc(sizeof *b + cap);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = m->blocks;
        m->blocks = b;
    }
    char *p = b->data + b->used;
    for (size_t i = 0; i < len; i++)
        p[i] = lowercase ? (char)pt_ascii_lower((unsigned char)s[i]) : s[i];
    p[len] = '\0';
    b->used += len + 1;
    return p;
}

static slot *find_slot(slot *slots, size_t nslots, const char *ext, size_t len)
{
    size_t mask = nslots - 1;
    for (size_t i = hash_ext(ext, len) & mask;; i = (i + 1) & mask) {
        if (slots[i].ext == NULL || ext_equal(slots[i].ext, ext, len))
            return &slots[i];
    }
}

static int grow(pt_mime *m)
{
    size_t n = m->nslots ? m->nslots * 2 : INITIAL_SLOTS;
    slot *slots = calloc(n, sizeof *slots);
    if (slots == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < m->nslots; i++) {
        const slot *old = &m->slots[i];
        if (old->ext != NULL)
            *find_slot(slots, n, old->ext, strlen(old->ext)) = *old;
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
    return 0;
}

/* Maps `ext` (already checked) to `type` (already in the arena). */
static int put(pt_mime *m, const char *ext, size_t len, const char *type)
{
    /* keep the load under 3/4 so probe runs stay short */
    if ((m->count + 1) * 4 > m->nslots * 3) {
        int rc = grow(m);
        if (rc < 0)
            return rc;
    }
    slot *s = find_slot(m->slots, m->nslots, ext, len);
    if (s->ext == NULL) {
        char *copy = arena_copy(m, ext, len, true);
        if (copy == NULL)
            return -ENOMEM;
        s->ext = copy;
        m->count++;
    }
    s->type = type;
    return 0;
}

static bool valid_type(const char *type)
{
    if (type == NULL || type[0] == '\0' || type[0] == '/' || strchr(type, '/') == NULL)
        return false;
    for (const unsigned char *p = (const unsigned char *)type; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

static bool valid_ext(const char *ext, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)ext[i];
        if (c <= 0x20 || c == 0x7f || c == '.' || c == '/')
            return false;
    }
    return true;
}

int pt_mime_add(pt_mime *m, const char *type, const char *ext)
{
    if (m == NULL || ext == NULL || !valid_type(type))
        return -EINVAL;
    if (ext[0] == '.')
        ext++;
    size_t len = strlen(ext);
    if (!valid_ext(ext, len))
        return -EINVAL;
    const char *t = arena_copy(m, type, strlen(type), false);
    if (t == NULL)
        return -ENOMEM;
    return put(m, ext, len, t);
}

int pt_mime_set_default(pt_mime *m, const char *type)
{
    if (m == NULL || !valid_type(type))
        return -EINVAL;
    const char *t = arena_copy(m, type, strlen(type), false);
    if (t == NULL)
        return -ENOMEM;
    m->deftype = t;
    return 0;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Reads the next blank-separated word of `*p` into [*w, *w + *len). Returns false at the end
 * of the line or at a comment. */
static bool next_word(const char **p, const char **w, size_t *len)
{
    const char *s = *p;
    while (is_blank(*s))
        s++;
    if (*s == '\0' || *s == '#')
        return false;
    const char *e = s;
    while (*e != '\0' && !is_blank(*e))
        e++;
    *w = s;
    *len = (size_t)(e - s);
    *p = e;
    return true;
}

static int load_line(pt_mime *m, const char *line)
{
    const char *p = line, *w, *type;
    size_t len, tlen;
    if (!next_word(&p, &type, &tlen) || memchr(type, '/', tlen) == NULL)
        return 0;
    const char *t = NULL; /* copied once the line turns out to have an extension */
    while (next_word(&p, &w, &len)) {
        if (!valid_ext(w, len))
            continue;
        if (t == NULL && (t = arena_copy(m, type, tlen, false)) == NULL)
            return -ENOMEM;
        int rc = put(m, w, len, t);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Loads a mime.types file. Returns 0, 1 when it cannot be opened or read, or -ENOMEM. */
static int load_file(pt_mime *m, const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 1;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        if (getline(&line, &cap, f) < 0)
            break;
        rc = load_line(m, line);
        if (rc < 0)
            goto done;
    }
    /* getline() fails at the end of the file too: only errno and the error flag tell */
    if (errno == ENOMEM)
        rc = -ENOMEM;
    else if (ferror(f))
        rc = 1;
done:
    free(line);
    fclose(f);
    return rc;
}

int pt_mime_new(pt_mime **out, const char *path, bool *used_fallback)
{
    int rc = -ENOMEM;
    *out = NULL;
    pt_mime *m = calloc(1, sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    m->deftype = DEFAULT_TYPE;
    if (grow(m) < 0)
        goto fail;
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++) {
        /* the built-in strings are static: no copy of the type */
        rc = put(m, builtin[i].ext, strlen(builtin[i].ext), builtin[i].type);
        if (rc < 0)
            goto fail;
    }
    rc = load_file(m, path != NULL ? path : SYSTEM_FILE);
    if (rc < 0)
        goto fail;
    if (used_fallback != NULL)
        *used_fallback = rc == 1;
    *out = m;
    return 0;
fail:
    pt_mime_free(m);
    return rc;
}

const char *pt_mime_lookup(const pt_mime *m, const char *name, size_t len)
{
    if (m == NULL)
        return DEFAULT_TYPE;
    const char *seg = name;
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '/')
            seg = name + i + 1;
    }
    const char *end = name + len;
    while (seg < end && *seg == '.') /* a dotfile's name is not its extension */
        seg++;
    const char *dot = NULL;
    for (const char *p = seg; p < end; p++) {
        if (*p == '.')
            dot = p;
    }
    if (dot == NULL || dot + 1 == end)
        return m->deftype;
    const char *ext = dot + 1;
    const slot *s = find_slot(m->slots, m->nslots, ext, (size_t)(end - ext));
    return s->ext != NULL ? s->type : m->deftype;
}

void pt_mime_free(pt_mime *m)
{
    if (m == NULL)
        return;
    for (block *b = m->blocks, *next; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    free(m->slots);
    free(m);
}
