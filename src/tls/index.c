/*
 * index.c — the SNI name index (SPEC S1, S3).
 *
 * One sorted array of (name, certificate) pairs, names lower-case in one arena, looked
 * up with bsearch: compact enough for hundreds of thousands of certificates and built
 * from stored metadata only. Names are the DNS SANs that are host names (LDH labels, a
 * leftmost "*" label), or the CN when there are no DNS SANs at all.
 * A wildcard "*.example.com" is stored as is and covers exactly one label.
 *
 * Choice among several certificates for a name: a currently valid one before an
 * expired or not-yet-valid one; then the key type the client can use (ECDSA preferred
 * when it can); then the latest expiry.
 */
#include "tls_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct icert {
    int64_t id;
    long long nb, na;
    int ecdsa;
} icert;

typedef struct iname {
    uint32_t off;  /* into the arena */
    uint32_t cert; /* index into certs */
} iname;

struct tg_index {
    icert *certs;
    size_t ncerts, capcerts;
    iname *names;
    size_t nnames, capnames;
    char *arena;
    size_t arenalen, arenacap;
    int64_t default_id;
    int failed;
};

static int add_name(tg_index *x, const char *name, size_t len, uint32_t cert)
{
    if (len == 0 || len > 253) return 0;
    if (x->arenalen + len + 1 > x->arenacap) {
        size_t cap = x->arenacap ? x->arenacap * 2 : 1 << 16;
        while (cap < x->arenalen + len + 1)
            cap *= 2;
        char *a = realloc(x->arena, cap);
        if (a == NULL) return -1;
        x->arena = a;
        x->arenacap = cap;
    }
    if (tg_grow(&x->names, &x->capnames, x->nnames, sizeof(*x->names), 1024) != 0) return -1;
    char *dst = x->arena + x->arenalen;
    for (size_t i = 0; i < len; i++)
        dst[i] = (char)tolower((unsigned char)name[i]);
    dst[len] = '\0';
    x->names[x->nnames++] = (iname){(uint32_t)x->arenalen, cert};
    x->arenalen += len + 1;
    return 0;
}

static int collect(const tg_servable *s, void *arg)
{
    tg_index *x = arg;
    if (tg_grow(&x->certs, &x->capcerts, x->ncerts, sizeof(*x->certs), 1024) != 0)
        return x->failed = 1;
    uint32_t ci = (uint32_t)x->ncerts;
    x->certs[x->ncerts++] = (icert){s->id, s->not_before, s->not_after, s->ecdsa};
    /* Any dNSName, well-formed or not, means the CN is not a name (RFC 6125 6.4.4); only
     * host names are indexed, so "a, DNS:b" or "b\0.evil" never stand for b. */
    int dns = 0;
    for (size_t i = 0; i < s->nsans; i++) {
        if (s->sans[i].type != TG_SAN_DNS) continue;
        dns = 1;
        const char *v = s->sans[i].value;
        if (tg_san_host_name(v) && add_name(x, v, strlen(v), ci) != 0) x->failed = 1;
    }
    if (!dns && s->cn[0] && tg_dns_name_valid(s->cn, 1) &&
        add_name(x, s->cn, strlen(s->cn), ci) != 0)
        x->failed = 1;
    return x->failed;
}

static int by_name(const void *a, const void *b, void *arena_arg)
{
    const char *arena = arena_arg;
    const iname *x = a, *y = b;
    int c = strcmp(arena + x->off, arena + y->off);
    return c ? c : (x->cert > y->cert) - (x->cert < y->cert);
}

tg_index *tg_index_new(void)
{
    return calloc(1, sizeof(tg_index));
}

int tg_index_add(tg_index *x, const tg_servable *s)
{
    collect(s, x);
    return x->failed ? -1 : 0;
}

void tg_index_done(tg_index *x, int64_t default_id)
{
    x->default_id = default_id;
    if (x->nnames) qsort_r(x->names, x->nnames, sizeof(*x->names), by_name, x->arena);
}

int tg_index_build(tg_keyring *kr, tg_index **out, tg_err *err)
{
    *out = NULL;
    tg_index *x = tg_index_new();
    if (x == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int64_t def = 0;
    int rc = tg_keyring_servables(kr, collect, x, &def, err);
    if (rc == 0 && x->failed) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc != 0) {
        tg_index_free(x);
        return rc;
    }
    tg_index_done(x, def);
    *out = x;
    return 0;
}

void tg_index_free(tg_index *x)
{
    if (x == NULL) return;
    free(x->certs);
    free(x->names);
    free(x->arena);
    free(x);
}

size_t tg_index_size(const tg_index *x, size_t *names)
{
    if (names) *names = x->nnames;
    return x->ncerts;
}

size_t tg_index_names_for(const tg_index *x, int64_t id)
{
    size_t n = 0;
    for (size_t ci = 0; ci < x->ncerts; ci++) {
        if (x->certs[ci].id != id) continue;
        for (size_t i = 0; i < x->nnames; i++)
            n += x->names[i].cert == (uint32_t)ci;
    }
    return n;
}

int64_t tg_index_default(const tg_index *x)
{
    return x->default_id;
}

/* First position whose name is >= key (lower bound). */
static size_t lower_bound(const tg_index *x, const char *key)
{
    size_t lo = 0, hi = x->nnames;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(x->arena + x->names[mid].off, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int better(const icert *a, const icert *b, int ecdsa_ok, long long now)
{
    int va = a->nb <= now && now < a->na, vb = b->nb <= now && now < b->na;
    if (va != vb) return va > vb;
    int ka = a->ecdsa == ecdsa_ok, kb = b->ecdsa == ecdsa_ok;
    if (!ecdsa_ok) ka = !a->ecdsa, kb = !b->ecdsa;
    if (ka != kb) return ka > kb;
    return a->na > b->na;
}

/* Best certificate for exactly this index key, or NULL. */
static const icert *best(const tg_index *x, const char *key, int ecdsa_ok, long long now)
{
    const icert *pick = NULL;
    for (size_t i = lower_bound(x, key);
         i < x->nnames && strcmp(x->arena + x->names[i].off, key) == 0; i++) {
        const icert *c = &x->certs[x->names[i].cert];
        if (pick == NULL || better(c, pick, ecdsa_ok, now)) pick = c;
    }
    return pick;
}

static int valid(const icert *c, long long now)
{
    return c->nb <= now && now < c->na;
}

int64_t tg_index_pick(const tg_index *x, const char *sni, int ecdsa_ok, long long now, int *how)
{
    *how = TG_PICK_NONE;
    char key[256];
    size_t n = sni ? strlen(sni) : 0;
    while (n > 0 && sni[n - 1] == '.')
        n--; /* an absolute name matches the same certificates */
    if (n > 0 && n < 254) {
        for (size_t i = 0; i < n; i++)
            key[i] = (char)tolower((unsigned char)sni[i]);
        key[n] = '\0';
        const icert *exact = best(x, key, ecdsa_ok, now), *wild = NULL;
        const char *dot = strchr(key, '.');
        if ((exact == NULL || !valid(exact, now)) && dot != NULL && dot != key &&
            strchr(dot + 1, '.') != NULL) {
            char wkey[258];
            snprintf(wkey, sizeof(wkey), "*%s", dot);
            wild = best(x, wkey, ecdsa_ok, now);
        }
        if (exact != NULL && (valid(exact, now) || wild == NULL || !valid(wild, now))) {
            *how = TG_PICK_EXACT;
            return exact->id;
        }
        if (wild != NULL) {
            *how = TG_PICK_WILDCARD;
            return wild->id;
        }
    }
    if (x->default_id != 0) *how = TG_PICK_DEFAULT;
    return x->default_id;
}
