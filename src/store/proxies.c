/*
 * proxies.c — rows of inspection proxies (issue 9): name, kind, the two references the
 * store guards (signing certificate, trust store) and the keyring's JSON configuration.
 *
 * Invariants: names are unique across kinds; a reference is an id with a foreign key,
 * so a certificate, trust store or policy in use cannot disappear underneath a proxy (the
 * keyring refuses such a deletion first, with a sentence; the key is the backstop). The
 * config text is stored and returned as it is: its rules are the keyring's. A server
 * proxy's certificates are child rows (proxy_certs, schema 11), guarded the same way.
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROXY_COLS                                                                                 \
    "p.id, p.name, p.kind, p.signing_cert_id, p.truststore_id, c.name, t.name, p.config,"          \
    " p.created, p.updated, p.policy_id, y.name FROM proxies p"                                    \
    " LEFT JOIN certs c ON c.id = p.signing_cert_id"                                               \
    " LEFT JOIN truststores t ON t.id = p.truststore_id LEFT JOIN policies y ON y.id = "           \
    "p.policy_id"

void tg_store_proxy_clear(tg_store_proxy *p)
{
    free(p->name);
    free(p->signing_name);
    free(p->truststore_name);
    free(p->policy_name);
    free(p->config);
    memset(p, 0, sizeof(*p));
}

/* A text column copied, NULL staying NULL; *ok cleared when a copy fails. */
static char *text_or_null(sqlite3_stmt *s, int i, int *ok)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    if (t == NULL) return NULL;
    char *c = tg_strdup((const char *)t);
    if (c == NULL) *ok = 0;
    return c;
}

static int proxy_from_row(sqlite3_stmt *s, tg_store_proxy *p)
{
    memset(p, 0, sizeof(*p));
    int ok = 1;
    p->id = sqlite3_column_int64(s, 0);
    p->name = text_or_null(s, 1, &ok);
    const unsigned char *kind = sqlite3_column_text(s, 2);
    snprintf(p->kind, sizeof(p->kind), "%s", kind ? (const char *)kind : "");
    p->signing_cert_id = sqlite3_column_int64(s, 3);
    p->truststore_id = sqlite3_column_int64(s, 4);
    p->signing_name = text_or_null(s, 5, &ok);
    p->truststore_name = text_or_null(s, 6, &ok);
    p->config = text_or_null(s, 7, &ok);
    p->created = sqlite3_column_int64(s, 8);
    p->updated = sqlite3_column_int64(s, 9);
    p->policy_id = sqlite3_column_int64(s, 10);
    p->policy_name = text_or_null(s, 11, &ok);
    if (!ok || p->name == NULL || p->config == NULL) {
        tg_store_proxy_clear(p);
        return TG_E_INTERNAL;
    }
    return 0;
}

static int proxy_one(tg_store *st, sqlite3_stmt *s, tg_store_proxy *out, tg_err *err)
{
    if (s == NULL) return TG_E_STORE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        rc = proxy_from_row(s, out) == 0 ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    else if (rc == SQLITE_DONE)
        rc = TG_E_NOTFOUND;
    else
        rc = tg_db_err(st, err, "reading a proxy");
    tg_db_release(st, s);
    return rc;
}

static void bind_id(sqlite3_stmt *s, int i, int64_t id)
{
    if (id > 0)
        sqlite3_bind_int64(s, i, id);
    else
        sqlite3_bind_null(s, i);
}

int tg_store_proxy_add(tg_store *st, tg_store_proxy *p, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "INSERT INTO proxies(name,kind,signing_cert_id,truststore_id,"
                                 "config,created,updated,policy_id) VALUES(?,?,?,?,?,?,?,?)",
                                 err);
    if (s == NULL) return TG_E_STORE;
    p->created = p->updated = (long long)time(NULL);
    sqlite3_bind_text(s, 1, p->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, p->kind, -1, SQLITE_STATIC);
    bind_id(s, 3, p->signing_cert_id);
    bind_id(s, 4, p->truststore_id);
    sqlite3_bind_text(s, 5, p->config, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, p->created);
    sqlite3_bind_int64(s, 7, p->updated);
    bind_id(s, 8, p->policy_id);
    int rc = tg_db_done(st, s, err, "storing a proxy");
    if (rc == 0) p->id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int tg_store_proxy_update(tg_store *st, tg_store_proxy *p, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "UPDATE proxies SET signing_cert_id=?, truststore_id=?, config=?,"
                                 " updated=?, policy_id=? WHERE id=?",
                                 err);
    if (s == NULL) return TG_E_STORE;
    p->updated = (long long)time(NULL);
    bind_id(s, 1, p->signing_cert_id);
    bind_id(s, 2, p->truststore_id);
    sqlite3_bind_text(s, 3, p->config, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, p->updated);
    bind_id(s, 5, p->policy_id);
    sqlite3_bind_int64(s, 6, p->id);
    return tg_db_done(st, s, err, "changing a proxy");
}

int tg_store_proxy_by_name(tg_store *st, const char *name, tg_store_proxy *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " PROXY_COLS " WHERE p.name=?", err);
    if (s) sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    return proxy_one(st, s, out, err);
}

int tg_store_proxy_by_cert(tg_store *st, int64_t cert_id, tg_store_proxy *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(
        st, "SELECT " PROXY_COLS " WHERE p.signing_cert_id=? ORDER BY p.name LIMIT 1", err);
    if (s) sqlite3_bind_int64(s, 1, cert_id);
    return proxy_one(st, s, out, err);
}

int tg_store_proxy_by_truststore(tg_store *st, int64_t ts_id, tg_store_proxy *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(
        st, "SELECT " PROXY_COLS " WHERE p.truststore_id=? ORDER BY p.name LIMIT 1", err);
    if (s) sqlite3_bind_int64(s, 1, ts_id);
    return proxy_one(st, s, out, err);
}

int tg_store_proxy_by_policy(tg_store *st, int64_t policy_id, tg_store_proxy *out, tg_err *err)
{
    sqlite3_stmt *s =
        tg_db_prep(st, "SELECT " PROXY_COLS " WHERE p.policy_id=? ORDER BY p.name LIMIT 1", err);
    if (s) sqlite3_bind_int64(s, 1, policy_id);
    return proxy_one(st, s, out, err);
}

int tg_store_proxy_delete(tg_store *st, int64_t id, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM proxies WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    return tg_db_done(st, s, err, "deleting a proxy");
}

int tg_store_proxy_move_signing(tg_store *st, int64_t from, int64_t to, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "UPDATE proxies SET signing_cert_id=?, updated=? "
                                 "WHERE signing_cert_id=?",
                                 err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, to);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)time(NULL));
    sqlite3_bind_int64(s, 3, from);
    return tg_db_done(st, s, err, "moving a proxy's signing certificate");
}

typedef struct proxy_iter {
    tg_store_proxy_fn fn;
    void *arg;
} proxy_iter;

static int proxy_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    proxy_iter *it = arg;
    tg_store_proxy p;
    if (proxy_from_row(s, &p) != 0) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int stop = it->fn(&p, it->arg) != 0;
    tg_store_proxy_clear(&p);
    return stop;
}

int tg_store_proxy_each(tg_store *st, const char *kind, tg_store_proxy_fn fn, void *arg,
                        tg_err *err)
{
    proxy_iter it = {fn, arg};
    sqlite3_stmt *s =
        tg_db_prep(st, "SELECT " PROXY_COLS " WHERE ?1 IS NULL OR p.kind=?1 ORDER BY p.name", err);
    if (s != NULL && kind != NULL) sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
    return tg_db_each(st, s, proxy_row, &it, err, "listing proxies");
}

/* ---- a server proxy's certificates (schema 11) ---- */

int tg_store_proxy_certs_set(tg_store *st, int64_t proxy_id, const int64_t *ids, size_t n,
                             tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM proxy_certs WHERE proxy_id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, proxy_id);
    int rc = tg_db_done(st, s, err, "changing a proxy's certificates");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        s = tg_db_prep(st, "INSERT INTO proxy_certs(proxy_id,cert_id,position) VALUES(?,?,?)", err);
        if (s == NULL) return TG_E_STORE;
        sqlite3_bind_int64(s, 1, proxy_id);
        sqlite3_bind_int64(s, 2, ids[i]);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)i);
        rc = tg_db_done(st, s, err, "changing a proxy's certificates");
    }
    return rc;
}

int tg_store_proxy_certs_get(tg_store *st, int64_t proxy_id, int64_t **ids, size_t *n, tg_err *err)
{
    sqlite3_stmt *s =
        tg_db_prep(st, "SELECT cert_id FROM proxy_certs WHERE proxy_id=? ORDER BY position", err);
    if (s != NULL) sqlite3_bind_int64(s, 1, proxy_id);
    return tg_db_ids(st, s, ids, n, err, "reading a proxy's certificates");
}

int tg_store_proxy_by_server_cert(tg_store *st, int64_t cert_id, tg_store_proxy *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "SELECT " PROXY_COLS " WHERE p.id IN (SELECT proxy_id FROM "
                                 "proxy_certs WHERE cert_id=?) ORDER BY p.name LIMIT 1",
                                 err);
    if (s) sqlite3_bind_int64(s, 1, cert_id);
    return proxy_one(st, s, out, err);
}

int tg_store_proxy_certs_move(tg_store *st, int64_t from, int64_t to, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "UPDATE proxies SET updated=? WHERE id IN (SELECT proxy_id FROM "
                                 "proxy_certs WHERE cert_id=?)",
                                 err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)time(NULL));
    sqlite3_bind_int64(s, 2, from);
    int rc = tg_db_done(st, s, err, "moving a proxy's certificate");
    if (rc != 0) return rc;
    /* a proxy that already holds the new one keeps that row; the old one goes */
    s = tg_db_prep(st, "UPDATE OR IGNORE proxy_certs SET cert_id=?1 WHERE cert_id=?2", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, to);
    sqlite3_bind_int64(s, 2, from);
    if ((rc = tg_db_done(st, s, err, "moving a proxy's certificate")) != 0) return rc;
    s = tg_db_prep(st, "DELETE FROM proxy_certs WHERE cert_id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, from);
    return tg_db_done(st, s, err, "moving a proxy's certificate");
}
