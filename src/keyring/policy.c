/*
 * policy.c — decryption policies (issue 9, item 5): create, set, show, list, delete,
 * export and import, each one transaction; and a policy as the engine runs it.
 *
 * A policy is a name, a description, whether it includes the default never-decrypt list
 * (defaults.c), and four lists: never-decrypt domains, never-decrypt categories,
 * never-decrypt source networks and always-decrypt source networks. Every value is
 * parsed into its canonical form (policy_text.c) before the transaction, so the store
 * holds each entry once however it was spelled. Checked in the transaction, on the
 * result of the whole operation: the limits (TG_POLICY_*_MAX), no source in both source
 * lists, names unique among policies and proxies together. A client proxy names at most
 * one policy (proxies.policy_id); a policy in use cannot be deleted.
 */
#include "keyring_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const lists[TG_POLICY_LISTS] = TG_POLICY_LIST_NAMES;
/* How a list is named in a sentence. */
static const char *const list_words[TG_POLICY_LISTS] = {
    "never-decrypt domains", "never-decrypt categories", "never-decrypt sources",
    "always-decrypt sources"};
static const char *const count_keys[TG_POLICY_LISTS] = {
    "never_domain_count", "never_category_count", "never_source_count", "always_source_count"};

/* ---- values ---- */

/* The canonical form of value for list k into out. */
static int canon(int k, const char *value, char *out, size_t size, tg_err *err)
{
    if (k == TG_NEVER_DOMAINS) return tg_domain_parse(value, out, size, err);
    if (k == TG_NEVER_CATEGORIES) return tg_category_parse(value, out, size, err);
    tg_cidr c;
    int rc = tg_cidr_parse(value, &c, err);
    if (rc == 0) tg_cidr_format(&c, out, size);
    return rc;
}

/* Values given for the lists, in canonical form, owned. */
typedef struct canonset {
    char **v[TG_POLICY_LISTS];
    size_t n[TG_POLICY_LISTS];
} canonset;

static void canonset_free(canonset *s)
{
    for (int k = 0; k < TG_POLICY_LISTS; k++) {
        for (size_t i = 0; i < s->n[k]; i++)
            free(s->v[k][i]);
        free(s->v[k]);
    }
    memset(s, 0, sizeof(*s));
}

static const size_t list_max[TG_POLICY_LISTS] = {TG_POLICY_DOMAINS_MAX, TG_POLICY_CATEGORIES_MAX,
                                                 TG_POLICY_SOURCES_MAX, TG_POLICY_SOURCES_MAX};

/* Parses what o gives (add or remove) into s; more values than a list may hold are
 * refused before they are parsed. */
static int canonset_fill(canonset *s, const tg_textlist *given, tg_err *err)
{
    memset(s, 0, sizeof(*s));
    for (int k = 0; k < TG_POLICY_LISTS; k++) {
        if (given[k].n == 0) continue;
        if (given[k].n > list_max[k])
            return tg_err_set(err, TG_E_INVALID, "%zu %s given; a policy holds at most %zu",
                              given[k].n, list_words[k], list_max[k]);
        if ((s->v[k] = calloc(given[k].n, sizeof(char *))) == NULL)
            return tg_err_set(err, TG_E_INTERNAL, "out of memory");
        for (size_t i = 0; i < given[k].n; i++) {
            char buf[TG_DOMAIN_MAX + 1];
            int rc = canon(k, given[k].v[i], buf, sizeof(buf), err);
            if (rc != 0) return rc;
            if ((s->v[k][s->n[k]++] = tg_strdup(buf)) == NULL)
                return tg_err_set(err, TG_E_INTERNAL, "out of memory");
        }
    }
    return 0;
}

/* ---- documents ---- */

static int append(const char *value, void *arg)
{
    return json_array_append_new(arg, json_string(value)) == 0 ? 0 : TG_E_INTERNAL;
}

/* The four lists into doc under their names. */
static int lists_into(tg_keyring *kr, int64_t id, json_t *doc, tg_err *err)
{
    for (int k = 0; k < TG_POLICY_LISTS; k++) {
        json_t *a = json_array();
        int rc =
            a ? tg_store_policy_entries_each(kr->st, id, lists[k], append, a, err) : TG_E_INTERNAL;
        if (rc == 0 && json_object_set_new(doc, lists[k], a) != 0)
            rc = TG_E_INTERNAL;
        else if (rc != 0)
            json_decref(a);
        if (rc == TG_E_INTERNAL) return tg_err_set(err, rc, "out of memory");
        if (rc != 0) return rc;
    }
    return 0;
}

typedef struct usectx {
    int64_t id;
    json_t *names;
} usectx;

static int add_user(const tg_store_proxy *p, void *arg)
{
    usectx *u = arg;
    if (p->policy_id == u->id) json_array_append_new(u->names, kr_json_text(p->name));
    return 0;
}

/* The proxies that use policy id, by name. */
static json_t *used_by(tg_keyring *kr, int64_t id, tg_err *err)
{
    usectx u = {id, json_array()};
    if (u.names == NULL || tg_store_proxy_each(kr->st, NULL, add_user, &u, err) != 0) {
        json_decref(u.names);
        return NULL;
    }
    return u.names;
}

static int policy_doc(tg_keyring *kr, const tg_store_policy *p, json_t **out, tg_err *err)
{
    json_t *doc = json_pack("{s:o, s:o, s:b}", "name", kr_json_text(p->name), "description",
                            kr_json_opt(p->description), "no_defaults", p->no_defaults);
    if (doc == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = lists_into(kr, p->id, doc, err);
    json_t *users = rc == 0 ? used_by(kr, p->id, err) : NULL;
    if (rc == 0 && users == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0 && (json_object_set_new(doc, "used_by", users) != 0 ||
                    kr_json_time(doc, "created", p->created) != 0 ||
                    kr_json_time(doc, "updated", p->updated) != 0))
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

static int policy_get(tg_keyring *kr, const char *name, tg_store_policy *p, tg_err *err)
{
    int rc = tg_store_policy_by_name(kr->st, name, p, err);
    if (rc == TG_E_NOTFOUND)
        return tg_err_set(err, TG_E_NOTFOUND,
                          "no policy is named '%s' (the list of policies shows them)", name);
    return rc;
}

/* ---- the checks of one transaction ---- */

/* A new policy's name: the rule, and free among policies and proxies. */
static int name_free(tg_keyring *kr, const char *name, tg_err *err)
{
    tg_store_policy p;
    tg_store_proxy x;
    if (tg_store_policy_by_name(kr->st, name, &p, NULL) == 0) {
        tg_store_policy_clear(&p);
        return tg_err_set(err, TG_E_CONFLICT,
                          "a policy named '%s' already exists; choose another name", name);
    }
    if (tg_store_proxy_by_name(kr->st, name, &x, NULL) == 0) {
        int rc = tg_err_set(err, TG_E_CONFLICT,
                            "'%s' is the name of a %s proxy, and policies and proxies are named "
                            "apart; choose another name",
                            name, x.kind);
        tg_store_proxy_clear(&x);
        return rc;
    }
    return 0;
}

/* The limits and the source rule, on the policy as the transaction leaves it. */
static int result_check(tg_keyring *kr, int64_t id, const char *name, tg_err *err)
{
    long long n[TG_POLICY_LISTS];
    for (int k = 0; k < TG_POLICY_LISTS; k++) {
        int rc = tg_store_policy_entry_count(kr->st, id, lists[k], &n[k], err);
        if (rc != 0) return rc;
    }
    for (int k = 0; k < TG_NEVER_SOURCES; k++)
        if ((size_t)n[k] > list_max[k])
            return tg_err_set(err, TG_E_INVALID, "policy '%s' would hold %lld %s; the limit is %zu",
                              name, n[k], list_words[k], list_max[k]);
    if ((size_t)(n[TG_NEVER_SOURCES] + n[TG_ALWAYS_SOURCES]) > TG_POLICY_SOURCES_MAX)
        return tg_err_set(err, TG_E_INVALID,
                          "policy '%s' would hold %lld source networks (never and always "
                          "together); the limit is %d",
                          name, n[TG_NEVER_SOURCES] + n[TG_ALWAYS_SOURCES], TG_POLICY_SOURCES_MAX);
    char both[TG_CIDR_TEXT_MAX];
    if (tg_store_policy_entry_shared(kr->st, id, lists[TG_NEVER_SOURCES], lists[TG_ALWAYS_SOURCES],
                                     both, sizeof(both)))
        return tg_err_set(err, TG_E_INVALID,
                          "%s would be both a never-decrypt and an always-decrypt source of "
                          "policy '%s'; a source belongs to one list only",
                          both, name);
    return 0;
}

static int add_all(tg_keyring *kr, int64_t id, const canonset *s, tg_err *err)
{
    for (int k = 0; k < TG_POLICY_LISTS; k++)
        for (size_t i = 0; i < s->n[k]; i++) {
            int rc = tg_store_policy_entry_add(kr->st, id, lists[k], s->v[k][i], NULL, err);
            if (rc != 0) return rc;
        }
    return 0;
}

static int show_after(tg_keyring *kr, int rc, const char *name, json_t **out, tg_err *err)
{
    if ((rc = kr_finish(kr, rc, err)) != 0) return rc;
    return tg_keyring_policy_show(kr, name, out, err);
}

/* ---- operations ---- */

/* Everything create (and import) can check before the store is asked, but the name. */
static int new_values(const tg_policy_opts *o, canonset *s, tg_err *err)
{
    int rc = o->description != NULL ? kr_description_check(o->description, err) : 0;
    for (int k = 0; rc == 0 && k < TG_POLICY_LISTS; k++)
        if (o->remove[k].n > 0)
            rc = tg_err_set(err, TG_E_USAGE, "a new policy has nothing to remove");
    if (rc == 0) rc = canonset_fill(s, o->add, err);
    return rc;
}

/* A policy's name: the rules of proxies' names, and not "defaults", the default list's
 * own name (policy defaults …; /api/v1/policies/defaults). */
static int policy_name_check(const char *name, tg_err *err)
{
    int rc = kr_conf_name_check("policy", name, err);
    if (rc == 0 && strcasecmp(name, "defaults") == 0)
        rc = tg_err_fset(err, TG_E_INVALID, "name",
                         "'defaults' names the default never-decrypt list; choose another name "
                         "for a policy");
    return rc;
}

static int new_prepare(const char *name, const tg_policy_opts *o, canonset *s, tg_err *err)
{
    int rc = policy_name_check(name, err);
    return rc != 0 ? rc : new_values(o, s, err);
}

int tg_keyring_policy_create(tg_keyring *kr, const char *name, const tg_policy_opts *o,
                             json_t **out, tg_err *err)
{
    *out = NULL;
    canonset s = {0};
    int rc = new_prepare(name, o, &s, err);
    if (rc == 0) rc = tg_store_begin(kr->st, err);
    if (rc != 0) {
        canonset_free(&s);
        return rc;
    }
    tg_store_policy p = {.name = (char *)name,
                         .description = (char *)o->description,
                         .no_defaults = o->no_defaults == 1};
    if ((rc = name_free(kr, name, err)) == 0 && (rc = tg_store_policy_add(kr->st, &p, err)) == 0 &&
        (rc = add_all(kr, p.id, &s, err)) == 0)
        rc = result_check(kr, p.id, name, err);
    canonset_free(&s);
    return show_after(kr, rc, name, out, err);
}

static int remove_all(tg_keyring *kr, const tg_store_policy *p, const canonset *s, tg_err *err)
{
    for (int k = 0; k < TG_POLICY_LISTS; k++)
        for (size_t i = 0; i < s->n[k]; i++) {
            int rc = tg_store_policy_entry_remove(kr->st, p->id, lists[k], s->v[k][i], err);
            if (rc == TG_E_NOTFOUND)
                return tg_err_set(err, TG_E_NOTFOUND,
                                  "'%s' is not among the %s of policy '%s' (the policy's "
                                  "document lists them)",
                                  s->v[k][i], list_words[k], p->name);
            if (rc != 0) return rc;
        }
    return 0;
}

int tg_keyring_policy_set(tg_keyring *kr, const char *name, const tg_policy_opts *o, json_t **out,
                          tg_err *err)
{
    *out = NULL;
    int given = o->description != NULL || o->no_defaults != TG_UNSET;
    for (int k = 0; k < TG_POLICY_LISTS; k++)
        given |= o->add[k].n > 0 || o->remove[k].n > 0;
    if (!given)
        return tg_err_set(err, TG_E_USAGE, "nothing to change: give the settings to change");
    canonset add = {0}, del = {0};
    int rc = o->description ? kr_description_check(o->description, err) : 0;
    if (rc == 0) rc = canonset_fill(&add, o->add, err);
    if (rc == 0) rc = canonset_fill(&del, o->remove, err);
    if (rc == 0) rc = tg_store_begin(kr->st, err);
    if (rc != 0) {
        canonset_free(&add);
        canonset_free(&del);
        return rc;
    }
    tg_store_policy p = {0};
    if ((rc = policy_get(kr, name, &p, err)) == 0) {
        if (o->description != NULL) {
            free(p.description);
            if ((p.description = tg_strdup(o->description)) == NULL)
                rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        }
        if (o->no_defaults != TG_UNSET) p.no_defaults = o->no_defaults == 1;
    }
    if (rc == 0 && (rc = remove_all(kr, &p, &del, err)) == 0 &&
        (rc = add_all(kr, p.id, &add, err)) == 0 && (rc = result_check(kr, p.id, name, err)) == 0)
        rc = tg_store_policy_update(kr->st, &p, err);
    tg_store_policy_clear(&p);
    canonset_free(&add);
    canonset_free(&del);
    return show_after(kr, rc, name, out, err);
}

int tg_keyring_policy_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err)
{
    *out = NULL;
    tg_store_policy p;
    int rc = policy_get(kr, name, &p, err);
    if (rc != 0) return rc;
    rc = policy_doc(kr, &p, out, err);
    tg_store_policy_clear(&p);
    return rc;
}

typedef struct listctx {
    tg_keyring *kr;
    json_t *rows;
    tg_err *err;
    int rc;
} listctx;

static int add_row(const tg_store_policy *p, void *arg)
{
    listctx *l = arg;
    json_t *row = json_pack("{s:o, s:o, s:b}", "name", kr_json_text(p->name), "description",
                            kr_json_opt(p->description), "no_defaults", p->no_defaults);
    for (int k = 0; row != NULL && l->rc == 0 && k < TG_POLICY_LISTS; k++) {
        long long n = 0;
        if ((l->rc = tg_store_policy_entry_count(l->kr->st, p->id, lists[k], &n, l->err)) == 0)
            json_object_set_new(row, count_keys[k], json_integer(n));
    }
    json_t *users = l->rc == 0 ? used_by(l->kr, p->id, l->err) : NULL;
    if (row != NULL && users != NULL && l->rc == 0) {
        json_object_set_new(row, "used_by", users);
        users = NULL;
        if (kr_json_time(row, "created", p->created) != 0 ||
            kr_json_time(row, "updated", p->updated) != 0 || json_array_append(l->rows, row) != 0)
            l->rc = tg_err_set(l->err, TG_E_INTERNAL, "out of memory");
    } else if (l->rc == 0) {
        l->rc = tg_err_set(l->err, TG_E_INTERNAL, "out of memory");
    }
    json_decref(users);
    json_decref(row);
    return l->rc != 0;
}

int tg_keyring_policy_list(tg_keyring *kr, json_t **out, tg_err *err)
{
    *out = NULL;
    listctx l = {kr, json_array(), err, 0};
    if (l.rows == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = tg_store_policy_each(kr->st, add_row, &l, err);
    if (rc == 0) rc = l.rc;
    if (rc != 0) {
        json_decref(l.rows);
        return rc;
    }
    *out = l.rows;
    return 0;
}

int tg_keyring_policy_delete(tg_keyring *kr, const char *name, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_policy p = {0};
    tg_store_proxy x;
    if ((rc = policy_get(kr, name, &p, err)) == 0) {
        if (tg_store_proxy_by_policy(kr->st, p.id, &x, NULL) == 0) {
            rc = tg_err_set(err, TG_E_CONFLICT,
                            "policy '%s' is used by %s proxy '%s': change or delete the proxy "
                            "first",
                            name, x.kind, x.name);
            tg_store_proxy_clear(&x);
        } else {
            rc = tg_store_policy_delete(kr->st, p.id, err);
        }
    }
    tg_store_policy_clear(&p);
    return kr_finish(kr, rc, err);
}

/* ---- export and import ---- */

#define FILE_FORMAT 1 /* "tlsgate_policy" in an exported file */

int tg_keyring_policy_export(tg_keyring *kr, const char *name, char **out, size_t *outlen,
                             tg_err *err)
{
    *out = NULL;
    *outlen = 0;
    json_t *doc = NULL;
    int rc = tg_keyring_policy_show(kr, name, &doc, err);
    if (rc != 0) return rc;
    json_t *file =
        json_pack("{s:i, s:O, s:O, s:O}", "tlsgate_policy", FILE_FORMAT, "name",
                  json_object_get(doc, "name"), "description", json_object_get(doc, "description"),
                  "no_defaults", json_object_get(doc, "no_defaults"));
    for (int k = 0; file != NULL && k < TG_POLICY_LISTS; k++)
        json_object_set(file, lists[k], json_object_get(doc, lists[k]));
    char *text = file ? json_dumps(file, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(file);
    json_decref(doc);
    size_t n = text ? strlen(text) : 0;
    char *withnl = text ? realloc(text, n + 2) : NULL;
    if (withnl == NULL) {
        free(text);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    withnl[n] = '\n';
    withnl[n + 1] = '\0';
    *out = withnl;
    *outlen = n + 1;
    return 0;
}

/* Fields of a show --json document that an import passes over. */
static const char *const ignored[] = {"used_by", "created", "created_unix", "updated",
                                      "updated_unix"};

/* The policy file's settings as tg_policy_opts (the strings borrowed from doc; the
 * arrays owned by *o's caller through vals). */
static int import_read(json_t *doc, tg_policy_opts *o, const char **name, const char ***vals,
                       tg_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        int known = strcmp(key, "tlsgate_policy") == 0 || strcmp(key, "name") == 0 ||
                    strcmp(key, "description") == 0 || strcmp(key, "no_defaults") == 0;
        for (int k = 0; k < TG_POLICY_LISTS; k++)
            known |= strcmp(key, lists[k]) == 0;
        for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
            known |= strcmp(key, ignored[i]) == 0;
        if (!known)
            return tg_err_set(err, TG_E_INVALID,
                              "the policy file has a field '%.64s' that a policy does not have; "
                              "its fields are name, description, no_defaults, never_domains, "
                              "never_categories, never_sources and always_sources",
                              key);
    }
    json_t *format = json_object_get(doc, "tlsgate_policy");
    if (format != NULL && (!json_is_integer(format) || json_integer_value(format) != FILE_FORMAT))
        return tg_err_set(err, TG_E_INVALID,
                          "the policy file is of format %s, and this tlsgate reads format %d",
                          json_is_integer(format) ? "another" : "an unknown", FILE_FORMAT);
    json_t *jn = json_object_get(doc, "name"), *jd = json_object_get(doc, "description"),
           *jx = json_object_get(doc, "no_defaults");
    /* description: null when there is none, as documents have it (or "", as before) */
    if ((jn && !json_is_string(jn)) || (jd && !json_is_string(jd) && !json_is_null(jd)) ||
        (jx && !json_is_boolean(jx)))
        return tg_err_set(err, TG_E_INVALID,
                          "in the policy file, name is a string, description a string or null, "
                          "and no_defaults is true or false");
    if (*name == NULL) *name = json_string_value(jn);
    if (*name == NULL)
        return tg_err_fset(err, TG_E_INVALID, "name",
                           "the policy file names no policy; give it a name");
    o->description = json_is_string(jd) ? json_string_value(jd) : "";
    o->no_defaults = json_is_true(jx);
    for (int k = 0; k < TG_POLICY_LISTS; k++) {
        json_t *a = json_object_get(doc, lists[k]), *e;
        size_t i;
        if (a == NULL) continue;
        if (!json_is_array(a))
            return tg_err_set(err, TG_E_INVALID, "in the policy file, %s is a list of strings",
                              lists[k]);
        if (json_array_size(a) > list_max[k])
            return tg_err_set(err, TG_E_INVALID,
                              "the policy file has %zu %s; a policy holds at most %zu",
                              json_array_size(a), list_words[k], list_max[k]);
        if ((vals[k] = calloc(json_array_size(a) + 1, sizeof(char *))) == NULL)
            return tg_err_set(err, TG_E_INTERNAL, "out of memory");
        json_array_foreach(a, i, e)
        {
            if (!json_is_string(e))
                return tg_err_set(err, TG_E_INVALID,
                                  "in the policy file, entry %zu of %s is not a string", i + 1,
                                  lists[k]);
            vals[k][i] = json_string_value(e);
        }
        o->add[k].v = vals[k];
        o->add[k].n = json_array_size(a);
    }
    return 0;
}

int tg_keyring_policy_import(tg_keyring *kr, const char *data, size_t len, const char *name,
                             int replace, json_t **out, tg_err *err)
{
    *out = NULL;
    json_error_t jerr;
    json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL || !json_is_object(doc)) {
        int rc = doc == NULL ? tg_err_set(err, TG_E_INVALID,
                                          "the policy file is not JSON (line %d, column %d: %s); "
                                          "give a file written by a policy export",
                                          jerr.line, jerr.column, jerr.text)
                             : tg_err_set(err, TG_E_INVALID,
                                          "the policy file is not a JSON object; give a file "
                                          "written by a policy export");
        json_decref(doc);
        return rc;
    }
    tg_policy_opts o = {.no_defaults = TG_UNSET};
    const char **vals[TG_POLICY_LISTS] = {0};
    canonset s = {0};
    int rc = import_read(doc, &o, &name, vals, err);
    tg_err why = {0};
    if (rc == 0) rc = policy_name_check(name, err);
    if (rc == 0 && (rc = new_values(&o, &s, &why)) != 0)
        tg_err_set(err, rc, "in the policy file: %s", why.msg);
    if (rc == 0) rc = tg_store_begin(kr->st, err);
    if (rc != 0) {
        for (int k = 0; k < TG_POLICY_LISTS; k++)
            free(vals[k]);
        canonset_free(&s);
        json_decref(doc);
        return rc;
    }
    tg_store_policy p = {0};
    char *keep = tg_strdup(name); /* name may point into doc */
    int exists = tg_store_policy_by_name(kr->st, name, &p, NULL) == 0;
    if (keep == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    } else if (exists && !replace) {
        rc = tg_err_fset(err, TG_E_CONFLICT, "replace",
                         "a policy named '%s' already exists: import it under another name or "
                         "replace it",
                         name);
    } else if (exists) { /* the same row, so the proxies that use it stay on it */
        free(p.description);
        p.description = tg_strdup(o.description);
        p.no_defaults = o.no_defaults == 1;
        if (p.description == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        if (rc == 0) rc = tg_store_policy_update(kr->st, &p, err);
        if (rc == 0) rc = tg_store_policy_entries_clear(kr->st, p.id, err);
    } else {
        tg_store_policy fresh = {
            .name = keep, .description = (char *)o.description, .no_defaults = o.no_defaults == 1};
        if ((rc = name_free(kr, keep, err)) == 0) rc = tg_store_policy_add(kr->st, &fresh, err);
        p.id = fresh.id;
    }
    if (rc == 0) rc = add_all(kr, p.id, &s, err);
    if (rc == 0) rc = result_check(kr, p.id, keep, err);
    tg_store_policy_clear(&p);
    for (int k = 0; k < TG_POLICY_LISTS; k++)
        free(vals[k]);
    canonset_free(&s);
    json_decref(doc);
    rc = show_after(kr, rc, keep ? keep : "", out, err);
    free(keep);
    return rc;
}

/* ---- the runtime view ---- */

int kr_policy_rt(tg_keyring *kr, int64_t id, json_t *defaults, json_t **out, tg_err *err)
{
    *out = NULL;
    tg_store_policy p;
    int rc = tg_store_policy_get(kr->st, id, &p, err);
    if (rc == TG_E_NOTFOUND)
        return tg_err_set(err, TG_E_STORE, "its decryption policy is missing from the store");
    if (rc != 0) return rc;
    json_t *doc = json_pack("{s:o}", "name", kr_json_text(p.name));
    rc = doc ? lists_into(kr, id, doc, err) : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0 && !p.no_defaults && json_array_size(defaults) > 0) {
        /* both in byte order: one merge, each domain once */
        json_t *own = json_object_get(doc, lists[TG_NEVER_DOMAINS]), *all = json_array();
        size_t i = 0, j = 0, n = json_array_size(own), m = json_array_size(defaults);
        while (all != NULL && (i < n || j < m)) {
            const char *a = i < n ? json_string_value(json_array_get(own, i)) : NULL;
            const char *b = j < m ? json_string_value(json_array_get(defaults, j)) : NULL;
            int c = a == NULL ? 1 : b == NULL ? -1 : strcmp(a, b);
            json_array_append(all, json_array_get(c <= 0 ? own : defaults, c <= 0 ? i : j));
            i += c <= 0;
            j += c >= 0;
        }
        if (all == NULL || json_object_set_new(doc, lists[TG_NEVER_DOMAINS], all) != 0)
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    tg_store_policy_clear(&p);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}
