/*
 * policy.c — a client proxy's decryption policy as the flows consult it (SPEC I5).
 *
 * Built with the proxy (conf.c) from the policy's runtime document: never-decrypt
 * domains in a set looked up by the host name and each of its parents (an exact entry
 * "a.b.c", or "*.b.c" for anything below b.c), so a lookup costs a few hash probes
 * whatever the list's length (10,000 at most); source networks as parsed CIDRs. The
 * domain-to-category map is one per service (catmap: up to 1,000,000 mappings, reloaded
 * only when the store's map changed) and shared by the proxies' builds by reference.
 *
 * Order (README, "Client inspection"): an always-decrypt source wins over everything in
 * the policy; a never-decrypt source passes the flow through before its ClientHello is
 * read; then the SNI decides for never-decrypt domains and categories, and a flow without
 * SNI that is decrypted anyway is checked by the upstream certificate's names.
 */
#include "proxy_int.h"

#include <netinet/in.h>
#include <openssl/lhash.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct dentry {
    char *domain;         /* as stored: "a.b.c" or "*.b.c" */
    const char *category; /* catmap only: interned in the map */
} dentry;

DEFINE_LHASH_OF(dentry);

static unsigned long dentry_hash(const dentry *e)
{
    return OPENSSL_LH_strhash(e->domain);
}

static int dentry_cmp(const dentry *a, const dentry *b)
{
    return strcmp(a->domain, b->domain);
}

static void dentry_free(dentry *e)
{
    free(e->domain);
    free(e);
}

static LHASH_OF(dentry) * set_new(void)
{
    return lh_dentry_new(dentry_hash, dentry_cmp);
}

static void set_free(LHASH_OF(dentry) * h)
{
    if (h == NULL) return;
    lh_dentry_doall(h, dentry_free);
    lh_dentry_free(h);
}

static int set_add(LHASH_OF(dentry) * h, const char *domain, const char *category)
{
    dentry *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->domain = strdup(domain)) == NULL) {
        free(e);
        return -1;
    }
    e->category = category;
    dentry *old = lh_dentry_insert(h, e);
    if (old != NULL)
        dentry_free(old); /* replaced: the later mapping wins */
    else if (lh_dentry_error(h)) {
        dentry_free(e);
        return -1;
    }
    return 0;
}

/* The entry covering host: host itself, else "*." + the nearest parent that has one. */
static const dentry *set_find(LHASH_OF(dentry) * h, const char *host)
{
    if (h == NULL || host == NULL || host[0] == '\0') return NULL;
    char buf[260];
    size_t n = strlen(host);
    if (n >= 254) return NULL;
    for (size_t i = 0; i < n; i++) /* SNI is case-insensitive; the lists are lower-case */
        buf[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] + 32 : host[i]);
    buf[n] = '\0';
    dentry key = {.domain = buf};
    const dentry *e = lh_dentry_retrieve(h, &key);
    if (e != NULL) return e;
    char wild[262];
    for (const char *dot = strchr(buf, '.'); dot != NULL; dot = strchr(dot + 1, '.')) {
        snprintf(wild, sizeof(wild), "*%s", dot); /* "*.b.c" for a.b.c */
        key.domain = wild;
        if ((e = lh_dentry_retrieve(h, &key)) != NULL) return e;
    }
    return NULL;
}

/* ---- the category map ---- */

struct catmap {
    atomic_int refs;
    LHASH_OF(dentry) * map;
    char **cats; /* interned category names */
    size_t ncats, capcats;
    long long stamp;
};

static const char *intern(catmap *m, const char *cat)
{
    for (size_t i = 0; i < m->ncats; i++)
        if (strcmp(m->cats[i], cat) == 0) return m->cats[i];
    if (m->ncats == m->capcats) {
        size_t cap = m->capcats ? 2 * m->capcats : 16;
        char **v = realloc(m->cats, cap * sizeof(*v));
        if (v == NULL) return NULL;
        m->cats = v;
        m->capcats = cap;
    }
    char *c = strdup(cat);
    if (c == NULL) return NULL;
    m->cats[m->ncats++] = c;
    return c;
}

static int cat_add(void *arg, const char *domain, const char *category)
{
    catmap *m = arg;
    const char *c = intern(m, category);
    return c == NULL || set_add(m->map, domain, c) != 0 ? -1 : 0;
}

int catmap_load(tg_keyring *kr, long long stamp, catmap **out, tg_err *err)
{
    *out = NULL;
    catmap *m = calloc(1, sizeof(*m));
    if (m == NULL || (m->map = set_new()) == NULL) {
        free(m);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    atomic_init(&m->refs, 1);
    m->stamp = stamp;
    int rc = tg_keyring_categories_each(kr, cat_add, m, err);
    if (rc < 0 && err->code == 0) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc != 0) {
        catmap_unref(m);
        return rc;
    }
    *out = m;
    return 0;
}

long long catmap_stamp(const catmap *m)
{
    return m ? m->stamp : -1;
}

void catmap_ref(catmap *m)
{
    if (m) atomic_fetch_add(&m->refs, 1);
}

void catmap_unref(catmap *m)
{
    if (m == NULL || atomic_fetch_sub(&m->refs, 1) != 1) return;
    set_free(m->map);
    for (size_t i = 0; i < m->ncats; i++)
        free(m->cats[i]);
    free(m->cats);
    free(m);
}

/* ---- a policy ---- */

struct policy {
    char name[136];
    LHASH_OF(dentry) * never_domains;
    char **never_categories;
    size_t ncategories;
    tg_cidr *never_sources, *always_sources;
    size_t nnever, nalways;
    catmap *cats;
};

void policy_free(policy *p)
{
    if (p == NULL) return;
    set_free(p->never_domains);
    for (size_t i = 0; i < p->ncategories; i++)
        free(p->never_categories[i]);
    free(p->never_categories);
    free(p->never_sources);
    free(p->always_sources);
    catmap_unref(p->cats);
    free(p);
}

int cidr_list(json_t *list, tg_cidr **out, size_t *n, tg_err *err)
{
    *n = 0;
    *out = calloc(json_array_size(list) + 1, sizeof(**out));
    if (*out == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        tg_err e = {0};
        if (json_is_string(v) && tg_cidr_parse(json_string_value(v), &(*out)[*n], &e) == 0) (*n)++;
    }
    return 0;
}

int policy_build(json_t *doc, catmap *cats, policy **out, tg_err *err)
{
    *out = NULL;
    if (doc == NULL) return 0;
    policy *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->never_domains = set_new()) == NULL) {
        free(p);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    const char *name = json_string_value(json_object_get(doc, "name"));
    snprintf(p->name, sizeof(p->name), "%s", name ? name : "?");
    int rc = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(doc, "never_domains"), i, v)
    {
        if (rc == 0 && json_is_string(v) && set_add(p->never_domains, json_string_value(v), NULL))
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    json_t *cl = json_object_get(doc, "never_categories");
    p->never_categories = calloc(json_array_size(cl) + 1, sizeof(char *));
    if (p->never_categories == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    json_array_foreach(cl, i, v)
    {
        if (rc == 0 && json_is_string(v)) {
            if ((p->never_categories[p->ncategories] = strdup(json_string_value(v))) == NULL)
                rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
            else
                p->ncategories++;
        }
    }
    if (rc == 0)
        rc = cidr_list(json_object_get(doc, "never_sources"), &p->never_sources, &p->nnever, err);
    if (rc == 0)
        rc =
            cidr_list(json_object_get(doc, "always_sources"), &p->always_sources, &p->nalways, err);
    if (rc == 0 && p->ncategories > 0) {
        catmap_ref(cats);
        p->cats = cats;
    }
    if (rc != 0) {
        policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

const char *policy_name(const policy *p)
{
    return p->name;
}

static int addr_of(const struct sockaddr_storage *ss, int *family, unsigned char addr[16])
{
    if (ss->ss_family == AF_INET) {
        *family = AF_INET;
        memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        return 1;
    }
    if (ss->ss_family == AF_INET6) {
        const unsigned char *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) { /* an IPv4 client on a dual-stack listener */
            *family = AF_INET;
            memcpy(addr, a + 12, 4);
        } else {
            *family = AF_INET6;
            memcpy(addr, a, 16);
        }
        return 1;
    }
    return 0;
}

int cidr_find(const tg_cidr *v, size_t n, const struct sockaddr_storage *peer, char *which,
              size_t size)
{
    int family;
    unsigned char addr[16];
    if (!addr_of(peer, &family, addr)) return 0;
    for (size_t i = 0; i < n; i++)
        if (tg_cidr_contains(&v[i], family, addr)) {
            tg_cidr_format(&v[i], which, size);
            return 1;
        }
    return 0;
}

int policy_source(const policy *p, const struct sockaddr_storage *peer, char *why, size_t size)
{
    char net[TG_CIDR_TEXT_MAX];
    if (p == NULL) return POLICY_NONE;
    if (cidr_find(p->always_sources, p->nalways, peer, net, sizeof(net))) {
        snprintf(why, size, "policy %s: always-decrypt source %s", p->name, net);
        return POLICY_ALWAYS;
    }
    if (cidr_find(p->never_sources, p->nnever, peer, net, sizeof(net))) {
        snprintf(why, size, "policy %s: never-decrypt source %s", p->name, net);
        return POLICY_NEVER;
    }
    return POLICY_NONE;
}

int policy_host(const policy *p, const char *host, char *why, size_t size)
{
    if (p == NULL || host == NULL || host[0] == '\0') return 0;
    const dentry *e = set_find(p->never_domains, host);
    if (e != NULL) {
        snprintf(why, size, "policy %s: never-decrypt domain %s", p->name, e->domain);
        return 1;
    }
    if (p->cats != NULL && (e = set_find(p->cats->map, host)) != NULL)
        for (size_t i = 0; i < p->ncategories; i++)
            if (strcmp(p->never_categories[i], e->category) == 0) {
                snprintf(why, size, "policy %s: never-decrypt category %s (%s)", p->name,
                         e->category, e->domain);
                return 1;
            }
    return 0;
}
