/*
 * acme.c — rows of ACME (issue 11, E5): accounts and the certificates ACME keeps, each a
 * name, one guarded reference (an account's key, a certificate's account) and the
 * keyring's JSON document; and the pending challenges serve answers.
 *
 * Invariants: the document text is stored and returned as it is (its rules are the
 * keyring's); a challenge's key is a sealed key row, removed with the challenge by the
 * keyring (tg_store_key_gc).
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One statement text per table: the statement cache compares texts by address. */
static const char *const sql_add[] = {
    "INSERT INTO acme_accounts(name,key_id,doc,created,updated) VALUES(?,?,?,?,?)",
    "INSERT INTO acme_certs(name,account_id,doc,created,updated) VALUES(?,?,?,?,?)"};
static const char *const sql_update[] = {"UPDATE acme_accounts SET doc=?, updated=? WHERE id=?",
                                         "UPDATE acme_certs SET doc=?, updated=? WHERE id=?"};
static const char *const sql_by_name[] = {
    "SELECT id,name,key_id,doc,created,updated FROM acme_accounts WHERE name=?",
    "SELECT id,name,account_id,doc,created,updated FROM acme_certs WHERE name=?"};
static const char *const sql_by_id[] = {
    "SELECT id,name,key_id,doc,created,updated FROM acme_accounts WHERE id=?",
    "SELECT id,name,account_id,doc,created,updated FROM acme_certs WHERE id=?"};
static const char *const sql_each[] = {
    "SELECT id,name,key_id,doc,created,updated FROM acme_accounts ORDER BY name",
    "SELECT id,name,account_id,doc,created,updated FROM acme_certs ORDER BY name"};
static const char *const sql_delete[] = {"DELETE FROM acme_accounts WHERE id=?",
                                         "DELETE FROM acme_certs WHERE id=?"};

void tg_store_acme_clear(tg_store_acme *a)
{
    free(a->name);
    free(a->doc);
    memset(a, 0, sizeof(*a));
}

static int acme_from_row(sqlite3_stmt *s, tg_store_acme *a)
{
    memset(a, 0, sizeof(*a));
    a->id = sqlite3_column_int64(s, 0);
    a->name = tg_strdup((const char *)sqlite3_column_text(s, 1));
    a->ref_id = sqlite3_column_int64(s, 2);
    a->doc = tg_strdup((const char *)sqlite3_column_text(s, 3));
    a->created = sqlite3_column_int64(s, 4);
    a->updated = sqlite3_column_int64(s, 5);
    if (a->name == NULL || a->doc == NULL) {
        tg_store_acme_clear(a);
        return TG_E_INTERNAL;
    }
    return 0;
}

static int acme_one(tg_store *st, sqlite3_stmt *s, tg_store_acme *out, tg_err *err)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        rc = acme_from_row(s, out) == 0 ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    else if (rc == SQLITE_DONE)
        rc = TG_E_NOTFOUND;
    else
        rc = tg_db_err(st, err, "reading an ACME row");
    tg_db_release(st, s);
    return rc;
}

int tg_store_acme_add(tg_store *st, int table, tg_store_acme *a, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, sql_add[table], err);
    if (s == NULL) return TG_E_STORE;
    a->created = a->updated = (long long)time(NULL);
    sqlite3_bind_text(s, 1, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, a->ref_id);
    sqlite3_bind_text(s, 3, a->doc, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, a->created);
    sqlite3_bind_int64(s, 5, a->updated);
    int rc = tg_db_done(st, s, err, "storing an ACME row");
    if (rc == 0) a->id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int tg_store_acme_update(tg_store *st, int table, int64_t id, const char *doc, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, sql_update[table], err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, doc, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (long long)time(NULL));
    sqlite3_bind_int64(s, 3, id);
    return tg_db_done(st, s, err, "updating an ACME row");
}

int tg_store_acme_by_name(tg_store *st, int table, const char *name, tg_store_acme *out,
                          tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, sql_by_name[table], err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    return acme_one(st, s, out, err);
}

int tg_store_acme_get(tg_store *st, int table, int64_t id, tg_store_acme *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, sql_by_id[table], err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    return acme_one(st, s, out, err);
}

int tg_store_acme_delete(tg_store *st, int table, int64_t id, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, sql_delete[table], err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    return tg_db_done(st, s, err, "deleting an ACME row");
}

typedef struct each_arg {
    tg_store_acme_fn fn;
    void *arg;
} each_arg;

static int each_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    each_arg *e = arg;
    tg_store_acme a;
    if (acme_from_row(s, &a) != 0) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = e->fn(&a, e->arg);
    tg_store_acme_clear(&a);
    return rc < 0 ? rc : rc > 0 ? 1 : 0;
}

int tg_store_acme_each(tg_store *st, int table, tg_store_acme_fn fn, void *arg, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, sql_each[table], err);
    if (s == NULL) return TG_E_STORE;
    each_arg e = {fn, arg};
    return tg_db_each(st, s, each_row, &e, err, "listing ACME rows");
}

long long tg_store_acme_account_uses(tg_store *st, int64_t account_id)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT count(*) FROM acme_certs WHERE account_id=?", NULL);
    if (s == NULL) return 1;
    sqlite3_bind_int64(s, 1, account_id);
    long long n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 1;
    tg_db_release(st, s);
    return n;
}

/* ---- challenges ---- */

void tg_store_chal_clear(tg_store_chal *c)
{
    free(c->token);
    free(c->domain);
    free(c->keyauth);
    free(c->der);
    memset(c, 0, sizeof(*c));
}

int tg_store_chal_add(tg_store *st, const tg_store_chal *c, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "INSERT OR REPLACE INTO acme_challenges(token,domain,type,keyauth,"
                                 "cert_der,key_id,created) VALUES(?,?,?,?,?,?,?)",
                                 err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, c->token, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, c->domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, c->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, c->keyauth, -1, SQLITE_STATIC);
    if (c->der != NULL)
        sqlite3_bind_blob(s, 5, c->der, (int)c->derlen, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 5);
    if (c->key_id > 0)
        sqlite3_bind_int64(s, 6, c->key_id);
    else
        sqlite3_bind_null(s, 6);
    sqlite3_bind_int64(s, 7, (long long)time(NULL));
    return tg_db_done(st, s, err, "storing an ACME challenge");
}

static int chal_one(tg_store *st, sqlite3_stmt *s, tg_store_chal *out, tg_err *err)
{
    memset(out, 0, sizeof(*out));
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->token = tg_strdup((const char *)sqlite3_column_text(s, 0));
        out->domain = tg_strdup((const char *)sqlite3_column_text(s, 1));
        const unsigned char *t = sqlite3_column_text(s, 2);
        snprintf(out->type, sizeof(out->type), "%s", t ? (const char *)t : "");
        out->keyauth = tg_strdup((const char *)sqlite3_column_text(s, 3));
        int n = sqlite3_column_bytes(s, 4);
        const void *b = sqlite3_column_blob(s, 4);
        if (b != NULL && n > 0 && (out->der = malloc((size_t)n)) != NULL) {
            memcpy(out->der, b, (size_t)n);
            out->derlen = (size_t)n;
        }
        out->key_id = sqlite3_column_int64(s, 5);
        out->created = sqlite3_column_int64(s, 6);
        rc = out->token && out->domain && out->keyauth && (b == NULL || out->der)
                 ? 0
                 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
        if (rc != 0) tg_store_chal_clear(out);
    } else if (rc == SQLITE_DONE) {
        rc = TG_E_NOTFOUND;
    } else {
        rc = tg_db_err(st, err, "reading an ACME challenge");
    }
    tg_db_release(st, s);
    return rc;
}

#define CHAL_COLS "token,domain,type,keyauth,cert_der,key_id,created FROM acme_challenges"

int tg_store_chal_by_token(tg_store *st, const char *token, tg_store_chal *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " CHAL_COLS " WHERE token=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, token, -1, SQLITE_STATIC);
    return chal_one(st, s, out, err);
}

int tg_store_chal_by_domain(tg_store *st, const char *domain, const char *type, tg_store_chal *out,
                            tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(
        st, "SELECT " CHAL_COLS " WHERE domain=? AND type=? ORDER BY created DESC LIMIT 1", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, type, -1, SQLITE_STATIC);
    return chal_one(st, s, out, err);
}

int tg_store_chal_delete(tg_store *st, const char *token, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM acme_challenges WHERE token=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, token, -1, SQLITE_STATIC);
    return tg_db_done(st, s, err, "deleting an ACME challenge");
}

#define PURGE_MAX 32

typedef struct stale {
    char token[PURGE_MAX][160];
    int64_t key[PURGE_MAX];
    int n;
} stale;

static int stale_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    (void)err;
    stale *t = arg;
    const unsigned char *tok = sqlite3_column_text(s, 0);
    if (tok == NULL || strlen((const char *)tok) >= sizeof(t->token[0])) return 0;
    snprintf(t->token[t->n], sizeof(t->token[0]), "%s", (const char *)tok);
    t->key[t->n++] = sqlite3_column_int64(s, 1);
    return t->n == PURGE_MAX ? 1 : 0;
}

int tg_store_chal_purge(tg_store *st, long long before, tg_err *err)
{
    stale t = {.n = 0};
    sqlite3_stmt *s = tg_db_prep(
        st, "SELECT token, key_id FROM acme_challenges WHERE created < ? ORDER BY created LIMIT 32",
        err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, before);
    int rc = tg_db_each(st, s, stale_row, &t, err, "finding stale ACME challenges");
    for (int i = 0; rc == 0 && i < t.n; i++) {
        rc = tg_store_chal_delete(st, t.token[i], err);
        if (rc == 0 && t.key[i] > 0) rc = tg_store_key_gc(st, t.key[i], err);
    }
    return rc;
}
