/*
 * The HTTP/1 client (see client.h): the head writer's helpers, connection-specific fields, and
 * the response parser on llhttp.
 */
#include "server/http1/client.h"

#include <llhttp.h>
#include <strings.h>

#include "server/http1/fold.h"
#include "server/http1/token.h"

/* ---- the head writer ---- */

void pt_h1_put_path(pt_h1_hbuf *o, pt_str s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        if (ch <= 0x20 || ch >= 0x7f || strchr("\"#%<>?\\^`{|}", ch)) {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            pt_h1_put(o, e, 3);
        } else {
            pt_h1_put(o, (const char *)&ch, 1);
        }
    }
}

void pt_h1_put_field(pt_h1_hbuf *o, pt_str name, pt_str value)
{
    pt_h1_put(o, name.p, name.len);
    PT_H1_PUT_LIT(o, ": ");
    pt_h1_put(o, value.p, value.len);
    PT_H1_PUT_LIT(o, "\r\n");
}

/* ---- connection-specific fields ---- */

static bool ieq(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    return alen == n && strncasecmp(a, lit, n) == 0;
}

bool pt_h1_has_token(const char *v, size_t len, const char *token)
{
    size_t n = strlen(token), i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t j = i;
        while (j < len && v[j] != ',')
            j++;
        size_t k = j;
        while (k > i && (v[k - 1] == ' ' || v[k - 1] == '\t'))
            k--;
        if (k - i == n && strncasecmp(v + i, token, n) == 0)
            return true;
        i = j;
    }
    return false;
}

/* The length decides first: this runs for every header of every request and response. */
bool pt_h1_hop_by_hop(pt_str name)
{
    const char *n = name.p;
    size_t len = name.len;
    switch (len) {
    case 2:
        return ieq(n, len, "te");
    case 7:
        return ieq(n, len, "trailer") || ieq(n, len, "upgrade");
    case 10:
        return ieq(n, len, "connection") || ieq(n, len, "keep-alive");
    case 16:
        return ieq(n, len, "proxy-connection");
    case 17:
        return ieq(n, len, "transfer-encoding");
    default:
        return false;
    }
}

bool pt_h1_names_other_fields(pt_str v)
{
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t j = i;
        while (j < v.len && v.p[j] != ',' && v.p[j] != ' ' && v.p[j] != '\t')
            j++;
        if (j > i && !ieq(v.p + i, j - i, "keep-alive") && !ieq(v.p + i, j - i, "close") &&
            !ieq(v.p + i, j - i, "upgrade"))
            return true;
        i = j;
    }
    return false;
}

bool pt_h1_named_by(pt_str conn, pt_str name)
{
    char token[64]; /* (no field name porter passes on is as long) */
    if (name.len >= sizeof token)
        return false;
    memcpy(token, name.p, name.len);
    token[name.len] = '\0';
    return pt_h1_has_token(conn.p, conn.len, token);
}

/* ---- the response parser ---- */

struct pt_h1_client {
    llhttp_t parser;
    pt_h1_response r;
    const char *base;     /* the buffer of the feed in progress */
    const char *fed_from; /* where in it llhttp was started */
    size_t parsed;        /* bytes of the buffer given to llhttp */
    const char *piece;    /* the body piece of a PT_H1_BODY event */
    size_t piece_len;
    const char *error;
    pt_h1_event event; /* set by a callback that paused llhttp */
    char tail;         /* pt_h1_tail() of what llhttp was given before the feed in progress */
    bool head_req, upgrade_req;
    bool in_value;
    bool interim; /* reading a 1xx answer */
    bool resume;  /* llhttp paused at an event: run it again at the next feed */
    /* The trailer section of a chunked body, copied as "Name: value\r\n" lines (the body's
     * bytes are let go as they are passed on, so spans would not last). */
    char trailers[PT_H1_TRAILERS_MAX];
    size_t tlen, tline;  /* bytes kept; where the line being read starts */
    bool t_name, t_over; /* reading a name; the section did not fit (all dropped) */
};

static pt_h1_client *of(llhttp_t *parser)
{
    return parser->data;
}

static uint32_t offset_of(pt_h1_client *cl, const char *at)
{
    return (uint32_t)(at - cl->base);
}

/* Refuses the response: llhttp stops with `why`. */
static int refuse(llhttp_t *parser, const char *why)
{
    of(parser)->error = why;
    llhttp_set_error_reason(parser, why);
    return HPE_USER;
}

static int on_message_begin(llhttp_t *parser)
{
    pt_h1_client *cl = of(parser);
    cl->r.nfields = 0;
    cl->in_value = false;
    return 0;
}

/* ---- the trailer section ---- */

static void trailer_put(pt_h1_client *cl, const char *p, size_t n)
{
    if (cl->t_over || cl->tlen + n > sizeof cl->trailers) {
        cl->t_over = true;
        return;
    }
    memcpy(cl->trailers + cl->tlen, p, n);
    cl->tlen += n;
}

/* Fields a trailer may not carry, or that mean nothing after the body (RFC 9110 section
 * 6.5.1): framing, routing and the connection's own. */
static bool trailer_forbidden(pt_str name)
{
    return pt_h1_hop_by_hop(name) || pt_str_ieq(name, "content-length") ||
           pt_str_ieq(name, "host") || pt_str_ieq(name, "content-encoding") ||
           pt_str_ieq(name, "content-type") || pt_str_ieq(name, "content-range") ||
           pt_str_ieq(name, "set-cookie") || pt_str_ieq(name, "authorization");
}

static void trailer_line_end(pt_h1_client *cl)
{
    if (cl->t_name) {
        trailer_put(cl, ": ", 2);
        cl->t_name = false;
    }
    if (cl->t_over)
        return;
    const char *line = cl->trailers + cl->tline;
    const char *colon = memchr(line, ':', cl->tlen - cl->tline);
    pt_str name = {line, colon ? (size_t)(colon - line) : 0};
    if (!colon || trailer_forbidden(name)) {
        cl->tlen = cl->tline; /* dropped */
        return;
    }
    trailer_put(cl, "\r\n", 2);
}

static int on_header_field(llhttp_t *parser, const char *at, size_t len)
{
    pt_h1_client *cl = of(parser);
    if (cl->r.head_done) {
        if (!cl->t_name) {
            cl->tline = cl->tlen;
            cl->t_name = true;
        }
        trailer_put(cl, at, len);
        return 0;
    }
    pt_h1_field *last = cl->r.nfields ? &cl->r.fields[cl->r.nfields - 1] : NULL;
    if (!cl->in_value && last && last->value.len == 0 &&
        last->name.off + last->name.len == offset_of(cl, at)) {
        last->name.len += (uint32_t)len; /* a name split across reads */
    } else {
        if (cl->r.nfields >= PT_H1_FIELDS_MAX)
            return refuse(parser, "too many header fields");
        pt_h1_field *f = &cl->r.fields[cl->r.nfields++];
        f->name = (pt_h1_span){offset_of(cl, at), (uint32_t)len};
        f->value = (pt_h1_span){0, 0};
    }
    cl->in_value = false;
    return 0;
}

static int on_header_value(llhttp_t *parser, const char *at, size_t len)
{
    pt_h1_client *cl = of(parser);
    if (pt_h1_folded(cl->fed_from, at, len, cl->tail))
        return refuse(parser, "obsolete line folding in a header field");
    if (cl->r.head_done) {
        if (cl->t_name) {
            trailer_put(cl, ": ", 2);
            cl->t_name = false;
        }
        trailer_put(cl, at, len);
        return 0;
    }
    pt_h1_field *f = &cl->r.fields[cl->r.nfields - 1];
    if (!cl->in_value && f->value.len == 0)
        f->value.off = offset_of(cl, at);
    f->value.len += (uint32_t)len;
    cl->in_value = true;
    return 0;
}

static int on_header_value_complete(llhttp_t *parser)
{
    pt_h1_client *cl = of(parser);
    cl->in_value = false;
    if (cl->r.head_done)
        trailer_line_end(cl);
    return 0;
}

const char *pt_h1_invalid_field(pt_str name, pt_str value)
{
    if (name.len == 0)
        return "empty header field name";
    for (size_t k = 0; k < name.len; k++)
        if (!pt_h1_is_tchar((unsigned char)name.p[k]))
            return "invalid header field name";
    for (size_t k = 0; k < value.len; k++)
        if (value.p[k] == '\r' || value.p[k] == '\n' || value.p[k] == '\0')
            return "CR, LF or NUL in a header field";
    return NULL;
}

static int on_headers_complete(llhttp_t *parser)
{
    pt_h1_client *cl = of(parser);
    int status = parser->status_code;
    cl->r.status = status;
    for (size_t i = 0; i < cl->r.nfields; i++) {
        const pt_h1_field *f = &cl->r.fields[i];
        const char *why = pt_h1_invalid_field((pt_str){cl->base + f->name.off, f->name.len},
                                              (pt_str){cl->base + f->value.off, f->value.len});
        if (why)
            return refuse(parser, why);
    }
    /* llhttp reads any three digits; a client would not know what the others mean. */
    if (status < 100 || status > 599)
        return refuse(parser, "status code out of 100-599");
    /* A response to HEAD, a 1xx, a 204 or a 304 ends at its head, whatever its Content-Length
     * or Transfer-Encoding say (RFC 9112 section 6.3); llhttp 8 would read a body the length
     * announces. Returning 1 from here says so, and so does F_SKIPBODY for after a pause. */
    if (status >= 100 && status < 200 && status != 101) {
        cl->interim = true; /* 100 Continue, 103 Early Hints: dropped */
        return 1;
    }
    if (status == 101) {
        if (!cl->upgrade_req || !parser->upgrade)
            return refuse(parser, "101 to a request that did not ask to upgrade");
        cl->r.switching = true;
        cl->r.head_done = true;
        cl->event = PT_H1_HEAD;
        return HPE_PAUSED;
    }
    if ((parser->flags & F_TRANSFER_ENCODING) && !(parser->flags & F_CHUNKED))
        return refuse(parser, "unsupported transfer coding");
    if ((parser->flags & F_TRANSFER_ENCODING) && parser->http_minor == 0)
        return refuse(parser, "Transfer-Encoding in an HTTP/1.0 response");
    cl->r.sized = (parser->flags & F_CONTENT_LENGTH) && !(parser->flags & F_CHUNKED);
    cl->r.length = cl->r.sized ? parser->content_length : 0;
    cl->r.no_body = cl->head_req || status == 204 || status == 304;
    cl->r.head_done = true;
    if (cl->r.no_body)
        parser->flags |= F_SKIPBODY;
    cl->event = PT_H1_HEAD;
    return HPE_PAUSED;
}

static int on_body(llhttp_t *parser, const char *at, size_t len)
{
    pt_h1_client *cl = of(parser);
    if (len == 0)
        return 0;
    cl->piece = at;
    cl->piece_len = len;
    cl->event = PT_H1_BODY;
    return HPE_PAUSED;
}

static int on_message_complete(llhttp_t *parser)
{
    pt_h1_client *cl = of(parser);
    if (cl->interim) {
        cl->interim = false;
        return 0; /* the final response follows */
    }
    cl->r.keep_alive = llhttp_should_keep_alive(parser);
    cl->event = PT_H1_DONE;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

size_t pt_h1_client_size(void)
{
    return sizeof(pt_h1_client);
}

void pt_h1_client_init(pt_h1_client *cl, bool head_req, bool upgrade_req)
{
    llhttp_init(&cl->parser, HTTP_RESPONSE, &settings);
    cl->parser.data = cl;
    cl->r.status = 0;
    cl->r.head_done = cl->r.switching = cl->r.no_body = cl->r.keep_alive = cl->r.sized = false;
    cl->r.length = 0;
    cl->r.nfields = 0;
    cl->base = cl->fed_from = NULL;
    cl->parsed = 0;
    cl->piece = NULL;
    cl->piece_len = 0;
    cl->tlen = cl->tline = 0;
    cl->t_name = cl->t_over = false;
    cl->error = NULL;
    cl->event = PT_H1_MORE;
    cl->tail = 0;
    cl->head_req = head_req;
    cl->upgrade_req = upgrade_req;
    cl->in_value = cl->interim = cl->resume = false;
}

pt_h1_event pt_h1_client_feed(pt_h1_client *cl, const char *buf, size_t len, pt_str *piece)
{
    if (cl->event == PT_H1_DONE || cl->event == PT_H1_INVALID)
        return cl->event;
    if (cl->parsed >= len && !cl->resume)
        return PT_H1_MORE;
    cl->resume = false;
    cl->event = PT_H1_MORE;
    /* (an empty buffer may be no memory at all: llhttp is given an empty string then) */
    const char *base = len ? buf : "", *from = base + cl->parsed, *end = base + len;
    cl->base = base;
    cl->fed_from = from;
    llhttp_errno_t e = llhttp_execute(&cl->parser, from, (size_t)(end - from));
    if (e == HPE_OK) {
        cl->tail = pt_h1_tail(from, end, cl->tail);
        cl->parsed = len;
        return PT_H1_MORE;
    }
    if (e == HPE_PAUSED) {
        const char *pos = llhttp_get_error_pos(&cl->parser);
        cl->tail = pt_h1_tail(from, pos, cl->tail);
        cl->parsed = (size_t)(pos - base);
        llhttp_resume(&cl->parser);
        if (cl->event == PT_H1_BODY)
            *piece = (pt_str){cl->piece, cl->piece_len};
        cl->resume = cl->event != PT_H1_DONE;
        return cl->event;
    }
    if (!cl->error) {
        const char *why = llhttp_get_error_reason(&cl->parser);
        cl->error = why ? why : llhttp_errno_name(e);
    }
    cl->event = PT_H1_INVALID;
    return PT_H1_INVALID;
}

pt_h1_event pt_h1_client_eof(pt_h1_client *cl)
{
    if (cl->event == PT_H1_DONE || cl->event == PT_H1_INVALID)
        return cl->event;
    if (!cl->r.head_done || !llhttp_message_needs_eof(&cl->parser))
        return PT_H1_MORE;
    /* A body that runs to the end of the connection: it ends here. */
    llhttp_errno_t e = llhttp_finish(&cl->parser);
    if (cl->event == PT_H1_DONE)
        return PT_H1_DONE; /* (and llhttp says the connection cannot be kept) */
    if (e != HPE_OK) {
        cl->error = "invalid end of the response";
        cl->event = PT_H1_INVALID;
        return PT_H1_INVALID;
    }
    return PT_H1_MORE;
}

const pt_h1_response *pt_h1_client_response(const pt_h1_client *cl)
{
    return &cl->r;
}

size_t pt_h1_client_parsed(const pt_h1_client *cl)
{
    return cl->parsed;
}

void pt_h1_client_consumed(pt_h1_client *cl, size_t n)
{
    cl->parsed -= n;
}

const char *pt_h1_client_error(const pt_h1_client *cl)
{
    return cl->error;
}

pt_str pt_h1_client_trailers(const pt_h1_client *cl)
{
    if (cl->t_over || cl->r.switching)
        return (pt_str){"", 0};
    return (pt_str){cl->trailers, cl->tlen};
}
