/*
 * Embedding porter across versions: the version macros and functions, and the option structs
 * that grow without breaking a program built against another version's header
 * (docs/embedding.md, "Versions and ABI").
 *
 * A program built against an older header is played by giving a struct's _init_sized() a
 * smaller size and filling the bytes past it with values the library must not read; one built
 * against a newer header, by a struct with more bytes after it: left as _init() made them (zero)
 * they are accepted, set to anything else they are refused with -EINVAL.
 */
#include "harness.h"

/* A newer program's struct: the one this header knows, and fields added after it. */
#define NEWER(type)                                                                                \
    struct {                                                                                       \
        type known;                                                                                \
        uint64_t later[4];                                                                         \
    }

/* _init_sized() with the newer size zeroes what it does not know and says the size. */
#define ASSERT_NEWER_INIT(v)                                                                       \
    do {                                                                                           \
        assert_int_equal((v).known.size, sizeof(v));                                               \
        for (size_t i_ = 0; i_ < 4; i_++)                                                          \
            assert_true((v).later[i_] == 0);                                                       \
    } while (0)

static void test_version(void **state)
{
    char text[32];
    snprintf(text, sizeof text, "%d.%d.%d", PORTER_VERSION_MAJOR, PORTER_VERSION_MINOR,
             PORTER_VERSION_PATCH);
    assert_string_equal(text, PORTER_VERSION_STRING);
    assert_int_equal(PORTER_VERSION_NUMBER, PORTER_VERSION_MAJOR * 10000 +
                                                PORTER_VERSION_MINOR * 100 + PORTER_VERSION_PATCH);
    /* The library this test runs with is the one its header came with. */
    assert_string_equal(pt_version(), PORTER_VERSION_STRING);
    assert_int_equal(pt_version_number(), PORTER_VERSION_NUMBER);

    /* And both are the project's version, as CMakeLists.txt says it. */
    FILE *cm = fopen(PORTER_SOURCE_DIR "/CMakeLists.txt", "r");
    assert_non_null(cm);
    char line[256], project[32] = "";
    while (fgets(line, sizeof line, cm))
        if (sscanf(line, "project(porter VERSION %31[0-9.]", project) == 1)
            break;
    fclose(cm);
    assert_string_equal(project, PORTER_VERSION_STRING);
}

static void test_server_options_across_versions(void **state)
{
    fixture *f = fixture_new();
    pt_server *s = NULL;
    char err[256];

    pt_server_options o;
    pt_server_options_init(&o);
    assert_int_equal(o.size, sizeof o);
    assert_null(o.limits);

    /* An older program's struct ends before the certificates: they are not read (this one
     * names no file that exists), and take their defaults (none). */
    size_t older = offsetof(pt_server_options, tls_certificate);
    memset(&o, 0x5a, sizeof o);
    pt_server_options_init_sized(&o, older);
    assert_int_equal(o.size, older);
    const unsigned char *past = (const unsigned char *)&o + older;
    for (size_t i = 0; i < sizeof o - older; i++)
        assert_int_equal(past[i], 0x5a); /* init wrote only the older struct's bytes */
    assert_null(o.root);
    o.tls_certificate = "/nonexistent/cert.pem";
    o.tls_certificate_key = "/nonexistent/key.pem";
    assert_int_equal(pt_server_new_with(&s, f->loop, &o, err, sizeof err), 0);
    assert_int_equal(pt_server_listen(s, "127.0.0.1", "0", PT_LISTEN_TLS), -EINVAL);
    pt_server_free(s);

    /* A newer program's struct: accepted while what this library does not know is zero. */
    NEWER(pt_server_options) newer;
    memset(&newer, 0xff, sizeof newer);
    pt_server_options_init_sized(&newer.known, sizeof newer);
    ASSERT_NEWER_INIT(newer);
    assert_int_equal(pt_server_new_with(&s, f->loop, &newer.known, err, sizeof err), 0);
    pt_server_free(s);
    newer.later[2] = 1;
    s = (pt_server *)&newer; /* must be reset to NULL */
    assert_int_equal(pt_server_new_with(&s, f->loop, &newer.known, err, sizeof err), -EINVAL);
    assert_null(s);
    assert_non_null(strstr(err, "pt_server_options"));

    /* A struct that was never initialised says size 0. */
    memset(&o, 0, sizeof o);
    assert_int_equal(pt_server_new_with(&s, f->loop, &o, err, sizeof err), -EINVAL);

    /* The limits the options point to follow the same rule. */
    pt_server_options_init(&o);
    NEWER(pt_limits) limits;
    pt_limits_init_sized(&limits.known, sizeof limits);
    ASSERT_NEWER_INIT(limits);
    o.limits = &limits.known;
    assert_int_equal(pt_server_new_with(&s, f->loop, &o, err, sizeof err), 0);
    pt_server_free(s);
    limits.later[0] = 7;
    assert_int_equal(pt_server_new_with(&s, f->loop, &o, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "limits"));
    fixture_free(f);
}

static void on_read_nothing(pt_conn *c)
{
}

static const pt_conn_proto nothing_proto = {.on_read = on_read_nothing};

static void test_connmgr_options_and_limits_across_versions(void **state)
{
    fixture *f = fixture_new();
    pt_connmgr *m = NULL;

    /* Limits of an older program, without max_concurrent_per_client: its default, not what
     * lies past the older struct. */
    pt_limits l;
    size_t older = offsetof(pt_limits, max_concurrent_per_client);
    pt_limits_init_sized(&l, older);
    l.max_concurrent_per_client = 1;
    l.max_concurrent = 5;
    pt_connmgr_options o;
    pt_connmgr_options_init(&o);
    o.proto = &nothing_proto;
    o.limits = &l;
    assert_int_equal(pt_connmgr_new(&m, f->loop, &o), 0);
    assert_int_equal(pt_connmgr_limits(m)->max_concurrent, 5);
    assert_int_equal(pt_connmgr_limits(m)->max_concurrent_per_client, PT_LIMIT_NONE);
    assert_int_equal(pt_connmgr_limits(m)->size, sizeof(pt_limits));
    pt_connmgr_free(m);

    /* No limits: the defaults. */
    pt_limits d;
    pt_limits_init(&d);
    o.limits = NULL;
    assert_int_equal(pt_connmgr_new(&m, f->loop, &o), 0);
    assert_memory_equal(pt_connmgr_limits(m), &d, sizeof d);
    pt_connmgr_free(m);

    NEWER(pt_connmgr_options) newer;
    pt_connmgr_options_init_sized(&newer.known, sizeof newer);
    ASSERT_NEWER_INIT(newer);
    newer.known.proto = &nothing_proto;
    assert_int_equal(pt_connmgr_new(&m, f->loop, &newer.known), 0);
    pt_connmgr_free(m);
    newer.later[3] = 1;
    m = (pt_connmgr *)&newer; /* must be reset to NULL */
    assert_int_equal(pt_connmgr_new(&m, f->loop, &newer.known), -EINVAL);
    assert_null(m);
    newer.later[3] = 0;

    NEWER(pt_limits) limits;
    pt_limits_init_unlimited_sized(&limits.known, sizeof limits);
    ASSERT_NEWER_INIT(limits);
    newer.known.limits = &limits.known;
    assert_int_equal(pt_connmgr_new(&m, f->loop, &newer.known), 0);
    assert_int_equal(pt_connmgr_limits(m)->max_concurrent, PT_LIMIT_NONE);
    pt_connmgr_free(m);
    limits.later[1] = 1;
    assert_int_equal(pt_connmgr_new(&m, f->loop, &newer.known), -EINVAL);
    pt_custodian_reap(); /* what the managers' loop would have reaped */
    fixture_free(f);
}

static void on_accept_close(pt_listener *l, int fd, const struct sockaddr *peer, socklen_t len,
                            void *data)
{
    close(fd);
}

static void test_outbound_and_listener_options_across_versions(void **state)
{
    fixture *f = fixture_new();

    NEWER(pt_listener_options) lo;
    pt_listener_options_init_sized(&lo.known, sizeof lo);
    ASSERT_NEWER_INIT(lo);
    lo.known.host = "127.0.0.1";
    lo.known.port = "0";
    pt_listener *l = NULL;
    assert_int_equal(pt_listener_open(&l, f->loop, &lo.known, on_accept_close, NULL, NULL), 0);
    pt_listener_close(l);
    lo.later[0] = 1;
    assert_int_equal(pt_listener_open(&l, f->loop, &lo.known, on_accept_close, NULL, NULL),
                     -EINVAL);
    assert_null(l);

    NEWER(pt_connector_options) co;
    pt_connector_options_init_sized(&co.known, sizeof co);
    ASSERT_NEWER_INIT(co);
    assert_true(co.known.nodelay);
    pt_connector *c = NULL;
    assert_int_equal(pt_connector_new(&c, f->loop, &co.known), 0);

    pt_authority a;
    assert_int_equal(pt_authority_set(&a, "127.0.0.1", 9), 0);
    NEWER(pt_pool_options) po;
    pt_pool_options_init_sized(&po.known, sizeof po);
    ASSERT_NEWER_INIT(po);
    assert_int_equal(po.known.max_idle, 32);
    pt_pool *p = NULL;
    assert_int_equal(pt_pool_new(&p, c, &a, &po.known), 0);
    pt_pool_free(p);
    po.later[1] = 1;
    assert_int_equal(pt_pool_new(&p, c, &a, &po.known), -EINVAL);
    /* An older pool program: no custodian field read (it would be taken for a parent). */
    pt_pool_options older;
    pt_pool_options_init_sized(&older, offsetof(pt_pool_options, custodian));
    older.custodian = (pt_custodian *)&older;
    assert_int_equal(pt_pool_new(&p, c, &a, &older), 0);
    pt_pool_free(p);

    pt_connector_free(c);
    co.later[2] = 1;
    c = (pt_connector *)&co;
    assert_int_equal(pt_connector_new(&c, f->loop, &co.known), -EINVAL);
    assert_null(c);
    pt_custodian_reap();
    fixture_free(f);
}

/* What the handler below saw. */
typedef struct replies {
    int newer_set, newer_zero;
} replies;

/* "/newer": a reply of a newer program, refused while a field this version does not know is
 * set, then sent with it left alone. "/older": a reply of a program that has no `close` field;
 * what lies past its struct says close, which must not be read. */
static void on_reply(pt_request *req, void *data)
{
    replies *r = data;
    if (pt_slice_eq(pt_request_path(req), "/newer")) {
        NEWER(pt_reply) newer;
        pt_reply_init_sized(&newer.known, sizeof newer, 200);
        newer.known.body = "newer\n";
        newer.known.body_len = 6;
        newer.later[3] = 1;
        r->newer_set = pt_respond_with(req, &newer.known);
        newer.later[3] = 0;
        r->newer_zero = pt_respond_with(req, &newer.known);
        return;
    }
    pt_reply older;
    pt_reply_init_sized(&older, offsetof(pt_reply, close), 200);
    older.body = "older\n";
    older.body_len = 6;
    older.close = true;
    pt_respond_with(req, &older);
}

static void test_reply_across_versions(void **state)
{
    fixture *f = fixture_new();
    pt_server_options o;
    pt_server_options_init(&o);
    int port;
    pt_server *s = server_new(f, &o, &port);
    replies r = {1, 1};
    assert_int_equal(pt_server_handle(s, "GET", "/", PT_PATH_PREFIX, on_reply, &r), 0);
    assert_int_equal(pt_server_start(s), 0);

    client *c = fetch(f, port, "GET /newer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(r.newer_set, -EINVAL);
    assert_int_equal(r.newer_zero, 0);
    assert_int_equal(status_of(c), 200);
    assert_string_equal(body_of(c), "newer\n");

    /* Kept alive: the client stops reading at the body, the server has not closed. */
    f->clients[1].stop_at = "older\n";
    c = client_start(f, 1, port, 0, "GET /older HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
    run_until(f, all_clients_done, WATCHDOG_SECONDS);
    pthread_join(c->thread, NULL);
    c->started = false;
    char v[64];
    assert_int_equal(status_of(c), 200);
    assert_null(header_of(c, "Connection", v, sizeof v));
    assert_false(c->eof);

    server_stop_free(f, s);
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_server_options_across_versions),
        cmocka_unit_test(test_connmgr_options_and_limits_across_versions),
        cmocka_unit_test(test_outbound_and_listener_options_across_versions),
        cmocka_unit_test(test_reply_across_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
