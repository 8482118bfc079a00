/*
 * objects.c — rows of the store: sealed keys, certificates, requests, references.
 *
 * Each function does one statement's worth of work inside the caller's transaction.
 * Strings in returned structs are owned by the struct (…_clear frees them).
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char KEY_AAD[] = "tlsgate key v1";

static char *col_str(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return tg_strdup(t ? (const char *)t : "");
}

static void key_aad(unsigned char aad[sizeof(KEY_AAD) + 16 + 16 + 32], const unsigned char sid[16],
                    const unsigned char uid[16], const unsigned char spki[32])
{
    memcpy(aad, KEY_AAD, sizeof(KEY_AAD));
    memcpy(aad + sizeof(KEY_AAD), sid, 16);
    memcpy(aad + sizeof(KEY_AAD) + 16, uid, 16);
    memcpy(aad + sizeof(KEY_AAD) + 32, spki, 32);
}
#define KEY_AAD_LEN (sizeof(KEY_AAD) + 16 + 16 + 32)

/* ---- keys ---- */

/* A private key sealed under the data key for the row (uid, spki): its AAD binds it there. */
static int key_seal(tg_store *st, const unsigned char uid[16], const unsigned char spki[32],
                    const unsigned char *priv, size_t privlen, unsigned char **sealed, size_t *slen,
                    tg_err *err)
{
    int rc = tg_store_data_key(st, err);
    if (rc != 0) return rc;
    unsigned char aad[KEY_AAD_LEN];
    key_aad(aad, st->store_id, uid, spki);
    return tg_seal(st->data_key, aad, sizeof(aad), priv, privlen, sealed, slen, err);
}

int tg_store_key_add(tg_store *st, tg_store_key *k, const unsigned char *priv, size_t privlen,
                     tg_err *err)
{
    unsigned char uid[16];
    int rc = tg_random(uid, sizeof(uid), err);
    if (rc != 0) return rc;
    unsigned char *sealed = NULL;
    size_t slen = 0;
    if ((rc = key_seal(st, uid, k->spki_sha256, priv, privlen, &sealed, &slen, err)) != 0)
        return rc;
    sqlite3_stmt *s = tg_db_prep(st,
                                 "INSERT INTO keys(uid,spki_sha256,descr,exportable,sealed,created)"
                                 " VALUES(?,?,?,?,?,?)",
                                 err);
    if (s == NULL) {
        free(sealed);
        return TG_E_STORE;
    }
    sqlite3_bind_blob(s, 1, uid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, k->spki_sha256, 32, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, k->descr, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, k->exportable);
    sqlite3_bind_blob(s, 5, sealed, (int)slen, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)time(NULL));
    rc = tg_db_done(st, s, err, "storing a key");
    free(sealed);
    if (rc == 0) k->id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int tg_store_key_reseal(tg_store *st, int64_t id, const unsigned char *priv, size_t privlen,
                        tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT uid,spki_sha256 FROM keys WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    unsigned char uid[16], spki[32];
    int found = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 16 &&
                sqlite3_column_bytes(s, 1) == 32;
    if (found) {
        memcpy(uid, sqlite3_column_blob(s, 0), 16);
        memcpy(spki, sqlite3_column_blob(s, 1), 32);
    }
    tg_db_release(st, s);
    if (!found) return tg_err_set(err, TG_E_NOTFOUND, "the private key is not in the store");
    unsigned char *sealed = NULL;
    size_t slen = 0;
    int rc = key_seal(st, uid, spki, priv, privlen, &sealed, &slen, err);
    if (rc != 0) return rc;
    s = tg_db_prep(st, "UPDATE keys SET sealed=? WHERE id=?", err);
    if (s == NULL) {
        free(sealed);
        return TG_E_STORE;
    }
    sqlite3_bind_blob(s, 1, sealed, (int)slen, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, id);
    rc = tg_db_done(st, s, err, "repairing a key");
    free(sealed);
    return rc;
}

static int key_row(tg_store *st, sqlite3_stmt *s, tg_store_key *out, tg_err *err)
{
    if (s == NULL) return TG_E_STORE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof(*out));
        out->id = sqlite3_column_int64(s, 0);
        if (sqlite3_column_bytes(s, 1) == 32)
            memcpy(out->spki_sha256, sqlite3_column_blob(s, 1), 32);
        const unsigned char *d = sqlite3_column_text(s, 2);
        strncpy(out->descr, d ? (const char *)d : "", sizeof(out->descr) - 1);
        out->exportable = sqlite3_column_int(s, 3);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = TG_E_NOTFOUND;
    } else {
        rc = tg_db_err(st, err, "reading a key");
    }
    tg_db_release(st, s);
    return rc;
}

int tg_store_key_get(tg_store *st, int64_t id, tg_store_key *out, tg_err *err)
{
    sqlite3_stmt *s =
        tg_db_prep(st, "SELECT id,spki_sha256,descr,exportable FROM keys WHERE id=?", err);
    if (s) sqlite3_bind_int64(s, 1, id);
    return key_row(st, s, out, err);
}

int tg_store_key_find(tg_store *st, const unsigned char spki[32], tg_store_key *out, tg_err *err)
{
    sqlite3_stmt *s =
        tg_db_prep(st, "SELECT id,spki_sha256,descr,exportable FROM keys WHERE spki_sha256=?", err);
    if (s) sqlite3_bind_blob(s, 1, spki, 32, SQLITE_STATIC);
    return key_row(st, s, out, err);
}

int tg_store_key_unseal(tg_store *st, int64_t id, unsigned char **priv, size_t *len, tg_err *err)
{
    *priv = NULL;
    *len = 0;
    int rc = tg_store_data_key(st, err);
    if (rc != 0) return rc;
    sqlite3_stmt *s = tg_db_prep(st, "SELECT uid,spki_sha256,sealed FROM keys WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    if (sqlite3_step(s) != SQLITE_ROW) {
        tg_db_release(st, s);
        return tg_err_set(err, TG_E_NOTFOUND, "the private key is not in the store");
    }
    if (sqlite3_column_bytes(s, 0) != 16 || sqlite3_column_bytes(s, 1) != 32) {
        tg_db_release(st, s);
        return tg_err_set(err, TG_E_STORE, "a key row in the store is damaged");
    }
    unsigned char aad[KEY_AAD_LEN];
    key_aad(aad, st->store_id, sqlite3_column_blob(s, 0), sqlite3_column_blob(s, 1));
    rc = tg_unseal(st->data_key, aad, sizeof(aad), sqlite3_column_blob(s, 2),
                   (size_t)sqlite3_column_bytes(s, 2), priv, len, err);
    tg_db_release(st, s);
    return rc;
}

int tg_store_key_forbid_export(tg_store *st, int64_t id, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "UPDATE keys SET exportable=0 WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    return tg_db_done(st, s, err, "marking a key non-exportable");
}

int tg_store_key_gc(tg_store *st, int64_t id, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "DELETE FROM keys WHERE id=?1 AND NOT EXISTS "
                                 "(SELECT 1 FROM certs WHERE key_id=?1) AND NOT EXISTS "
                                 "(SELECT 1 FROM requests WHERE key_id=?1)",
                                 err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    int rc = tg_db_done(st, s, err, "deleting a key");
    if (rc == 0 && sqlite3_changes(st->db) > 0) TG_STORE_SCRUB(st);
    return rc;
}

/* ---- certificates ---- */

#define CERT_COLS                                                                                  \
    "id,name,status,sha256,spki_sha256,key_id,predecessor_id,request_id,subject,subject_cn,"       \
    "issuer,issuer_cn,serial,san_list,key_desc,sigalg,not_before,not_after,created,is_ca,"         \
    "self_signed,protected,key_type,key_bits,chain_ids"

void tg_store_cert_clear(tg_store_cert *c)
{
    free(c->name);
    free(c->der);
    free(c->subject);
    free(c->subject_cn);
    free(c->issuer);
    free(c->issuer_cn);
    free(c->serial);
    free(c->san_list);
    free(c->key_desc);
    free(c->sigalg);
    free(c->chain_ids);
    memset(c, 0, sizeof(*c));
}

/* A text column, NULL staying NULL (*ok cleared when a copy fails). */
static char *col_str_or_null(sqlite3_stmt *s, int i, int *ok)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    if (t == NULL) return NULL;
    char *c = tg_strdup((const char *)t);
    if (c == NULL) *ok = 0;
    return c;
}

/* Fills c from a row of CERT_COLS (plus der at column 25 when with_der). */
static int cert_from_row(sqlite3_stmt *s, tg_store_cert *c, int with_der)
{
    memset(c, 0, sizeof(*c));
    c->id = sqlite3_column_int64(s, 0);
    c->name = col_str(s, 1);
    strncpy(c->status, (const char *)sqlite3_column_text(s, 2), sizeof(c->status) - 1);
    strncpy(c->sha256, (const char *)sqlite3_column_text(s, 3), sizeof(c->sha256) - 1);
    if (sqlite3_column_bytes(s, 4) == 32) memcpy(c->spki_sha256, sqlite3_column_blob(s, 4), 32);
    c->key_id = sqlite3_column_int64(s, 5);
    c->predecessor_id = sqlite3_column_int64(s, 6);
    c->request_id = sqlite3_column_int64(s, 7);
    c->subject = col_str(s, 8);
    c->subject_cn = col_str(s, 9);
    c->issuer = col_str(s, 10);
    c->issuer_cn = col_str(s, 11);
    c->serial = col_str(s, 12);
    int ok = 1;
    c->san_list = col_str_or_null(s, 13, &ok);
    c->key_desc = col_str(s, 14);
    c->sigalg = col_str(s, 15);
    c->not_before = sqlite3_column_int64(s, 16);
    c->not_after = sqlite3_column_int64(s, 17);
    c->created = sqlite3_column_int64(s, 18);
    c->is_ca = sqlite3_column_int(s, 19);
    c->self_signed = sqlite3_column_int(s, 20);
    c->protected_ = sqlite3_column_int(s, 21);
    const unsigned char *kt = sqlite3_column_text(s, 22);
    snprintf(c->key_type, sizeof(c->key_type), "%s", kt ? (const char *)kt : "");
    c->key_bits = sqlite3_column_int(s, 23);
    c->chain_ids = col_str_or_null(s, 24, &ok);
    if (with_der) {
        c->derlen = (size_t)sqlite3_column_bytes(s, 25);
        c->der = malloc(c->derlen ? c->derlen : 1);
        if (c->der) memcpy(c->der, sqlite3_column_blob(s, 25), c->derlen);
    }
    if (!c->name || !c->subject || !c->subject_cn || !c->issuer || !c->issuer_cn || !c->serial ||
        !ok || !c->key_desc || !c->sigalg || (with_der && !c->der)) {
        tg_store_cert_clear(c);
        return TG_E_INTERNAL;
    }
    return 0;
}

static int cert_one(tg_store *st, sqlite3_stmt *s, tg_store_cert *out, tg_err *err)
{
    if (s == NULL) return TG_E_STORE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        rc = cert_from_row(s, out, 1) == 0 ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    else if (rc == SQLITE_DONE)
        rc = TG_E_NOTFOUND;
    else
        rc = tg_db_err(st, err, "reading a certificate");
    tg_db_release(st, s);
    return rc;
}

int tg_store_cert_add(tg_store *st, tg_store_cert *c, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(
        st,
        "INSERT INTO certs(name,status,sha256,spki_sha256,key_id,predecessor_id,request_id,subject,"
        "subject_cn,issuer,issuer_cn,serial,san_list,key_desc,sigalg,not_before,not_after,created,"
        "is_ca,self_signed,protected,der,key_type,key_bits,chain_ids)"
        " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        err);
    if (s == NULL) return TG_E_STORE;
    int i = 1;
    sqlite3_bind_text(s, i++, c->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, i++, c->status, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, i++, c->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, i++, c->spki_sha256, 32, SQLITE_STATIC);
    int64_t ids[3] = {c->key_id, c->predecessor_id, c->request_id};
    for (int j = 0; j < 3; j++, i++)
        if (ids[j] > 0)
            sqlite3_bind_int64(s, i, ids[j]);
        else
            sqlite3_bind_null(s, i);
    const char *texts[] = {c->subject,   c->subject_cn, c->issuer,
                           c->issuer_cn, c->serial,     c->san_list ? c->san_list : "[]",
                           c->key_desc,  c->sigalg};
    for (size_t j = 0; j < 8; j++)
        sqlite3_bind_text(s, i++, texts[j] ? texts[j] : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, i++, c->not_before);
    sqlite3_bind_int64(s, i++, c->not_after);
    c->created = (long long)time(NULL);
    sqlite3_bind_int64(s, i++, c->created);
    sqlite3_bind_int(s, i++, c->is_ca);
    sqlite3_bind_int(s, i++, c->self_signed);
    sqlite3_bind_int(s, i++, c->protected_);
    sqlite3_bind_blob(s, i++, c->der, (int)c->derlen, SQLITE_STATIC);
    sqlite3_bind_text(s, i++, c->key_type, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, i++, c->key_bits);
    if (c->chain_ids)
        sqlite3_bind_text(s, i++, c->chain_ids, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i++);
    int rc = tg_db_done(st, s, err, "storing a certificate");
    if (rc == 0) c->id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int tg_store_cert_get(tg_store *st, int64_t id, tg_store_cert *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " CERT_COLS ",der FROM certs WHERE id=?", err);
    if (s) sqlite3_bind_int64(s, 1, id);
    return cert_one(st, s, out, err);
}

int tg_store_cert_by_name(tg_store *st, const char *name, tg_store_cert *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " CERT_COLS ",der FROM certs WHERE name=?", err);
    if (s) sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    return cert_one(st, s, out, err);
}

int tg_store_cert_by_sha256(tg_store *st, const char *sha256, tg_store_cert *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " CERT_COLS ",der FROM certs WHERE sha256=?", err);
    if (s) sqlite3_bind_text(s, 1, sha256, -1, SQLITE_STATIC);
    return cert_one(st, s, out, err);
}

int tg_store_name_taken(tg_store *st, const char *name)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT 1 FROM certs WHERE name=?", NULL);
    if (s == NULL) return 1;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int taken = sqlite3_step(s) == SQLITE_ROW;
    tg_db_release(st, s);
    return taken;
}

int tg_store_cert_latest_for_spki(tg_store *st, const unsigned char spki[32], tg_store_cert *out,
                                  tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "SELECT " CERT_COLS ",der FROM certs WHERE spki_sha256=? "
                                 "ORDER BY not_after DESC, id DESC LIMIT 1",
                                 err);
    if (s) sqlite3_bind_blob(s, 1, spki, 32, SQLITE_STATIC);
    return cert_one(st, s, out, err);
}

int tg_store_cert_successor(tg_store *st, int64_t id, tg_store_cert *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(
        st, "SELECT " CERT_COLS ",der FROM certs WHERE predecessor_id=? ORDER BY id LIMIT 1", err);
    if (s) sqlite3_bind_int64(s, 1, id);
    return cert_one(st, s, out, err);
}

static int update_one(tg_store *st, const char *sql, int64_t id, int64_t v, const char *text,
                      tg_err *err, const char *what)
{
    sqlite3_stmt *s = tg_db_prep(st, sql, err);
    if (s == NULL) return TG_E_STORE;
    if (text != NULL)
        sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
    else if (v > 0)
        sqlite3_bind_int64(s, 1, v);
    else
        sqlite3_bind_null(s, 1);
    sqlite3_bind_int64(s, 2, id);
    return tg_db_done(st, s, err, what);
}

int tg_store_cert_set_key(tg_store *st, int64_t id, int64_t key_id, tg_err *err)
{
    return update_one(st, "UPDATE certs SET key_id=? WHERE id=?", id, key_id, NULL, err,
                      "linking a key");
}

int tg_store_cert_rename(tg_store *st, int64_t id, const char *name, tg_err *err)
{
    return update_one(st, "UPDATE certs SET name=? WHERE id=?", id, 0, name, err,
                      "renaming a certificate");
}

int tg_store_cert_delete(tg_store *st, int64_t id, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM certs WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    return tg_db_done(st, s, err, "deleting a certificate");
}

typedef struct cert_iter {
    tg_store_cert_fn fn;
    void *arg;
    int with_der;
} cert_iter;

static int cert_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    cert_iter *it = arg;
    tg_store_cert c;
    if (cert_from_row(s, &c, it->with_der) != 0)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int stop = it->fn(&c, it->arg) != 0;
    tg_store_cert_clear(&c);
    return stop;
}

static int cert_each(tg_store *st, sqlite3_stmt *s, int with_der, tg_store_cert_fn fn, void *arg,
                     tg_err *err)
{
    cert_iter it = {fn, arg, with_der};
    return tg_db_each(st, s, cert_row, &it, err, "listing certificates");
}

/* A list's or a page's rows: notAfter before ?1 (0: any), CAs or not (?2 as only_ca), and
 * the search ?4 (NULL: none) in the name, the subject's CN or a SAN's value (san_list is
 * [[type, value], …]: the values only, never the type words), ASCII case ignored. The one
 * search rule of both faces (cert list --filter, GET certificates?q=). */
#define PAGE_FILTER                                                                                \
    " WHERE (?1 = 0 OR not_after < ?1) AND (?2 = 0 OR is_ca = (?2 > 0)) AND (?4 IS NULL OR"        \
    " instr(lower(name), lower(?4)) > 0 OR instr(lower(subject_cn), lower(?4)) > 0 OR"             \
    " EXISTS (SELECT 1 FROM json_each(san_list) WHERE"                                             \
    " instr(lower(json_extract(json_each.value, '$[1]')), lower(?4)) > 0))"

static void page_bind(sqlite3_stmt *s, const tg_store_page *p)
{
    sqlite3_bind_int64(s, 1, p->before);
    sqlite3_bind_int(s, 2, p->only_ca);
    if (p->query) sqlite3_bind_text(s, 4, p->query, -1, SQLITE_STATIC);
}

static int count_rows(tg_store *st, const tg_store_page *p, long long *total, tg_err *err)
{
    /* without filters the count is SQLite's count of the smallest index, not a read of
     * every row (100,000 rows: ~1 ms instead of ~25) */
    int filtered = p->only_ca || p->before > 0 || p->query != NULL;
    sqlite3_stmt *s = tg_db_prep(
        st, filtered ? "SELECT count(*) FROM certs" PAGE_FILTER : "SELECT count(*) FROM certs",
        err);
    if (s == NULL) return TG_E_STORE;
    if (filtered) page_bind(s, p);
    int rc = sqlite3_step(s);
    *total = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    rc = rc == SQLITE_ROW ? 0 : tg_db_err(st, err, "counting certificates");
    tg_db_release(st, s);
    return rc;
}

int tg_store_cert_list(tg_store *st, int only_ca, long long before, const char *query,
                       int by_expiry, tg_store_cert_fn fn, void *arg, long long *unfiltered,
                       tg_err *err)
{
    tg_store_page p = {.only_ca = only_ca, .before = before};
    int rc = unfiltered != NULL ? count_rows(st, &p, unfiltered, err) : 0;
    if (rc != 0) return rc;
    p.query = query;
    sqlite3_stmt *s = tg_db_prep(
        st,
        by_expiry ? "SELECT " CERT_COLS " FROM certs" PAGE_FILTER " ORDER BY not_after, name"
                  : "SELECT " CERT_COLS " FROM certs" PAGE_FILTER " ORDER BY name",
        err);
    if (s) page_bind(s, &p);
    return cert_each(st, s, 0, fn, arg, err);
}

int tg_store_cert_each(tg_store *st, int only_ca, long long before, tg_store_cert_fn fn, void *arg,
                       tg_err *err)
{
    return tg_store_cert_list(st, only_ca, before, NULL, 0, fn, arg, NULL, err);
}

int tg_store_cert_page(tg_store *st, const tg_store_page *p, tg_store_cert_fn fn, void *arg,
                       long long *total, tg_err *err)
{
    int rc = count_rows(st, p, total, err);
    if (rc != 0) return rc;
    /* "name > ?3" as such (no "?3 IS NULL OR"): the planner then seeks the cursor in the
     * name index instead of walking the index from its start; "" is before every name */
    sqlite3_stmt *s = tg_db_prep(
        st, "SELECT " CERT_COLS " FROM certs" PAGE_FILTER " AND name > ?3 ORDER BY name LIMIT ?5",
        err);
    if (s) {
        page_bind(s, p);
        sqlite3_bind_text(s, 3, p->after ? p->after : "", -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 5, p->limit);
    }
    return cert_each(st, s, 0, fn, arg, err);
}

int tg_store_cert_each_with_der(tg_store *st, tg_store_cert_fn fn, void *arg, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " CERT_COLS ",der FROM certs ORDER BY id", err);
    return cert_each(st, s, 1, fn, arg, err);
}

int tg_store_ts_cas_each(tg_store *st, int64_t ts, tg_store_cert_fn fn, void *arg, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "SELECT " CERT_COLS ",der FROM certs WHERE id IN (SELECT cert_id "
                                 "FROM truststore_cas WHERE truststore_id=?) ORDER BY name",
                                 err);
    if (s) sqlite3_bind_int64(s, 1, ts);
    return cert_each(st, s, 1, fn, arg, err);
}

int tg_store_cert_each_subject(tg_store *st, const char *subject, tg_store_cert_fn fn, void *arg,
                               tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(
        st, "SELECT " CERT_COLS ",der FROM certs WHERE subject=? ORDER BY not_after DESC", err);
    if (s) sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
    return cert_each(st, s, 1, fn, arg, err);
}

int tg_store_cert_ids_for_spki(tg_store *st, const unsigned char spki[32], int64_t **ids, size_t *n,
                               tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(
        st, "SELECT id FROM certs WHERE spki_sha256=? ORDER BY not_after DESC, id DESC", err);
    if (s) sqlite3_bind_blob(s, 1, spki, 32, SQLITE_STATIC);
    return tg_db_ids(st, s, ids, n, err, "finding the certificates of a key");
}

typedef struct servable_iter {
    tg_store_servable_fn fn;
    void *arg;
} servable_iter;

static int servable_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    (void)err;
    servable_iter *it = arg;
    tg_store_servable v = {sqlite3_column_int64(s, 0),
                           (const char *)sqlite3_column_text(s, 1),
                           (const char *)sqlite3_column_text(s, 2),
                           (const char *)sqlite3_column_text(s, 3),
                           sqlite3_column_int64(s, 4),
                           sqlite3_column_int64(s, 5)};
    return it->fn(&v, it->arg) != 0;
}

int tg_store_servable_each(tg_store *st, tg_store_servable_fn fn, void *arg, tg_err *err)
{
    servable_iter it = {fn, arg};
    sqlite3_stmt *s =
        tg_db_prep(st,
                   "SELECT id,san_list,subject_cn,key_type,not_before,not_after FROM certs"
                   " WHERE key_id IS NOT NULL AND san_list IS NOT NULL",
                   err);
    return tg_db_each(st, s, servable_row, &it, err, "reading certificates");
}

typedef struct expiring_iter {
    tg_store_expiring_fn fn;
    void *arg;
} expiring_iter;

static int expiring_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    (void)err;
    expiring_iter *it = arg;
    return it->fn(sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
                  sqlite3_column_int64(s, 2), it->arg) != 0;
}

int tg_store_servable_expiring(tg_store *st, long long before, tg_store_expiring_fn fn, void *arg,
                               tg_err *err)
{
    expiring_iter it = {fn, arg};
    sqlite3_stmt *s =
        tg_db_prep(st,
                   "SELECT id,name,not_after FROM certs WHERE key_id IS NOT NULL"
                   " AND san_list IS NOT NULL AND not_after<? ORDER BY not_after,name",
                   err);
    if (s) sqlite3_bind_int64(s, 1, before);
    return tg_db_each(st, s, expiring_row, &it, err, "reading certificates");
}

typedef struct tally_iter {
    tg_store_tally_fn fn;
    void *arg;
} tally_iter;

static int tally_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    (void)err;
    tally_iter *it = arg;
    return it->fn((const char *)sqlite3_column_text(s, 0), sqlite3_column_int(s, 1),
                  sqlite3_column_int(s, 2), sqlite3_column_int64(s, 3), it->arg) != 0;
}

int tg_store_cert_tally(tg_store *st, long long now, tg_store_tally_fn fn, void *arg, tg_err *err)
{
    tally_iter it = {fn, arg};
    sqlite3_stmt *s =
        tg_db_prep(st,
                   "SELECT status, key_id IS NOT NULL AND san_list IS NOT NULL,"
                   " CASE WHEN not_after<=?1 THEN 2 WHEN not_before>?1 THEN 1 ELSE 0 END, COUNT(*)"
                   " FROM certs GROUP BY 1, 2, 3",
                   err);
    if (s) sqlite3_bind_int64(s, 1, now);
    return tg_db_each(st, s, tally_row, &it, err, "counting certificates");
}

long long tg_store_data_version(tg_store *st)
{
    sqlite3_stmt *s = tg_db_prep(st, "PRAGMA data_version", NULL);
    if (s == NULL) return -1;
    long long v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    tg_db_release(st, s);
    return v;
}

/* ---- requests ---- */

#define REQ_COLS "id,name,key_id,cert_id,pem,subject,san_list,key_desc,signing,created"

void tg_store_req_clear(tg_store_req *r)
{
    free(r->name);
    free(r->pem);
    free(r->subject);
    free(r->san_list);
    free(r->key_desc);
    memset(r, 0, sizeof(*r));
}

static int req_from_row(sqlite3_stmt *s, tg_store_req *r)
{
    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(s, 0);
    r->name = col_str(s, 1);
    r->key_id = sqlite3_column_int64(s, 2);
    r->cert_id = sqlite3_column_int64(s, 3);
    r->pem = col_str(s, 4);
    r->subject = col_str(s, 5);
    int ok = 1;
    r->san_list = col_str_or_null(s, 6, &ok);
    r->key_desc = col_str(s, 7);
    r->signing = sqlite3_column_int(s, 8);
    r->created = sqlite3_column_int64(s, 9);
    if (!r->name || !r->pem || !r->subject || !ok || !r->key_desc) {
        tg_store_req_clear(r);
        return TG_E_INTERNAL;
    }
    return 0;
}

static int req_one(tg_store *st, sqlite3_stmt *s, tg_store_req *out, tg_err *err)
{
    if (s == NULL) return TG_E_STORE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        rc = req_from_row(s, out) == 0 ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    else if (rc == SQLITE_DONE)
        rc = TG_E_NOTFOUND;
    else
        rc = tg_db_err(st, err, "reading a request");
    tg_db_release(st, s);
    return rc;
}

int tg_store_req_add(tg_store *st, tg_store_req *r, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "INSERT INTO requests(name,key_id,pem,subject,san_list,key_desc,"
                                 "signing,created) VALUES(?,?,?,?,?,?,?,?)",
                                 err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, r->key_id);
    sqlite3_bind_text(s, 3, r->pem, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, r->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, r->san_list ? r->san_list : "[]", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, r->key_desc, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 7, r->signing);
    r->created = (long long)time(NULL);
    sqlite3_bind_int64(s, 8, r->created);
    int rc = tg_db_done(st, s, err, "storing a request");
    if (rc == 0) r->id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int tg_store_req_get(tg_store *st, int64_t id, tg_store_req *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " REQ_COLS " FROM requests WHERE id=?", err);
    if (s) sqlite3_bind_int64(s, 1, id);
    return req_one(st, s, out, err);
}

int tg_store_req_by_name(tg_store *st, const char *name, tg_store_req *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " REQ_COLS " FROM requests WHERE name=?", err);
    if (s) sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    return req_one(st, s, out, err);
}

int tg_store_req_pending_for_key(tg_store *st, int64_t key_id, tg_store_req *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(
        st,
        "SELECT " REQ_COLS " FROM requests WHERE key_id=? AND cert_id IS NULL ORDER BY id LIMIT 1",
        err);
    if (s) sqlite3_bind_int64(s, 1, key_id);
    return req_one(st, s, out, err);
}

int tg_store_req_set_cert(tg_store *st, int64_t id, int64_t cert_id, tg_err *err)
{
    return update_one(st, "UPDATE requests SET cert_id=? WHERE id=?", id, cert_id, NULL, err,
                      "completing a request");
}

int tg_store_req_delete(tg_store *st, int64_t id, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM requests WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    return tg_db_done(st, s, err, "deleting a request");
}

typedef struct req_iter {
    tg_store_req_fn fn;
    void *arg;
} req_iter;

static int req_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    req_iter *it = arg;
    tg_store_req r;
    if (req_from_row(s, &r) != 0) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int stop = it->fn(&r, it->arg) != 0;
    tg_store_req_clear(&r);
    return stop;
}

int tg_store_req_each(tg_store *st, tg_store_req_fn fn, void *arg, tg_err *err)
{
    req_iter it = {fn, arg};
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " REQ_COLS " FROM requests ORDER BY name", err);
    return tg_db_each(st, s, req_row, &it, err, "listing requests");
}

/* ---- references ---- */

int tg_store_ref_set(tg_store *st, const char *holder, int64_t cert_id, tg_err *err)
{
    /* A holder such as the default certificate refers to one certificate at a time. */
    sqlite3_stmt *d = tg_db_prep(st, "DELETE FROM refs WHERE holder=?", err);
    if (d == NULL) return TG_E_STORE;
    sqlite3_bind_text(d, 1, holder, -1, SQLITE_STATIC);
    int rc = tg_db_done(st, d, err, "setting a reference");
    if (rc != 0) return rc;
    sqlite3_stmt *s = tg_db_prep(st, "INSERT INTO refs(holder,cert_id) VALUES(?,?)", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, holder, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, cert_id);
    return tg_db_done(st, s, err, "setting a reference");
}

int64_t tg_store_ref_get(tg_store *st, const char *holder)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT cert_id FROM refs WHERE holder=?", NULL);
    if (s == NULL) return 0;
    sqlite3_bind_text(s, 1, holder, -1, SQLITE_STATIC);
    int64_t id = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    tg_db_release(st, s);
    return id;
}

int tg_store_ref_holder(tg_store *st, int64_t cert_id, char *buf, size_t bufsize)
{
    sqlite3_stmt *s =
        tg_db_prep(st, "SELECT holder FROM refs WHERE cert_id=? ORDER BY holder LIMIT 1", NULL);
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

int tg_store_ref_move(tg_store *st, int64_t from, int64_t to, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "UPDATE OR IGNORE refs SET cert_id=? WHERE cert_id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, to);
    sqlite3_bind_int64(s, 2, from);
    int rc = tg_db_done(st, s, err, "moving references");
    if (rc != 0) return rc;
    s = tg_db_prep(st, "DELETE FROM refs WHERE cert_id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, from);
    return tg_db_done(st, s, err, "moving references");
}

int tg_store_cert_set_status(tg_store *st, int64_t id, const char *status, const char *chain_ids,
                             tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "UPDATE certs SET status=?, chain_ids=? WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, chain_ids, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, id);
    return tg_db_done(st, s, err, "recording a chain status");
}

int tg_store_chain_unfilled(tg_store *st)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT 1 FROM certs WHERE chain_ids IS NULL LIMIT 1", NULL);
    if (s == NULL) return 0;
    int found = sqlite3_step(s) == SQLITE_ROW;
    tg_db_release(st, s);
    return found;
}

int tg_store_cert_in_chains(tg_store *st, int64_t id)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "SELECT 1 FROM certs, json_each(certs.chain_ids) j "
                                 "WHERE j.value=? LIMIT 1",
                                 NULL);
    if (s == NULL) return 1; /* unknown: the caller recomputes */
    sqlite3_bind_int64(s, 1, id);
    int found = sqlite3_step(s) == SQLITE_ROW;
    tg_db_release(st, s);
    return found;
}

/* ---- serving: the leaf, its stored chain's DER and its sealed key, in one query ---- */

void tg_store_served_clear(tg_store_served *r)
{
    free(r->name);
    free(r->der);
    for (size_t i = 0; i < r->nchain; i++)
        free(r->chain[i].der);
    memset(r, 0, sizeof(*r));
}

static unsigned char *blob_dup(sqlite3_stmt *s, int i, size_t *len)
{
    *len = (size_t)sqlite3_column_bytes(s, i);
    unsigned char *p = malloc(*len ? *len : 1);
    if (p != NULL && *len) memcpy(p, sqlite3_column_blob(s, i), *len);
    return p;
}

int tg_store_served_get(tg_store *st, int64_t id, tg_store_served *out, tg_err *err)
{
    memset(out, 0, sizeof(*out));
    /* One row per stored chain member (or one row with NULLs when there is none), in chain
     * order; a member that no longer exists comes back without DER and ends the chain. */
    sqlite3_stmt *s =
        tg_db_prep(st,
                   "SELECT c.name, c.key_id, c.der, j.value, coalesce(x.der, d.der) FROM certs c"
                   " LEFT JOIN json_each(CASE WHEN json_valid(c.chain_ids) THEN c.chain_ids END) j"
                   " LEFT JOIN certs x ON j.value > 0 AND x.id = j.value"
                   " LEFT JOIN default_cas d ON j.value < 0 AND d.rowid = -j.value"
                   " WHERE c.id=? ORDER BY j.key",
                   err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    int rc, first = 1, ok = 1, ended = 0;
    while (ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (first) {
            first = 0;
            out->name = tg_strdup((const char *)sqlite3_column_text(s, 0));
            out->key_id = sqlite3_column_int64(s, 1);
            out->der = blob_dup(s, 2, &out->derlen);
            ok = out->name != NULL && out->der != NULL;
        }
        if (!ok || ended || sqlite3_column_type(s, 3) == SQLITE_NULL) continue;
        if (sqlite3_column_type(s, 4) == SQLITE_NULL || out->nchain == TG_STORE_CHAIN_MAX) {
            ended = 1; /* dangling: the chain is sent as far as it holds */
            continue;
        }
        tg_store_member *m = &out->chain[out->nchain];
        m->id = sqlite3_column_int64(s, 3);
        m->der = blob_dup(s, 4, &m->derlen);
        if (m->der == NULL)
            ok = 0;
        else
            out->nchain++;
    }
    if (!ok)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    else if (rc != SQLITE_DONE)
        rc = tg_db_err(st, err, "reading a certificate");
    else
        rc = first ? TG_E_NOTFOUND : 0;
    tg_db_release(st, s);
    if (rc != 0) tg_store_served_clear(out);
    return rc;
}

/* ---- rows from before schema 3 ---- */

int tg_store_unfilled(tg_store *st, int requests, int64_t **ids, size_t *n, tg_err *err)
{
    sqlite3_stmt *s = requests
                          ? tg_db_prep(st, "SELECT id FROM requests WHERE san_list IS NULL", err)
                          : tg_db_prep(st, "SELECT id FROM certs WHERE san_list IS NULL", err);
    return tg_db_ids(st, s, ids, n, err, "finding rows to fill");
}

int tg_store_cert_set_facts(tg_store *st, int64_t id, const char *san_list, const char *key_type,
                            int key_bits, tg_err *err)
{
    sqlite3_stmt *s =
        tg_db_prep(st, "UPDATE certs SET san_list=?, key_type=?, key_bits=? WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, san_list, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key_type, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, key_bits);
    sqlite3_bind_int64(s, 4, id);
    return tg_db_done(st, s, err, "filling a certificate's facts");
}

int tg_store_req_set_sans(tg_store *st, int64_t id, const char *san_list, tg_err *err)
{
    return update_one(st, "UPDATE requests SET san_list=? WHERE id=?", id, 0, san_list, err,
                      "filling a request's names");
}
