/*
 * trust.c — trust stores and the default CA package (SPEC C4).
 *
 * A trust store is a named set of CA certificates from the certs table, plus
 * optionally the default CA package: the system's public roots, kept apart in
 * default_cas so that they are loaded once and shown as one entry.
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void tg_store_ts_clear(tg_store_ts *t)
{
    free(t->name);
    free(t->description);
    memset(t, 0, sizeof(*t));
}

static int ts_from_row(sqlite3_stmt *s, tg_store_ts *t)
{
    memset(t, 0, sizeof(*t));
    t->id = sqlite3_column_int64(s, 0);
    t->name = tg_strdup((const char *)sqlite3_column_text(s, 1));
    t->description = tg_strdup((const char *)sqlite3_column_text(s, 2));
    t->include_defaults = sqlite3_column_int(s, 3);
    t->created = sqlite3_column_int64(s, 4);
    if (t->name == NULL || t->description == NULL) {
        tg_store_ts_clear(t);
        return TG_E_INTERNAL;
    }
    return 0;
}

int tg_store_ts_add(tg_store *st, tg_store_ts *t, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(
        st, "INSERT INTO truststores(name,description,include_defaults,created) VALUES(?,?,?,?)",
        err);
    if (s == NULL) return TG_E_STORE;
    t->created = (long long)time(NULL);
    sqlite3_bind_text(s, 1, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, t->description ? t->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, t->include_defaults);
    sqlite3_bind_int64(s, 4, t->created);
    int rc = tg_db_done(st, s, err, "storing a trust store");
    if (rc == 0) t->id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int tg_store_ts_by_name(tg_store *st, const char *name, tg_store_ts *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "SELECT id,name,description,include_defaults,created FROM "
                                 "truststores WHERE name=?",
                                 err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        rc = ts_from_row(s, out) == 0 ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    else if (rc == SQLITE_DONE)
        rc = TG_E_NOTFOUND;
    else
        rc = tg_db_err(st, err, "reading a trust store");
    tg_db_release(st, s);
    return rc;
}

int tg_store_ts_delete(tg_store *st, int64_t id, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM truststores WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    return tg_db_done(st, s, err, "deleting a trust store");
}

typedef struct ts_iter {
    tg_store_ts_fn fn;
    void *arg;
} ts_iter;

static int ts_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    ts_iter *it = arg;
    tg_store_ts t;
    if (ts_from_row(s, &t) != 0) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int stop = it->fn(&t, it->arg) != 0;
    tg_store_ts_clear(&t);
    return stop;
}

int tg_store_ts_each(tg_store *st, tg_store_ts_fn fn, void *arg, tg_err *err)
{
    ts_iter it = {fn, arg};
    sqlite3_stmt *s = tg_db_prep(
        st, "SELECT id,name,description,include_defaults,created FROM truststores ORDER BY name",
        err);
    return tg_db_each(st, s, ts_row, &it, err, "listing trust stores");
}

static int pair(tg_store *st, const char *sql, int64_t ts, int64_t cert_id, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, sql, err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, ts);
    sqlite3_bind_int64(s, 2, cert_id);
    return tg_db_done(st, s, err, "changing a trust store");
}

int tg_store_ts_add_ca(tg_store *st, int64_t ts, int64_t cert_id, tg_err *err)
{
    return pair(st, "INSERT OR IGNORE INTO truststore_cas(truststore_id,cert_id) VALUES(?,?)", ts,
                cert_id, err);
}

int tg_store_ts_remove_ca(tg_store *st, int64_t ts, int64_t cert_id, tg_err *err)
{
    return pair(st, "DELETE FROM truststore_cas WHERE truststore_id=? AND cert_id=?", ts, cert_id,
                err);
}

int tg_store_ts_holding(tg_store *st, int64_t cert_id, char *buf, size_t bufsize)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "SELECT t.name FROM truststores t JOIN truststore_cas c ON "
                                 "c.truststore_id=t.id WHERE c.cert_id=? ORDER BY t.name LIMIT 1",
                                 NULL);
    if (s == NULL) return 0;
    sqlite3_bind_int64(s, 1, cert_id);
    int found = 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        strncpy(buf, (const char *)sqlite3_column_text(s, 0), bufsize - 1);
        buf[bufsize - 1] = '\0';
        found = 1;
    }
    tg_db_release(st, s);
    return found;
}

int tg_store_defcas_clear(tg_store *st, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM default_cas", err);
    return s ? tg_db_done(st, s, err, "clearing the default CA package") : TG_E_STORE;
}

int tg_store_defcas_add(tg_store *st, const char *sha256, const char *subject,
                        const unsigned char *der, size_t len, tg_err *err)
{
    sqlite3_stmt *s =
        tg_db_prep(st, "INSERT OR IGNORE INTO default_cas(sha256,subject,der) VALUES(?,?,?)", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, subject, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, der, (int)len, SQLITE_STATIC);
    return tg_db_done(st, s, err, "storing the default CA package");
}

long long tg_store_defcas_count(tg_store *st)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT count(*) FROM default_cas", NULL);
    if (s == NULL) return 0;
    long long n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    tg_db_release(st, s);
    return n;
}

typedef struct blob_iter {
    tg_store_blob_fn fn;
    void *arg;
} blob_iter;

static int blob_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    (void)err;
    blob_iter *it = arg;
    return it->fn(sqlite3_column_int64(s, 1), sqlite3_column_blob(s, 0),
                  (size_t)sqlite3_column_bytes(s, 0), it->arg) != 0;
}

int tg_store_defcas_each(tg_store *st, const char *subject, tg_store_blob_fn fn, void *arg,
                         tg_err *err)
{
    blob_iter it = {fn, arg};
    sqlite3_stmt *s = tg_db_prep(
        st, "SELECT der, rowid FROM default_cas WHERE ?1 IS NULL OR subject=?1 ORDER BY sha256",
        err);
    if (s != NULL && subject) sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
    return tg_db_each(st, s, blob_row, &it, err, "reading the default CA package");
}
