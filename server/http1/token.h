/*
 * RFC 9110's token characters (tchar), by table: the check runs for every byte of every header
 * name a client or an upstream sends.
 *
 * Threading: no state.
 */
#ifndef PORTER_SERVER_HTTP1_TOKEN_H
#define PORTER_SERVER_HTTP1_TOKEN_H

#include <stdbool.h>

static inline bool pt_h1_is_tchar(unsigned char c)
{
    static const unsigned char tchar[256] = {
        ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1,         ['&'] = 1,         ['\''] = 1,
        ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,         ['^'] = 1,         ['_'] = 1,
        ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
    };
    return tchar[c];
}

#endif
