/*
 * HTTP dates (request.h): IMF-fixdate formatted and parsed, and the clock of the current second
 * (the Date header's value and the access log's time stamp, formatted once a second).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/core/request.h"

static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

size_t pt_http_date_format(time_t t, char *buf)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    return (size_t)snprintf(buf, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday],
                            tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                            tm.tm_sec);
}

time_t pt_http_date_parse(const char *s, size_t len)
{
    char buf[64], mon[4] = {0};
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct tm tm = {0};
    int day, year, h, m, sec, n = 0;
    /* IMF-fixdate, RFC 850, asctime (RFC 9110 section 5.6.7) */
    if (sscanf(buf, "%*3s, %2d %3s %4d %2d:%2d:%2d GMT%n", &day, mon, &year, &h, &m, &sec, &n) ==
            6 &&
        n == (int)len) {
    } else if (sscanf(buf, "%*[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT%n", &day, mon, &year, &h, &m,
                      &sec, &n) == 6 &&
               n == (int)len) {
        year += year < 70 ? 2000 : 1900;
    } else if (sscanf(buf, "%*3s %3s %2d %2d:%2d:%2d %4d%n", mon, &day, &h, &m, &sec, &year, &n) ==
                   6 &&
               n == (int)len) {
    } else {
        return -1;
    }
    int mi = -1;
    for (int i = 0; i < 12; i++)
        if (strcmp(mon, months[i]) == 0)
            mi = i;
    if (mi < 0 || day < 1 || day > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = mi;
    tm.tm_mday = day;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    return timegm(&tm);
}

/* The Date header value and the access log's time, reformatted when the second changes. */
static _Thread_local pt_clock clock_cache = {-1, "", 0, ""};

const pt_clock *pt_clock_at(time_t now)
{
    if (now != clock_cache.second) {
        clock_cache.second = now;
        clock_cache.date_len = pt_http_date_format(now, clock_cache.date);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(clock_cache.local, sizeof clock_cache.local, "%d/%b/%Y:%H:%M:%S %z", &tm);
    }
    return &clock_cache;
}
