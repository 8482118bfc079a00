/*
 * time.c — reading a moment that a person or a program typed: Unix seconds, or an RFC 3339
 * date-time (the form the JSON documents print). One reader for every face, so that the
 * CLI's --at and the API's "at" accept the same texts. And the one monotonic clock every
 * deadline is measured with (tg_now_ms).
 */
#include "base.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* n digits at *p as a number; advances *p. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int expect(const char **p, const char *one_of)
{
    if (**p == '\0' || strchr(one_of, **p) == NULL) return -1;
    (*p)++;
    return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (no timegm: it is not
 * C17 and depends on the process's time zone state). */
static long long days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int rfc3339(const char *s, long long *out)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    if (digits(&p, 4, &y) || expect(&p, "-") || digits(&p, 2, &mo) || expect(&p, "-") ||
        digits(&p, 2, &d))
        return -1;
    if (*p == '\0') /* a date alone: its first second, UTC */
        h = mi = sec = 0;
    else if (expect(&p, "Tt ") || digits(&p, 2, &h) || expect(&p, ":") || digits(&p, 2, &mi) ||
             expect(&p, ":") || digits(&p, 2, &sec))
        return -1;
    else if (*p == '.') { /* fractions of a second: read and dropped (at most 9 digits) */
        int n = 0;
        for (p++; isdigit((unsigned char)*p); p++)
            if (++n > 9) return -1;
        if (n == 0) return -1;
    }
    if (*p == '\0' && p - s == 10)
        ; /* the date alone */
    else if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (digits(&p, 2, &oh) || expect(&p, ":") || digits(&p, 2, &om) || oh > 23 || om > 59)
            return -1;
    } else
        return -1;
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
        sec > 60)
        return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap) return -1;
    if (sec == 60) sec = 59; /* a leap second is read as the second before it */
    long long t = days_from_civil(y, mo, d) * 86400 + h * 3600LL + mi * 60LL + sec;
    *out = t - sign * (oh * 3600LL + om * 60LL);
    return 0;
}

int tg_time_parse(const char *s, long long *out)
{
    if (s == NULL || *s == '\0') return -1;
    const char *p = s + (*s == '-');
    if (*p != '\0' && strspn(p, "0123456789") == strlen(p)) {
        char *end;
        errno = 0;
        long long t = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0') return -1;
        *out = t;
        return 0;
    }
    return rfc3339(s, out);
}

long long tg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
