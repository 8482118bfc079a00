/*
 * policies.c — decryption policies (issue 9, item 5), the default never-decrypt domains
 * and the domain-to-category map: rows of text the keyring has already checked.
 *
 * Invariants: a policy's name is unique among policies (the keyring also keeps it apart
 * from proxies' names); its four lists are child rows (policy_entries), one per value,
 * so a value is held at most once per list and a change adds or removes rows instead of
 * rewriting a document of up to 10,000 names; the rows go with their policy (ON DELETE
 * CASCADE). A proxy refers to its policy by id (proxies.policy_id): a policy in use
 * cannot be deleted (the keyring refuses first, naming the proxy; the foreign key is
 * the backstop). default_domains and categories are plain tables of text; what is a
 * valid domain or category is the keyring's rule, not the store's.
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void tg_store_policy_clear(tg_store_policy *p)
{
    free(p->name);
    free(p->description);
    memset(p, 0, sizeof(*p));
}

#define POLICY_COLS "id, name, description, no_defaults, created, updated FROM policies"

static int policy_from_row(sqlite3_stmt *s, tg_store_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->id = sqlite3_column_int64(s, 0);
    p->name = tg_strdup((const char *)sqlite3_column_text(s, 1));
    p->description = tg_strdup((const char *)sqlite3_column_text(s, 2));
    p->no_defaults = sqlite3_column_int(s, 3);
    p->created = sqlite3_column_int64(s, 4);
    p->updated = sqlite3_column_int64(s, 5);
    if (p->name == NULL || p->description == NULL) {
        tg_store_policy_clear(p);
        return TG_E_INTERNAL;
    }
    return 0;
}

static int policy_one(tg_store *st, sqlite3_stmt *s, tg_store_policy *out, tg_err *err)
{
    if (s == NULL) return TG_E_STORE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        rc = policy_from_row(s, out) == 0 ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    else if (rc == SQLITE_DONE)
        rc = TG_E_NOTFOUND;
    else
        rc = tg_db_err(st, err, "reading a policy");
    tg_db_release(st, s);
    return rc;
}

int tg_store_policy_add(tg_store *st, tg_store_policy *p, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "INSERT INTO policies(name,description,no_defaults,created,"
                                 "updated) VALUES(?,?,?,?,?)",
                                 err);
    if (s == NULL) return TG_E_STORE;
    p->created = p->updated = (long long)time(NULL);
    sqlite3_bind_text(s, 1, p->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, p->description ? p->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, p->no_defaults != 0);
    sqlite3_bind_int64(s, 4, p->created);
    sqlite3_bind_int64(s, 5, p->updated);
    int rc = tg_db_done(st, s, err, "storing a policy");
    if (rc == 0) p->id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int tg_store_policy_update(tg_store *st, tg_store_policy *p, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(
        st, "UPDATE policies SET description=?, no_defaults=?, updated=? WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    p->updated = (long long)time(NULL);
    sqlite3_bind_text(s, 1, p->description ? p->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, p->no_defaults != 0);
    sqlite3_bind_int64(s, 3, p->updated);
    sqlite3_bind_int64(s, 4, p->id);
    return tg_db_done(st, s, err, "changing a policy");
}

int tg_store_policy_by_name(tg_store *st, const char *name, tg_store_policy *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " POLICY_COLS " WHERE name=?", err);
    if (s) sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    return policy_one(st, s, out, err);
}

int tg_store_policy_get(tg_store *st, int64_t id, tg_store_policy *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " POLICY_COLS " WHERE id=?", err);
    if (s) sqlite3_bind_int64(s, 1, id);
    return policy_one(st, s, out, err);
}

int tg_store_policy_delete(tg_store *st, int64_t id, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM policies WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    return tg_db_done(st, s, err, "deleting a policy");
}

typedef struct policy_iter {
    tg_store_policy_fn fn;
    void *arg;
} policy_iter;

static int policy_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    policy_iter *it = arg;
    tg_store_policy p;
    if (policy_from_row(s, &p) != 0) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int stop = it->fn(&p, it->arg) != 0;
    tg_store_policy_clear(&p);
    return stop;
}

int tg_store_policy_each(tg_store *st, tg_store_policy_fn fn, void *arg, tg_err *err)
{
    policy_iter it = {fn, arg};
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " POLICY_COLS " ORDER BY name", err);
    return tg_db_each(st, s, policy_row, &it, err, "listing policies");
}

/* ---- a policy's lists ---- */

int tg_store_policy_entry_add(tg_store *st, int64_t policy, const char *list, const char *value,
                              int *added, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(
        st, "INSERT INTO policy_entries(policy_id,list,value) VALUES(?,?,?) ON CONFLICT DO NOTHING",
        err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, policy);
    sqlite3_bind_text(s, 2, list, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, value, -1, SQLITE_STATIC);
    int rc = tg_db_done(st, s, err, "storing a policy's entry");
    if (rc == 0 && added != NULL) *added = sqlite3_changes(st->db) > 0;
    return rc;
}

int tg_store_policy_entry_remove(tg_store *st, int64_t policy, const char *list, const char *value,
                                 tg_err *err)
{
    sqlite3_stmt *s =
        tg_db_prep(st, "DELETE FROM policy_entries WHERE policy_id=? AND list=? AND value=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, policy);
    sqlite3_bind_text(s, 2, list, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, value, -1, SQLITE_STATIC);
    int rc = tg_db_done(st, s, err, "removing a policy's entry");
    return rc == 0 && sqlite3_changes(st->db) == 0 ? TG_E_NOTFOUND : rc;
}

int tg_store_policy_entries_clear(tg_store *st, int64_t policy, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM policy_entries WHERE policy_id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, policy);
    return tg_db_done(st, s, err, "clearing a policy's lists");
}

int tg_store_policy_entry_count(tg_store *st, int64_t policy, const char *list, long long *n,
                                tg_err *err)
{
    sqlite3_stmt *s =
        tg_db_prep(st, "SELECT count(*) FROM policy_entries WHERE policy_id=? AND list=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, policy);
    sqlite3_bind_text(s, 2, list, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s) == SQLITE_ROW ? 0 : tg_db_err(st, err, "counting a policy's entries");
    *n = rc == 0 ? sqlite3_column_int64(s, 0) : 0;
    tg_db_release(st, s);
    return rc;
}

typedef struct text_iter {
    tg_store_text_fn fn;
    void *arg;
} text_iter;

/* A negative result of fn is passed on as the call's result; a positive one stops. */
static int text_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    (void)err;
    text_iter *it = arg;
    int rc = it->fn((const char *)sqlite3_column_text(s, 0), it->arg);
    return rc < 0 ? rc : rc > 0;
}

int tg_store_policy_entries_each(tg_store *st, int64_t policy, const char *list,
                                 tg_store_text_fn fn, void *arg, tg_err *err)
{
    text_iter it = {fn, arg};
    sqlite3_stmt *s = tg_db_prep(
        st, "SELECT value FROM policy_entries WHERE policy_id=? AND list=? ORDER BY value", err);
    if (s != NULL) {
        sqlite3_bind_int64(s, 1, policy);
        sqlite3_bind_text(s, 2, list, -1, SQLITE_STATIC);
    }
    return tg_db_each(st, s, text_row, &it, err, "reading a policy's entries");
}

int tg_store_policy_entry_shared(tg_store *st, int64_t policy, const char *a, const char *b,
                                 char *buf, size_t bufsize)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "SELECT x.value FROM policy_entries x JOIN policy_entries y"
                                 " ON y.policy_id=x.policy_id AND y.value=x.value"
                                 " WHERE x.policy_id=?1 AND x.list=?2 AND y.list=?3"
                                 " ORDER BY x.value LIMIT 1",
                                 NULL);
    if (s == NULL) return 0;
    sqlite3_bind_int64(s, 1, policy);
    sqlite3_bind_text(s, 2, a, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, b, -1, SQLITE_STATIC);
    int found = 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        snprintf(buf, bufsize, "%s", (const char *)sqlite3_column_text(s, 0));
        found = 1;
    }
    tg_db_release(st, s);
    return found;
}

/* ---- the default never-decrypt domains ---- */

int tg_store_defdomains_clear(tg_store *st, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM default_domains", err);
    return s ? tg_db_done(st, s, err, "clearing the default never-decrypt list") : TG_E_STORE;
}

int tg_store_defdomains_add(tg_store *st, const char *domain, tg_err *err)
{
    sqlite3_stmt *s =
        tg_db_prep(st, "INSERT INTO default_domains(domain) VALUES(?) ON CONFLICT DO NOTHING", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC);
    return tg_db_done(st, s, err, "storing the default never-decrypt list");
}

long long tg_store_defdomains_count(tg_store *st)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT count(*) FROM default_domains", NULL);
    if (s == NULL) return 0;
    long long n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    tg_db_release(st, s);
    return n;
}

int tg_store_defdomains_each(tg_store *st, tg_store_text_fn fn, void *arg, tg_err *err)
{
    text_iter it = {fn, arg};
    sqlite3_stmt *s = tg_db_prep(st, "SELECT domain FROM default_domains ORDER BY domain", err);
    return tg_db_each(st, s, text_row, &it, err, "reading the default never-decrypt list");
}

/* ---- categories ---- */

int tg_store_category_put(tg_store *st, const char *domain, const char *category, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "INSERT INTO categories(domain,category) VALUES(?,?)"
                                 " ON CONFLICT(domain) DO UPDATE SET category=excluded.category",
                                 err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, category, -1, SQLITE_STATIC);
    return tg_db_done(st, s, err, "storing a category");
}

int tg_store_category_get(tg_store *st, const char *domain, char *buf, size_t bufsize, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT category FROM categories WHERE domain=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        snprintf(buf, bufsize, "%s", (const char *)sqlite3_column_text(s, 0));
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? TG_E_NOTFOUND : tg_db_err(st, err, "reading a category");
    }
    tg_db_release(st, s);
    return rc;
}

int tg_store_categories_clear(tg_store *st, long long *removed, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM categories", err);
    if (s == NULL) return TG_E_STORE;
    int rc = tg_db_done(st, s, err, "clearing the categories");
    if (removed != NULL) *removed = rc == 0 ? sqlite3_changes64(st->db) : 0;
    return rc;
}

long long tg_store_categories_count(tg_store *st)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT count(*) FROM categories", NULL);
    if (s == NULL) return 0;
    long long n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    tg_db_release(st, s);
    return n;
}

typedef struct pair_iter {
    tg_store_pair_fn fn;
    void *arg;
} pair_iter;

static int pair_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    (void)err;
    pair_iter *it = arg;
    int rc = it->fn((const char *)sqlite3_column_text(s, 0),
                    (const char *)sqlite3_column_text(s, 1), it->arg);
    return rc < 0 ? rc : rc > 0;
}

int tg_store_categories_each(tg_store *st, tg_store_pair_fn fn, void *arg, tg_err *err)
{
    pair_iter it = {fn, arg};
    sqlite3_stmt *s = tg_db_prep(st, "SELECT domain, category FROM categories", err);
    return tg_db_each(st, s, pair_row, &it, err, "reading the categories");
}

typedef struct count_iter {
    tg_store_count_fn fn;
    void *arg;
} count_iter;

static int count_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    (void)err;
    count_iter *it = arg;
    int rc = it->fn((const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1), it->arg);
    return rc < 0 ? rc : rc > 0;
}

int tg_store_category_counts(tg_store *st, tg_store_count_fn fn, void *arg, tg_err *err)
{
    count_iter it = {fn, arg};
    sqlite3_stmt *s = tg_db_prep(
        st, "SELECT category, count(*) FROM categories GROUP BY category ORDER BY category", err);
    return tg_db_each(st, s, count_row, &it, err, "counting the categories");
}
