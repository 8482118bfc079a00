/*
 * categories.c — the domain-to-category map (SPEC I4: policies never decrypt whole
 * categories, such as finance or health): import, list, lookup, clear, and the stream the
 * engine builds its own lookup from.
 *
 * One category per domain; a domain is a host name or "*.name" (tg_domain_parse), so a
 * lookup is the name's own mapping first, then its nearest "*." parent's. An import is
 * one transaction however large (up to TG_CATEGORY_LINES_MAX lines and
 * TG_CATEGORY_FILE_MAX bytes, both checked before anything is stored): the first bad line
 * refuses the whole file, naming the line. The setting "categories_stamp" changes with
 * every change of the map, so that a reader reloads a large map only when it moved.
 */
#include "keyring_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAMP "categories_stamp"

/* A new stamp for the map (inside the caller's transaction): random, so that it never
 * comes back to a value a reader saw before a factory reset removed it. */
static int stamp(tg_keyring *kr, tg_err *err)
{
    uint64_t r = 0;
    int rc = tg_random(&r, sizeof(r), err);
    char v[32];
    snprintf(v, sizeof(v), "%llu", (unsigned long long)(r >> 1 | 1)); /* positive, not 0 */
    return rc != 0 ? rc : tg_store_setting_set(kr->st, STAMP, v, err);
}

long long tg_keyring_categories_stamp(tg_keyring *kr)
{
    char v[32];
    if (tg_store_setting_get(kr->st, STAMP, v, sizeof(v), NULL) != 0) return 0;
    return strtoll(v, NULL, 10);
}

typedef struct importctx {
    tg_keyring *kr;
    size_t mappings;
} importctx;

static int import_line(size_t line, char **f, int n, void *arg, tg_err *err)
{
    importctx *x = arg;
    char domain[TG_DOMAIN_MAX + 1], category[TG_CATEGORY_MAX + 1];
    tg_err why = {0};
    if (n != 2)
        return tg_err_set(err, TG_E_INVALID,
                          "line %zu of the category file has %s; write DOMAIN CATEGORY (e.g. "
                          "bank.example finance)",
                          line, n == 1 ? "one field" : "more than 2 fields");
    if (tg_domain_parse(f[0], domain, sizeof(domain), &why) != 0 ||
        tg_category_parse(f[1], category, sizeof(category), &why) != 0)
        return tg_err_set(err, why.code, "line %zu of the category file: %s", line, why.msg);
    x->mappings++;
    return tg_store_category_put(x->kr->st, domain, category, err);
}

int tg_keyring_categories_import(tg_keyring *kr, const char *data, size_t len, int replace,
                                 json_t **out, tg_err *err)
{
    *out = NULL;
    if (len > TG_CATEGORY_FILE_MAX)
        return tg_err_set(err, TG_E_INVALID, "the category file is larger than %u MiB, the limit",
                          TG_CATEGORY_FILE_MAX >> 20);
    size_t lines = 0;
    for (const char *p = data, *end = data + len; p < end; lines++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    importctx x = {kr, 0};
    if (replace) rc = tg_store_categories_clear(kr->st, NULL, err);
    if (rc == 0)
        rc = kr_lines_each(data, len, TG_CATEGORY_LINES_MAX, "category file", import_line, &x, err);
    long long total = rc == 0 ? tg_store_categories_count(kr->st) : 0;
    if (rc == 0 && total > TG_CATEGORY_LINES_MAX)
        rc = tg_err_fset(err, TG_E_INVALID, "replace",
                         "the category map would hold %lld domains; the limit is %d (replace the "
                         "map instead of adding to it)",
                         total, TG_CATEGORY_LINES_MAX);
    if (rc == 0) rc = stamp(kr, err);
    if ((rc = kr_finish(kr, rc, err)) != 0) return rc;
    *out = json_pack("{s:I, s:I, s:I, s:b}", "lines", (json_int_t)lines, "mappings",
                     (json_int_t)x.mappings, "domain_count", (json_int_t)total, "replaced",
                     replace != 0);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

static int add_count(const char *name, long long n, void *arg)
{
    json_t *row = json_pack("{s:s, s:I}", "category", name, "domain_count", (json_int_t)n);
    return row && json_array_append_new(arg, row) == 0 ? 0 : TG_E_INTERNAL;
}

int tg_keyring_categories_list(tg_keyring *kr, json_t **out, tg_err *err)
{
    *out = json_array();
    if (*out == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = tg_store_category_counts(kr->st, add_count, *out, err);
    if (rc == TG_E_INTERNAL) tg_err_set(err, rc, "out of memory");
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int tg_keyring_category_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err)
{
    *out = NULL;
    char host[TG_DOMAIN_MAX + 1], key[TG_DOMAIN_MAX + 3], category[TG_CATEGORY_MAX + 1];
    int rc = tg_domain_parse(name, host, sizeof(host), err);
    if (rc != 0) return rc;
    /* its own mapping, then each "*." parent from the nearest: a.b.example.com tries
     * *.b.example.com, then *.example.com (a "*." of one label is never stored) */
    snprintf(key, sizeof(key), "%s", host);
    const char *p = strncmp(host, "*.", 2) == 0 ? host + 2 : host;
    for (;;) {
        rc = tg_store_category_get(kr->st, key, category, sizeof(category), err);
        if (rc != TG_E_NOTFOUND) break;
        const char *dot = strchr(p, '.');
        if (dot == NULL || strchr(dot + 1, '.') == NULL) break;
        p = dot + 1;
        snprintf(key, sizeof(key), "*.%s", p);
    }
    if (rc != 0 && rc != TG_E_NOTFOUND) return rc;
    int found = rc == 0;
    *out = json_pack("{s:s, s:s?, s:s?}", "name", host, "category", found ? category : NULL,
                     "matched", found ? key : NULL);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

int tg_keyring_categories_clear(tg_keyring *kr, json_t **out, tg_err *err)
{
    *out = NULL;
    long long removed = 0;
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    rc = tg_store_categories_clear(kr->st, &removed, err);
    if (rc == 0) rc = stamp(kr, err);
    if ((rc = kr_finish(kr, rc, err)) != 0) return rc;
    *out = json_pack("{s:I}", "removed", (json_int_t)removed);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

typedef struct eachctx {
    int (*fn)(void *arg, const char *domain, const char *category);
    void *arg;
} eachctx;

static int each_pair(const char *domain, const char *category, void *arg)
{
    eachctx *e = arg;
    return e->fn(e->arg, domain, category);
}

int tg_keyring_categories_each(tg_keyring *kr,
                               int (*fn)(void *arg, const char *domain, const char *category),
                               void *arg, tg_err *err)
{
    eachctx e = {fn, arg};
    return tg_store_categories_each(kr->st, each_pair, &e, err);
}
