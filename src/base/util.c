/*
 * util.c — small helpers shared by every layer: times, hex, array growth, and the one
 * rule for printable UTF-8 text (names, descriptions) with its cleaner for derived names.
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

void tg_time_rfc3339(time_t t, char *buf, size_t bufsize)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, bufsize, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, bufsize, "%lld", (long long)t);
}

int tg_grow(void *vp, size_t *cap, size_t n, size_t size, size_t first)
{
    if (n < *cap) return 0;
    void *old;
    memcpy(&old, vp, sizeof(old)); /* vp is a T**: read and written as bytes */
    size_t c = *cap ? *cap * 2 : first > 0 ? first : 1;
    if (c < n + 1) c = n + 1;
    if (size == 0 || c > SIZE_MAX / size) return -1;
    void *nv = realloc(old, c * size);
    if (nv == NULL) return -1;
    memcpy(vp, &nv, sizeof(nv));
    *cap = c;
    return 0;
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

/* Decodes the code point at p; returns its length, or 0 when the bytes are not the
 * shortest UTF-8 form of a scalar value (a NUL ends any sequence: continuation bytes
 * are 10xxxxxx). */
static size_t utf8_next(const unsigned char *p, uint32_t *cp)
{
    size_t n;
    uint32_t c = p[0], min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xe0) == 0xc0)
        n = 2, c &= 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        n = 3, c &= 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        n = 4, c &= 0x07, min = 0x10000;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    *cp = c;
    return n;
}

static int cp_control(uint32_t c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

static int cp_invisible(uint32_t c)
{
    return (c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069) || c == 0x2060 || c == 0xfeff;
}

int tg_text_check(const char *s, size_t *at, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; p[i];) {
        uint32_t c = 0;
        size_t n = utf8_next(p + i, &c);
        if (at) *at = i;
        if (cp) *cp = c;
        if (n == 0) return TG_TEXT_NOT_UTF8;
        if (cp_control(c) || cp_invisible(c)) return TG_TEXT_FORBIDDEN;
        i += n;
    }
    return 0;
}

char *tg_text_clean(const char *s, char *out, size_t outsize, size_t max)
{
    static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    if (max >= outsize) max = outsize - 1;
    for (size_t i = 0; p[i];) {
        uint32_t c = 0;
        size_t n = utf8_next(p + i, &c);
        const char *put = (const char *)p + i;
        size_t len = n;
        if (n == 0 || cp_control(c)) put = repl, len = 3;
        if (n == 0) n = 1;
        i += n;
        if (n > 0 && cp_invisible(c) && put != repl) continue;
        if (o + len > max) break;
        memcpy(out + o, put, len);
        o += len;
    }
    out[o] = '\0';
    return out;
}

size_t tg_utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max) return n;
    size_t i = max;
    while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
        i--;
    return i;
}

size_t tg_utf8_next(const char *s, uint32_t *cp)
{
    return utf8_next((const unsigned char *)s, cp);
}
