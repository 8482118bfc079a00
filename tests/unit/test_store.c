/*
 * test_store.c — sealing (tampering is refused), transactions, reopening, proxy rows,
 * policy rows, default domains and categories.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

static char home[256];

static int setup(void **state)
{
    (void)state;
    snprintf(home, sizeof home, "/tmp/tg-unit-store-XXXXXX");
    return mkdtemp(home) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    return system(cmd);
}

static void seal_roundtrip_and_tamper(void **state)
{
    (void)state;
    unsigned char key[32] = {1, 2, 3}, *sealed, *pt;
    size_t slen, plen;
    const unsigned char msg[] = "private key bytes";
    assert_int_equal(
        tg_seal(key, (const unsigned char *)"row-1", 5, msg, sizeof msg, &sealed, &slen, NULL), 0);
    assert_int_equal(slen, sizeof msg + TG_SEAL_OVERHEAD);
    assert_null(memmem(sealed, slen, msg, sizeof msg - 1));
    assert_int_equal(
        tg_unseal(key, (const unsigned char *)"row-1", 5, sealed, slen, &pt, &plen, NULL), 0);
    assert_memory_equal(pt, msg, sizeof msg);
    tg_free_secret(pt, plen);
    /* another row's identity */
    tg_err e = {0};
    assert_int_equal(
        tg_unseal(key, (const unsigned char *)"row-2", 5, sealed, slen, &pt, &plen, &e),
        TG_E_STORE);
    assert_non_null(strstr(e.msg, "integrity"));
    /* every single flipped byte is detected */
    for (size_t i = 0; i < slen; i++) {
        sealed[i] ^= 0x40;
        assert_int_not_equal(
            tg_unseal(key, (const unsigned char *)"row-1", 5, sealed, slen, &pt, &plen, NULL), 0);
        assert_null(pt);
        sealed[i] ^= 0x40;
    }
    /* a different key */
    key[0] ^= 1;
    assert_int_equal(
        tg_unseal(key, (const unsigned char *)"row-1", 5, sealed, slen, &pt, &plen, NULL),
        TG_E_STORE);
    free(sealed);
}

static void add_key(tg_store *st, unsigned char fill, int64_t *id)
{
    tg_store_key k = {.exportable = 1};
    memset(k.spki_sha256, fill, 32);
    strcpy(k.descr, "EC P-256");
    unsigned char priv[40];
    memset(priv, fill, sizeof priv);
    assert_int_equal(tg_store_key_add(st, &k, priv, sizeof priv, NULL), 0);
    *id = k.id;
}

static void tampered_key_row_refused(void **state)
{
    (void)state;
    tg_store *st = NULL;
    assert_int_equal(tg_store_open(home, &st, NULL), 0);
    int64_t a, b;
    assert_int_equal(tg_store_begin(st, NULL), 0);
    add_key(st, 0xA1, &a);
    add_key(st, 0xB2, &b);
    assert_int_equal(tg_store_commit(st, NULL), 0);
    unsigned char *priv;
    size_t len;
    assert_int_equal(tg_store_key_unseal(st, a, &priv, &len, NULL), 0);
    assert_int_equal(len, 40);
    assert_int_equal(priv[0], 0xA1);
    tg_free_secret(priv, len);
    tg_store_close(st);

    /* swap the sealed blobs of the two rows behind the store's back */
    char db[300];
    snprintf(db, sizeof db, "%s/store.db", home);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(h,
                     "CREATE TEMP TABLE t AS SELECT id, sealed FROM keys;"
                     "UPDATE keys SET sealed = (SELECT sealed FROM t WHERE t.id = 3 - keys.id)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(tg_store_open(home, &st, NULL), 0);
    tg_err e = {0};
    assert_int_equal(tg_store_key_unseal(st, a, &priv, &len, &e), TG_E_STORE);
    assert_null(priv);
    assert_int_equal(tg_store_key_unseal(st, b, &priv, &len, NULL), TG_E_STORE);
    tg_store_close(st);
}

static void rollback_leaves_nothing(void **state)
{
    (void)state;
    tg_store *st = NULL;
    assert_int_equal(tg_store_open(home, &st, NULL), 0);
    assert_int_equal(tg_store_begin(st, NULL), 0);
    int64_t id;
    add_key(st, 0xC3, &id);
    assert_int_equal(tg_store_setting_set(st, "probe", "1", NULL), 0);
    tg_store_rollback(st);
    tg_store_key k;
    unsigned char spki[32];
    memset(spki, 0xC3, 32);
    assert_int_equal(tg_store_key_find(st, spki, &k, NULL), TG_E_NOTFOUND);
    char v[8];
    assert_int_equal(tg_store_setting_get(st, "probe", v, sizeof v, NULL), TG_E_NOTFOUND);
    /* a duplicate is a conflict, not a crash, and the transaction can still roll back */
    assert_int_equal(tg_store_begin(st, NULL), 0);
    tg_store_key dup = {.exportable = 1};
    memset(dup.spki_sha256, 0xA1, 32); /* exists from the previous test */
    tg_store_key have;
    assert_int_equal(tg_store_key_find(st, dup.spki_sha256, &have, NULL), 0);
    unsigned char priv[4] = {0};
    tg_err e = {0};
    assert_int_equal(tg_store_key_add(st, &dup, priv, sizeof priv, &e), TG_E_CONFLICT);
    tg_store_rollback(st);
    tg_store_close(st);
}

static void master_key_file(void **state)
{
    (void)state;
    char path[300], moved[300];
    snprintf(path, sizeof path, "%s/master.key", home);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sb.st_size, 32);
    snprintf(moved, sizeof moved, "%s/master.key.away", home);
    assert_int_equal(rename(path, moved), 0);
    tg_store *st = NULL;
    assert_int_equal(tg_store_open(home, &st, NULL), 0);
    unsigned char *priv;
    size_t len;
    tg_err e = {0};
    /* without the master key no sealed key opens, and no new master key is made */
    assert_int_equal(tg_store_key_unseal(st, 1, &priv, &len, &e), TG_E_STORE);
    assert_non_null(strstr(e.msg, "master key"));
    assert_int_not_equal(stat(path, &sb), 0);
    tg_store_close(st);
    assert_int_equal(rename(moved, path), 0);
}

static int pragma_int(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *s;
    int v = -1;
    if (sqlite3_open(db, &h) != SQLITE_OK) return -1;
    if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(h);
    return v;
}

static void migrations(void **state)
{
    (void)state;
    char db[300];
    snprintf(db, sizeof db, "%s/store.db", home);
    tg_store *st = NULL;
    int64_t id;
    assert_int_equal(tg_store_open(home, &st, NULL), 0);
    assert_int_equal(tg_store_begin(st, NULL), 0);
    add_key(st, 0xD4, &id);
    assert_int_equal(tg_store_commit(st, NULL), 0);
    tg_store_close(st);
    int current = pragma_int(db, "PRAGMA user_version");
    assert_true(current >= 2);
    /* a version-1 store (its index and SAN columns as they were) is migrated on open,
     * keys intact */
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h,
                                  "DROP TABLE proxy_certs;"
                                  "DROP TABLE acme_challenges; DROP TABLE acme_certs;"
                                  "DROP TABLE acme_accounts;"
                                  "DROP TABLE tokens; DROP TABLE users; DROP TABLE audit;"
                                  "DROP TABLE identity_conf; DROP TABLE sealed_values;"
                                  "DROP TABLE est_secrets; DROP TABLE est_devices;"
                                  "DROP TABLE group_denied; DROP TABLE groups;"
                                  "DROP TABLE proxies;"
                                  "DROP TABLE policy_entries; DROP TABLE policies;"
                                  "DROP TABLE default_domains; DROP TABLE categories;"
                                  "DROP INDEX certs_chain_unfilled;"
                                  "ALTER TABLE certs DROP COLUMN chain_ids;"
                                  "DROP INDEX certs_spki_after;"
                                  "CREATE INDEX certs_spki ON certs(spki_sha256);"
                                  "DROP INDEX certs_unfilled; DROP INDEX requests_unfilled;"
                                  "ALTER TABLE certs DROP COLUMN san_list;"
                                  "ALTER TABLE certs DROP COLUMN key_type;"
                                  "ALTER TABLE certs DROP COLUMN key_bits;"
                                  "ALTER TABLE certs ADD COLUMN sans TEXT NOT NULL DEFAULT '';"
                                  "ALTER TABLE requests DROP COLUMN san_list;"
                                  "ALTER TABLE requests ADD COLUMN sans TEXT NOT NULL DEFAULT '';"
                                  "PRAGMA user_version=1;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(tg_store_open(home, &st, NULL), 0);
    unsigned char *priv;
    size_t len;
    assert_int_equal(tg_store_key_unseal(st, id, &priv, &len, NULL), 0);
    assert_int_equal(priv[0], 0xD4);
    tg_free_secret(priv, len);
    tg_store_close(st);
    assert_int_equal(pragma_int(db, "PRAGMA user_version"), current);
    assert_int_equal(
        pragma_int(db, "SELECT count(*) FROM sqlite_master WHERE name='certs_spki_after'"), 1);
    /* a store from a newer tlsgate is refused, not rewritten */
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    tg_err e = {0};
    assert_int_equal(tg_store_open(home, &st, &e), TG_E_STORE);
    assert_non_null(strstr(e.msg, "newer"));
    assert_int_equal(pragma_int(db, "PRAGMA user_version"), 99);
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", current);
    sqlite3_exec(h, sql, NULL, NULL, NULL);
    sqlite3_close(h);
}

static int64_t add_cert(tg_store *st, const char *name, unsigned char fill)
{
    unsigned char der[8];
    memset(der, fill, sizeof der);
    tg_store_cert c = {.name = (char *)name,
                       .der = der,
                       .derlen = sizeof der,
                       .subject = "CN=x",
                       .subject_cn = "x",
                       .issuer = "CN=x",
                       .issuer_cn = "x",
                       .serial = "01",
                       .key_desc = "EC P-256",
                       .sigalg = "ecdsa-with-SHA256",
                       .is_ca = 1};
    memset(c.sha256, 'A' + fill % 16, 64);
    memset(c.spki_sha256, fill, 32);
    assert_int_equal(tg_store_cert_add(st, &c, NULL), 0);
    return c.id;
}

static int count_proxy(const tg_store_proxy *p, void *arg)
{
    (void)p;
    ++*(int *)arg;
    return 0;
}

/* Proxy rows: names joined from their references, unique names, the kind checked, and a
 * referenced certificate or trust store kept by the foreign keys. */
static void proxy_rows(void **state)
{
    (void)state;
    tg_store *st = NULL;
    assert_int_equal(tg_store_open(home, &st, NULL), 0);
    assert_int_equal(tg_store_begin(st, NULL), 0);
    int64_t ca = add_cert(st, "sign-a", 0x51), cb = add_cert(st, "sign-b", 0x52);
    tg_store_ts ts = {.name = "up", .description = ""};
    assert_int_equal(tg_store_ts_add(st, &ts, NULL), 0);
    tg_store_proxy p = {.name = "p1",
                        .kind = "client",
                        .signing_cert_id = ca,
                        .truststore_id = ts.id,
                        .config = "{\"mode\":\"explicit\"}"};
    assert_int_equal(tg_store_proxy_add(st, &p, NULL), 0);
    assert_true(p.id > 0 && p.created > 0 && p.updated == p.created);
    tg_store_proxy dup = {.name = "p1", .kind = "server", .config = "{}"};
    tg_err e = {0};
    assert_int_equal(tg_store_proxy_add(st, &dup, &e), TG_E_CONFLICT);
    tg_store_proxy odd = {.name = "p2", .kind = "other", .config = "{}"};
    assert_int_equal(tg_store_proxy_add(st, &odd, NULL), TG_E_CONFLICT);
    tg_store_proxy srv = {.name = "p0", .kind = "server", .config = "{}"};
    assert_int_equal(tg_store_proxy_add(st, &srv, NULL), 0);
    assert_int_equal(tg_store_commit(st, NULL), 0);

    tg_store_proxy got;
    assert_int_equal(tg_store_proxy_by_name(st, "p1", &got, NULL), 0);
    assert_string_equal(got.kind, "client");
    assert_string_equal(got.signing_name, "sign-a");
    assert_string_equal(got.truststore_name, "up");
    assert_string_equal(got.config, "{\"mode\":\"explicit\"}");
    tg_store_proxy_clear(&got);
    assert_int_equal(tg_store_proxy_by_name(st, "p0", &got, NULL), 0);
    assert_null(got.signing_name);
    assert_null(got.truststore_name);
    tg_store_proxy_clear(&got);
    assert_int_equal(tg_store_proxy_by_name(st, "none", &got, NULL), TG_E_NOTFOUND);
    int n = 0;
    assert_int_equal(tg_store_proxy_each(st, "client", count_proxy, &n, NULL), 0);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(tg_store_proxy_each(st, NULL, count_proxy, &n, NULL), 0);
    assert_int_equal(n, 2);

    /* in use: the foreign keys refuse, even if the keyring forgot to ask */
    assert_int_equal(tg_store_begin(st, NULL), 0);
    assert_int_equal(tg_store_cert_delete(st, ca, NULL), TG_E_CONFLICT);
    tg_store_rollback(st);
    assert_int_equal(tg_store_begin(st, NULL), 0);
    assert_int_equal(tg_store_ts_delete(st, ts.id, NULL), TG_E_CONFLICT);
    tg_store_rollback(st);
    assert_int_equal(tg_store_proxy_by_cert(st, ca, &got, NULL), 0);
    assert_string_equal(got.name, "p1");
    tg_store_proxy_clear(&got);
    assert_int_equal(tg_store_proxy_by_truststore(st, ts.id, &got, NULL), 0);
    tg_store_proxy_clear(&got);

    /* a replacement moves the reference; then the old certificate may go */
    assert_int_equal(tg_store_begin(st, NULL), 0);
    assert_int_equal(tg_store_proxy_move_signing(st, ca, cb, NULL), 0);
    assert_int_equal(tg_store_cert_delete(st, ca, NULL), 0);
    assert_int_equal(tg_store_commit(st, NULL), 0);
    assert_int_equal(tg_store_proxy_by_cert(st, ca, &got, NULL), TG_E_NOTFOUND);
    assert_int_equal(tg_store_proxy_by_name(st, "p1", &got, NULL), 0);
    assert_string_equal(got.signing_name, "sign-b");
    free(got.config);
    got.config = tg_strdup("{}");
    got.truststore_id = 0;
    assert_int_equal(tg_store_begin(st, NULL), 0);
    assert_int_equal(tg_store_proxy_update(st, &got, NULL), 0);
    assert_int_equal(tg_store_ts_delete(st, ts.id, NULL), 0);
    assert_int_equal(tg_store_proxy_delete(st, got.id, NULL), 0);
    assert_int_equal(tg_store_proxy_delete(st, srv.id, NULL), 0);
    assert_int_equal(tg_store_cert_delete(st, cb, NULL), 0);
    assert_int_equal(tg_store_commit(st, NULL), 0);
    tg_store_proxy_clear(&got);
    tg_store_close(st);
}

typedef struct texts {
    char v[8][64];
    int n;
} texts;

static int collect_text(const char *value, void *arg)
{
    texts *t = arg;
    if (t->n == 8) return TG_E_INTERNAL; /* a negative result is passed on */
    snprintf(t->v[t->n++], sizeof t->v[0], "%s", value);
    return 0;
}

static int collect_pair(const char *a, const char *b, void *arg)
{
    texts *t = arg;
    snprintf(t->v[t->n++], sizeof t->v[0], "%s=%s", a, b);
    return t->n == 2; /* a positive result stops, and is no error */
}

static int collect_count(const char *name, long long n, void *arg)
{
    texts *t = arg;
    snprintf(t->v[t->n++], sizeof t->v[0], "%s:%lld", name, n);
    return 0;
}

/* Policies: rows and their lists (each value once, gone with the policy), the list names
 * checked by the schema, a policy in use kept by the foreign key; the default domains
 * and the category map; a wipe empties them all. */
static void policy_rows(void **state)
{
    (void)state;
    tg_store *st = NULL;
    assert_int_equal(tg_store_open(home, &st, NULL), 0);
    assert_int_equal(tg_store_begin(st, NULL), 0);
    tg_store_policy p = {.name = "office", .description = "d"};
    assert_int_equal(tg_store_policy_add(st, &p, NULL), 0);
    assert_true(p.id > 0 && p.created > 0);
    tg_store_policy dup = {.name = "office"};
    assert_int_equal(tg_store_policy_add(st, &dup, NULL), TG_E_CONFLICT);
    int added = -1;
    assert_int_equal(
        tg_store_policy_entry_add(st, p.id, "never_domains", "b.example", &added, NULL), 0);
    assert_int_equal(added, 1);
    assert_int_equal(
        tg_store_policy_entry_add(st, p.id, "never_domains", "b.example", &added, NULL), 0);
    assert_int_equal(added, 0);
    assert_int_equal(
        tg_store_policy_entry_add(st, p.id, "never_domains", "*.a.example", NULL, NULL), 0);
    assert_int_equal(tg_store_policy_entry_add(st, p.id, "never_sources", "10.0.0.0/8", NULL, NULL),
                     0);
    assert_int_equal(
        tg_store_policy_entry_add(st, p.id, "always_sources", "10.0.0.0/8", NULL, NULL), 0);
    assert_int_equal(tg_store_policy_entry_add(st, p.id, "sometimes", "x", NULL, NULL),
                     TG_E_CONFLICT);
    assert_int_equal(tg_store_commit(st, NULL), 0);

    texts t = {0};
    assert_int_equal(
        tg_store_policy_entries_each(st, p.id, "never_domains", collect_text, &t, NULL), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.v[0], "*.a.example"); /* byte order */
    assert_string_equal(t.v[1], "b.example");
    long long n = -1;
    assert_int_equal(tg_store_policy_entry_count(st, p.id, "never_domains", &n, NULL), 0);
    assert_int_equal(n, 2);
    char buf[64];
    assert_int_equal(
        tg_store_policy_entry_shared(st, p.id, "never_sources", "always_sources", buf, sizeof buf),
        1);
    assert_string_equal(buf, "10.0.0.0/8");
    assert_int_equal(
        tg_store_policy_entry_shared(st, p.id, "never_domains", "always_sources", buf, sizeof buf),
        0);

    /* in use by a proxy: the foreign key refuses the deletion */
    assert_int_equal(tg_store_begin(st, NULL), 0);
    tg_store_proxy px = {.name = "px", .kind = "server", .config = "{}", .policy_id = p.id};
    assert_int_equal(tg_store_proxy_add(st, &px, NULL), 0);
    assert_int_equal(tg_store_commit(st, NULL), 0);
    tg_store_proxy got;
    assert_int_equal(tg_store_proxy_by_policy(st, p.id, &got, NULL), 0);
    assert_string_equal(got.policy_name, "office");
    tg_store_proxy_clear(&got);
    assert_int_equal(tg_store_begin(st, NULL), 0);
    assert_int_equal(tg_store_policy_delete(st, p.id, NULL), TG_E_CONFLICT);
    tg_store_rollback(st);
    assert_int_equal(tg_store_begin(st, NULL), 0);
    assert_int_equal(tg_store_proxy_delete(st, px.id, NULL), 0);
    assert_int_equal(tg_store_policy_entry_remove(st, p.id, "always_sources", "10.0.0.0/8", NULL),
                     0);
    assert_int_equal(tg_store_policy_entry_remove(st, p.id, "always_sources", "10.0.0.0/8", NULL),
                     TG_E_NOTFOUND);
    assert_int_equal(tg_store_policy_delete(st, p.id, NULL), 0);
    assert_int_equal(tg_store_commit(st, NULL), 0);
    assert_int_equal(tg_store_proxy_by_policy(st, p.id, &got, NULL), TG_E_NOTFOUND);
    t.n = 0;
    assert_int_equal(
        tg_store_policy_entries_each(st, p.id, "never_domains", collect_text, &t, NULL), 0);
    assert_int_equal(t.n, 0); /* the lists went with it */

    /* default domains and categories */
    assert_int_equal(tg_store_begin(st, NULL), 0);
    assert_int_equal(tg_store_defdomains_add(st, "z.example", NULL), 0);
    assert_int_equal(tg_store_defdomains_add(st, "z.example", NULL), 0);
    assert_int_equal(tg_store_defdomains_add(st, "*.y.example", NULL), 0);
    assert_int_equal(tg_store_category_put(st, "bank.example", "finance", NULL), 0);
    assert_int_equal(tg_store_category_put(st, "*.clinic.example", "health", NULL), 0);
    assert_int_equal(tg_store_category_put(st, "bank.example", "banking", NULL), 0); /* replaced */
    assert_int_equal(tg_store_commit(st, NULL), 0);
    assert_int_equal(tg_store_defdomains_count(st), 2);
    t.n = 0;
    assert_int_equal(tg_store_defdomains_each(st, collect_text, &t, NULL), 0);
    assert_string_equal(t.v[0], "*.y.example");
    assert_int_equal(tg_store_categories_count(st), 2);
    assert_int_equal(tg_store_category_get(st, "bank.example", buf, sizeof buf, NULL), 0);
    assert_string_equal(buf, "banking");
    assert_int_equal(tg_store_category_get(st, "x.clinic.example", buf, sizeof buf, NULL),
                     TG_E_NOTFOUND);
    t.n = 0;
    assert_int_equal(tg_store_category_counts(st, collect_count, &t, NULL), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.v[0], "banking:1");
    assert_string_equal(t.v[1], "health:1");
    t.n = 0;
    assert_int_equal(tg_store_categories_each(st, collect_pair, &t, NULL), 0);
    assert_int_equal(t.n, 2);
    /* a negative result from the callback is the call's result */
    t.n = 8;
    assert_int_equal(tg_store_defdomains_each(st, collect_text, &t, NULL), TG_E_INTERNAL);

    /* a wipe empties all of them */
    assert_int_equal(tg_store_begin(st, NULL), 0);
    tg_store_policy q = {.name = "gone"};
    assert_int_equal(tg_store_policy_add(st, &q, NULL), 0);
    assert_int_equal(tg_store_policy_entry_add(st, q.id, "never_categories", "health", NULL, NULL),
                     0);
    assert_int_equal(tg_store_commit(st, NULL), 0);
    assert_int_equal(tg_store_begin(st, NULL), 0);
    assert_int_equal(tg_store_wipe(st, NULL), 0);
    assert_int_equal(tg_store_commit(st, NULL), 0);
    assert_int_equal(tg_store_policy_by_name(st, "gone", &dup, NULL), TG_E_NOTFOUND);
    assert_int_equal(tg_store_defdomains_count(st), 0);
    assert_int_equal(tg_store_categories_count(st), 0);
    long long removed = -1;
    assert_int_equal(tg_store_begin(st, NULL), 0);
    assert_int_equal(tg_store_categories_clear(st, &removed, NULL), 0);
    assert_int_equal(tg_store_commit(st, NULL), 0);
    assert_int_equal(removed, 0);
    tg_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seal_roundtrip_and_tamper),
        cmocka_unit_test(tampered_key_row_refused),
        cmocka_unit_test(rollback_leaves_nothing),
        cmocka_unit_test(master_key_file),
        cmocka_unit_test(migrations),
        cmocka_unit_test(proxy_rows),
        cmocka_unit_test(policy_rows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
