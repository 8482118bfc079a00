/*
 * ports.c — the text forms of a proxy's addresses: port lists ("443,8443,10000-10100")
 * and listen addresses ("192.0.2.1:3128", "[2001:db8::1]:3128").
 *
 * Both are stored only in their canonical form (a port list sorted with overlapping and
 * adjacent ranges merged; an address as getnameinfo prints it), so that two spellings
 * of the same thing compare equal when proxies are checked against each other. Numeric
 * only: nothing here asks a resolver, and nothing here uses libevent.
 */
#include "keyring_int.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A port: 1 to 5 digits, 1..65535. *end gets the first byte after it. */
static int port_at(const char *p, const char **end, unsigned *out)
{
    unsigned v = 0;
    size_t n = 0;
    while (p[n] >= '0' && p[n] <= '9' && n < 6)
        v = v * 10 + (unsigned)(p[n++] - '0');
    *end = p + n;
    if (n == 0 || n > 5 || v < 1 || v > 65535) return -1;
    *out = v;
    return 0;
}

static int by_low(const void *a, const void *b)
{
    const tg_port_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

int tg_ports_parse(const char *s, tg_portlist *out, tg_err *err)
{
    memset(out, 0, sizeof(*out));
    size_t len = s ? strlen(s) : 0;
    if (len == 0) return tg_err_set(err, TG_E_INVALID, "the port list is empty");
    if (len > TG_PORTS_TEXT_MAX)
        return tg_err_set(err, TG_E_INVALID,
                          "the port list is too long (%zu bytes; the limit is %d)", len,
                          TG_PORTS_TEXT_MAX);
    const char *p = s;
    for (;;) {
        while (*p == ' ')
            p++;
        const char *item = p, *end;
        size_t ilen = strcspn(item, ",");
        while (ilen > 0 && item[ilen - 1] == ' ')
            ilen--;
        if (ilen == 0)
            return tg_err_set(err, TG_E_INVALID,
                              "the port list '%s' has an empty item (two commas, or one at "
                              "an end)",
                              s);
        if (out->n == TG_PORTS_MAX)
            return tg_err_set(err, TG_E_INVALID,
                              "the port list has more than %d items; use ranges (LOW-HIGH)",
                              TG_PORTS_MAX);
        tg_port_range r;
        int bad = port_at(item, &end, &r.lo);
        r.hi = r.lo;
        if (bad == 0 && *end == '-') bad = port_at(end + 1, &end, &r.hi);
        if (bad != 0 || end != item + ilen)
            return tg_err_set(err, TG_E_INVALID,
                              "'%.*s' in the port list is neither a port (1-65535) nor a range "
                              "LOW-HIGH of them",
                              (int)(ilen > 40 ? 40 : ilen), item);
        if (r.lo > r.hi)
            return tg_err_set(err, TG_E_INVALID,
                              "the range %u-%u in the port list runs backwards; write %u-%u", r.lo,
                              r.hi, r.hi, r.lo);
        out->v[out->n++] = r;
        p = end;
        while (*p == ' ')
            p++;
        if (*p == '\0') break;
        p++; /* the comma */
    }
    qsort(out->v, out->n, sizeof(out->v[0]), by_low);
    size_t m = 0;
    for (size_t i = 1; i < out->n; i++) {
        if (out->v[i].lo <= out->v[m].hi + 1) {
            if (out->v[i].hi > out->v[m].hi) out->v[m].hi = out->v[i].hi;
        } else {
            out->v[++m] = out->v[i];
        }
    }
    out->n = m + 1;
    return 0;
}

void tg_ports_format(const tg_portlist *l, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->n && o < size; i++) {
        int w = l->v[i].lo == l->v[i].hi
                    ? snprintf(buf + o, size - o, "%s%u", i ? "," : "", l->v[i].lo)
                    : snprintf(buf + o, size - o, "%s%u-%u", i ? "," : "", l->v[i].lo, l->v[i].hi);
        if (w < 0) break;
        o += (size_t)w;
    }
}

unsigned tg_ports_overlap(const tg_portlist *a, const tg_portlist *b)
{
    size_t i = 0, j = 0;
    while (i < a->n && j < b->n) {
        const tg_port_range *x = &a->v[i], *y = &b->v[j];
        if (x->hi < y->lo)
            i++;
        else if (y->hi < x->lo)
            j++;
        else
            return x->lo > y->lo ? x->lo : y->lo;
    }
    return 0;
}

int tg_listen_parse(const char *s, char *out, size_t outsize, tg_err *err)
{
    size_t len = s ? strlen(s) : 0;
    char host[TG_LISTEN_MAX];
    const char *port;
    int v6 = len > 0 && s[0] == '[';
    if (len == 0 || len >= sizeof(host))
        return tg_err_set(err, TG_E_INVALID,
                          "the listen address must be ADDR:PORT (e.g. 192.0.2.1:3128 or "
                          "[2001:db8::1]:3128)");
    if (v6) {
        const char *close = strstr(s, "]:");
        if (close == NULL)
            return tg_err_set(err, TG_E_INVALID,
                              "the listen address '%s' must be [IPv6]:PORT, e.g. [::1]:3128", s);
        snprintf(host, sizeof(host), "%.*s", (int)(close - s - 1), s + 1);
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL)
            return tg_err_set(err, TG_E_INVALID,
                              "the listen address '%s' has no port; write ADDR:PORT, e.g. "
                              "192.0.2.1:3128",
                              s);
        snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
        port = colon + 1;
        if (strchr(host, ':') != NULL)
            return tg_err_set(err, TG_E_INVALID,
                              "the listen address '%s': write an IPv6 address in brackets, "
                              "e.g. [::1]:3128",
                              s);
    }
    const char *end;
    unsigned pv;
    if (port_at(port, &end, &pv) != 0 || *end != '\0')
        return tg_err_set(err, TG_E_INVALID,
                          "the listen address '%s' needs a port from 1 to 65535 after the ':'", s);
    struct addrinfo hints = {.ai_family = v6 ? AF_INET6 : AF_INET,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    if (host[0] == '\0' || getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL)
        return tg_err_set(err, TG_E_INVALID,
                          "'%s' in the listen address is not a numeric %s address (host names "
                          "are not looked up)",
                          host, v6 ? "IPv6" : "IPv4");
    char h[NI_MAXHOST], sv[NI_MAXSERV];
    int rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, h, sizeof(h), sv, sizeof(sv),
                         NI_NUMERICHOST | NI_NUMERICSERV);
    freeaddrinfo(ai);
    if (rc != 0) return tg_err_set(err, TG_E_INTERNAL, "cannot print the listen address '%s'", s);
    int w = snprintf(out, outsize, v6 ? "[%s]:%s" : "%s:%s", h, sv);
    if (w < 0 || (size_t)w >= outsize)
        return tg_err_set(err, TG_E_INVALID, "the listen address '%s' is too long", s);
    return 0;
}
