/*
 * Shared zones (server/core/zone.c): keys in and out of the table, long keys held as digests,
 * the recently-used order and a full zone, memory that forked processes share, and the lock
 * of a process that died holding it: the next locker gets the lock and a zone rebuilt from
 * its entries, whatever the dead one was changing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/core/zone.c"
#include "tests/support.h"

static pt_zone *zone(size_t size)
{
    pt_zone *z = NULL;
    assert_int_equal(pt_zone_open(&z, size), 0);
    return z;
}

static pt_zone_key key_of(pt_zone *z, const char *s)
{
    pt_zone_key k;
    pt_zone_key_make(z, s, strlen(s), &k);
    return k;
}

static pt_zone_entry *find(pt_zone *z, const char *s)
{
    pt_zone_key k = key_of(z, s);
    return pt_zone_find(z, &k);
}

/* Whether `e` holds the (short) key `s`, without moving it in the list. */
static bool is_key(const pt_zone_entry *e, const char *s)
{
    return e && e->len == strlen(s) && memcmp(e->key, s, e->len) == 0;
}

static pt_zone_entry *insert(pt_zone *z, const char *s)
{
    pt_zone_key k = key_of(z, s);
    return pt_zone_insert(z, &k);
}

/* The reference vectors of SipHash-2-4 (the paper's appendix): key 00..0f, messages 00..(n-1). */
static void test_siphash_vectors(void **state)
{
    (void)state;
    uint8_t in[15];
    for (int i = 0; i < 15; i++)
        in[i] = (uint8_t)i;
    uint64_t k0 = UINT64_C(0x0706050403020100), k1 = UINT64_C(0x0f0e0d0c0b0a0908);
    assert_true(siphash(k0, k1, in, 0) == UINT64_C(0x726fdb47dd0e0e31));
    assert_true(siphash(k0, k1, in, 8) == UINT64_C(0x93f5f5799a932462));
    assert_true(siphash(k0, k1, in, 15) == UINT64_C(0xa129ca6149be45e5));
}

static void test_size_bounds(void **state)
{
    (void)state;
    pt_zone *z = NULL;
    assert_int_equal(pt_zone_open(&z, PT_ZONE_MIN_SIZE - 1), -EINVAL);
    assert_null(z);
    z = zone(PT_ZONE_MIN_SIZE);
    /* 32 KiB: a header, then 68 bytes an entry at most */
    assert_true(pt_zone_capacity(z) >= (PT_ZONE_MIN_SIZE - 1024) / 68);
    assert_true(pt_zone_capacity(z) <= PT_ZONE_MIN_SIZE / 64);
    assert_int_equal(pt_zone_size(z), PT_ZONE_MIN_SIZE);
    pt_zone_close(z);
    /* a reference more keeps it mapped until the last goes */
    z = zone(PT_ZONE_MIN_SIZE);
    pt_zone_ref(z);
    pt_zone_close(z);
    assert_int_equal(pt_zone_used(z), 0);
    pt_zone_close(z);
    pt_zone_close(NULL);
}

static void test_find_insert_remove(void **state)
{
    (void)state;
    pt_zone *z = zone(64 * 1024);
    pt_zone_lock(z);
    assert_null(find(z, "a"));
    pt_zone_entry *a = insert(z, "a");
    assert_non_null(a);
    a->count = 7;
    pt_zone_entry *b = insert(z, "b");
    assert_non_null(b);
    assert_ptr_equal(find(z, "a"), a);
    assert_int_equal(find(z, "a")->count, 7);
    assert_ptr_equal(find(z, "b"), b);
    assert_int_equal(b->count, 0);
    assert_null(find(z, "ab"));
    assert_int_equal(pt_zone_used(z), 2);
    pt_zone_remove(z, a);
    assert_null(find(z, "a"));
    assert_ptr_equal(find(z, "b"), b);
    assert_int_equal(pt_zone_used(z), 1);
    /* the freed entry serves the next key, with its user part cleared */
    pt_zone_entry *c = insert(z, "c");
    assert_ptr_equal(c, a);
    assert_int_equal(c->count, 0);
    pt_zone_unlock(z);
    pt_zone_close(z);
}

/* Keys longer than an entry holds are told apart by their digests, never confused with a short
 * key of the same bytes. */
static void test_long_keys(void **state)
{
    (void)state;
    pt_zone *z = zone(64 * 1024);
    char k1[200], k2[200];
    memset(k1, 'x', sizeof k1 - 1);
    k1[sizeof k1 - 1] = '\0';
    memcpy(k2, k1, sizeof k1);
    k2[198] = 'y';
    pt_zone_lock(z);
    pt_zone_entry *e1 = insert(z, k1);
    assert_true(e1->flags & ENTRY_DIGEST);
    assert_null(find(z, k2));
    pt_zone_entry *e2 = insert(z, k2);
    assert_ptr_not_equal(e1, e2);
    assert_ptr_equal(find(z, k1), e1);
    assert_ptr_equal(find(z, k2), e2);
    /* a short key made of the digest's bytes is another key */
    pt_zone_key d;
    pt_zone_key_make(z, e1->key, PT_ZONE_KEY_INLINE, &d);
    assert_false(d.digest);
    assert_null(pt_zone_find(z, &d));
    pt_zone_unlock(z);
    pt_zone_close(z);
}

/* The oldest entry is the least recently found or made; a full zone makes no more. */
static void test_recently_used_and_full(void **state)
{
    (void)state;
    pt_zone *z = zone(PT_ZONE_MIN_SIZE);
    size_t cap = pt_zone_capacity(z);
    char k[32];
    pt_zone_lock(z);
    for (size_t i = 0; i < cap; i++) {
        snprintf(k, sizeof k, "key%zu", i);
        assert_non_null(insert(z, k));
    }
    assert_int_equal(pt_zone_used(z), cap);
    assert_null(insert(z, "one more"));
    assert_true(is_key(pt_zone_oldest(z), "key0"));
    /* found, key0 is the newest: key1 is the oldest; then key1 too: key2 */
    find(z, "key0");
    assert_true(is_key(pt_zone_oldest(z), "key1"));
    find(z, "key1");
    assert_true(is_key(pt_zone_oldest(z), "key2"));
    pt_zone_remove(z, find(z, "key4"));
    assert_non_null(insert(z, "one more"));
    assert_null(insert(z, "and another"));
    /* every key is still found where it was put */
    for (size_t i = 0; i < cap; i++) {
        snprintf(k, sizeof k, "key%zu", i);
        assert_true((find(z, k) != NULL) == (i != 4));
    }
    pt_zone_unlock(z);
    pt_zone_close(z);
}

/* Runs `child` in a forked process and waits for it; returns its exit status. */
static int in_child(void (*child)(pt_zone *), pt_zone *z)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child(z);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void child_inserts(pt_zone *z)
{
    pt_zone_lock(z);
    pt_zone_entry *e = insert(z, "from the child");
    if (e)
        e->count = 42;
    pt_zone_unlock(z);
}

static void test_shared_with_children(void **state)
{
    (void)state;
    pt_zone *z = zone(64 * 1024);
    assert_int_equal(in_child(child_inserts, z), 0);
    pt_zone_lock(z);
    pt_zone_entry *e = find(z, "from the child");
    assert_non_null(e);
    assert_int_equal(e->count, 42);
    pt_zone_unlock(z);
    pt_zone_close(z);
}

/* A worker that dies holding the lock: a process that leaves without unlocking. */
static void child_dies_holding(pt_zone *z)
{
    pt_zone_lock(z);
    _exit(0);
}

/* ... and one that dies halfway through making an entry: used, keyed, in no list. */
static void child_dies_inserting(pt_zone *z)
{
    pt_zone_lock(z);
    pt_zone_entry *e = &z->entries[z->sh->fresh++];
    pt_zone_key k = key_of(z, "half made");
    e->hash = k.hash;
    e->len = k.len;
    memcpy(e->key, k.bytes, k.len);
    e->flags = ENTRY_USED;
    _exit(0);
}

/* ... and one that dies halfway through removing one: no longer used, still in the lists. */
static void child_dies_removing(pt_zone *z)
{
    pt_zone_lock(z);
    find(z, "going")->flags = 0;
    _exit(0);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "a zone's lock stayed taken by a dead process\n";
    ssize_t n = write(2, msg, sizeof msg - 1);
    (void)n;
    _exit(99);
}

static void test_lock_of_a_dead_process(void **state)
{
    (void)state;
    signal(SIGALRM, on_alarm); /* a lock nobody can take would hang the test */
    alarm(20);
    pt_zone *z = zone(64 * 1024);
    pt_zone_lock(z);
    assert_non_null(insert(z, "kept"));
    assert_non_null(insert(z, "going"));
    pt_zone_unlock(z);

    assert_int_equal(in_child(child_dies_holding, z), 0);
    pt_zone_lock(z);
    assert_non_null(find(z, "kept"));
    pt_zone_unlock(z);

    assert_int_equal(in_child(child_dies_inserting, z), 0);
    pt_zone_lock(z);
    assert_non_null(find(z, "half made"));
    assert_int_equal(pt_zone_used(z), 3);
    pt_zone_unlock(z);

    assert_int_equal(in_child(child_dies_removing, z), 0);
    pt_zone_lock(z);
    assert_null(find(z, "going"));
    assert_non_null(find(z, "kept"));
    assert_non_null(find(z, "half made"));
    assert_int_equal(pt_zone_used(z), 2);
    /* the lists are whole again: the freed entries serve new keys */
    assert_non_null(insert(z, "new one"));
    assert_non_null(insert(z, "new two"));
    assert_non_null(find(z, "new one"));
    assert_int_equal(pt_zone_used(z), 4);
    pt_zone_unlock(z);
    /* and the lock works as a lock again */
    pt_zone_lock(z);
    pt_zone_unlock(z);
    pt_zone_close(z);
    alarm(0);
    signal(SIGALRM, SIG_DFL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NOTHING_LEFT_TEST(test_siphash_vectors),
        NOTHING_LEFT_TEST(test_size_bounds),
        NOTHING_LEFT_TEST(test_find_insert_remove),
        NOTHING_LEFT_TEST(test_long_keys),
        NOTHING_LEFT_TEST(test_recently_used_and_full),
        NOTHING_LEFT_TEST(test_shared_with_children),
        NOTHING_LEFT_TEST(test_lock_of_a_dead_process),
    };
    return cmocka_run_group_tests_name("zone", tests, NULL, NULL);
}
