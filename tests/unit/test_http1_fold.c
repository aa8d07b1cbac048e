/* obs-fold detection over the pieces llhttp reports, whole and split across reads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <llhttp.h>
#include <string.h>

#include "server/http1_fold.h"

typedef struct feed {
    llhttp_t parser;
    const char *from; /* the data of the execute in progress */
    char tail;
    int folds, values;
} feed;

static int on_value(llhttp_t *p, const char *at, size_t len)
{
    feed *f = p->data;
    f->values++;
    if (pt_h1_folded(f->from, at, len, f->tail))
        f->folds++;
    return 0;
}

/* Feeds `text` to a request parser cut at `cut` (and whole when `cut` is 0, or past the end),
 * copying each piece to a buffer of its own so nothing before it can be read; returns how many
 * value pieces were taken for folds. */
static int folds(const char *text, size_t cut)
{
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_header_value = on_value;
    feed f = {.tail = 0};
    llhttp_init(&f.parser, HTTP_REQUEST, &s);
    f.parser.data = &f;
    size_t n = strlen(text);
    if (cut == 0 || cut > n)
        cut = n;
    size_t pieces[2][2] = {{0, cut}, {cut, n - cut}};
    for (int i = 0; i < 2; i++) {
        if (!pieces[i][1])
            continue;
        char copy[512];
        memcpy(copy, text + pieces[i][0], pieces[i][1]);
        f.from = copy;
        llhttp_errno_t e = llhttp_execute(&f.parser, copy, pieces[i][1]);
        assert_int_equal(e, HPE_OK);
        f.tail = pt_h1_tail(copy, copy + pieces[i][1], f.tail);
    }
    return f.folds;
}

static void test_a_fold_is_found_wherever_the_input_is_cut(void **state)
{
    const char *cases[] = {
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX:\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a  \r\n   b c\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (size_t cut = 0; cut <= strlen(cases[i]); cut++)
            if (folds(cases[i], cut) < 1)
                fail_msg("case %zu cut at %zu: the fold was not seen", i, cut);
}

static void test_no_fold_in_values_cut_anywhere(void **state)
{
    const char *cases[] = {
        "GET / HTTP/1.1\r\nHost: a\r\nX: a b c\r\nY:  d\t e \r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX:\r\nY: \r\nZ:\t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost:    a\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (size_t cut = 0; cut <= strlen(cases[i]); cut++)
            if (folds(cases[i], cut) != 0)
                fail_msg("case %zu cut at %zu: a fold was seen where there is none", i, cut);
}

static void test_tail(void **state)
{
    const char s[] = "ab \t";
    assert_int_equal(pt_h1_tail(s, s + 4, 'z'), 'b');
    assert_int_equal(pt_h1_tail(s + 2, s + 4, 'z'), 'z'); /* only blanks: the old tail */
    assert_int_equal(pt_h1_tail(s, s, '\n'), '\n');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_fold_is_found_wherever_the_input_is_cut),
        cmocka_unit_test(test_no_fold_in_values_cut_anywhere),
        cmocka_unit_test(test_tail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
