/*
 * util.c — small text helpers shared by every layer.
 */
#include "base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *tg_strdup(const char *s)
{
    if (s == NULL) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL) memcpy(d, s, n);
    return d;
}

void tg_time_fmt(time_t t, char *buf, size_t bufsize)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, bufsize, "%Y-%m-%d %H:%M:%S GMT", &tm) == 0)
        snprintf(buf, bufsize, "%lld", (long long)t);
}

void tg_hex(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}
