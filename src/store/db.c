/*
 * db.c — opening the store: pragmas, schema migrations, the master key and data key,
 * transactions and settings.
 *
 * Invariants: the database is in WAL mode with synchronous=FULL (a command that said
 * "done" survives a crash); PRAGMA user_version is the schema version and every
 * migration runs inside one transaction; the data key that seals private keys is
 * itself sealed under the 32-byte master key file (mode 0600) beside the database.
 * Key hygiene (docs/store.md): the data key and master key are kept only in the locked
 * page st->secrets (the heap copies made while reading master.key or unsealing are
 * wiped at once); a transaction that deletes secrets is followed by a WAL
 * checkpoint that truncates the WAL; a factory reset (tg_store_rekey) replaces store
 * id, data key and master key, the new master key taking the old one's place only once
 * the transaction has committed. The busy timeout (10 s) covers every step of opening.
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TG_SCHEMA_VERSION 11
#define TG_BUSY_MS        10000 /* README: concurrent commands wait up to 10 s */

static const char *const migrations[TG_SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);"
    "CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT NOT NULL);"
    "CREATE TABLE keys ("
    "  id INTEGER PRIMARY KEY, uid BLOB NOT NULL UNIQUE, spki_sha256 BLOB NOT NULL UNIQUE,"
    "  descr TEXT NOT NULL, exportable INTEGER NOT NULL, sealed BLOB NOT NULL,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE requests ("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  key_id INTEGER NOT NULL REFERENCES keys(id), pem TEXT NOT NULL, subject TEXT NOT NULL,"
    "  sans TEXT NOT NULL, key_desc TEXT NOT NULL, signing INTEGER NOT NULL,"
    "  cert_id INTEGER REFERENCES certs(id) ON DELETE SET NULL, created INTEGER NOT NULL);"
    "CREATE TABLE certs ("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  der BLOB NOT NULL, sha256 TEXT NOT NULL UNIQUE, spki_sha256 BLOB NOT NULL,"
    "  key_id INTEGER REFERENCES keys(id),"
    "  subject TEXT NOT NULL, subject_cn TEXT NOT NULL, issuer TEXT NOT NULL,"
    "  issuer_cn TEXT NOT NULL, serial TEXT NOT NULL, sans TEXT NOT NULL,"
    "  key_desc TEXT NOT NULL, sigalg TEXT NOT NULL,"
    "  not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
    "  is_ca INTEGER NOT NULL, self_signed INTEGER NOT NULL,"
    "  predecessor_id INTEGER REFERENCES certs(id) ON DELETE SET NULL,"
    "  request_id INTEGER REFERENCES requests(id) ON DELETE SET NULL,"
    "  protected INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT '',"
    "  created INTEGER NOT NULL);"
    "CREATE INDEX certs_spki ON certs(spki_sha256);"
    "CREATE INDEX certs_key ON certs(key_id);"
    "CREATE INDEX certs_subject ON certs(subject);"
    "CREATE INDEX certs_pred ON certs(predecessor_id);"
    "CREATE INDEX requests_key ON requests(key_id);"
    "CREATE TABLE refs (holder TEXT NOT NULL,"
    "  cert_id INTEGER NOT NULL REFERENCES certs(id), PRIMARY KEY (holder, cert_id));"
    "CREATE INDEX refs_cert ON refs(cert_id);"
    "CREATE TABLE truststores ("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL,"
    "  include_defaults INTEGER NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE truststore_cas ("
    "  truststore_id INTEGER NOT NULL REFERENCES truststores(id) ON DELETE CASCADE,"
    "  cert_id INTEGER NOT NULL REFERENCES certs(id), PRIMARY KEY (truststore_id, cert_id));"
    "CREATE INDEX truststore_cas_cert ON truststore_cas(cert_id);"
    "CREATE TABLE default_cas (sha256 TEXT PRIMARY KEY, subject TEXT NOT NULL,"
    "  der BLOB NOT NULL);"
    "CREATE INDEX default_cas_subject ON default_cas(subject);",
    /* 1 -> 2: the newest certificate of a key is found without sorting all of them
     * (a renewal check on every import; quadratic with many certificates per key) */
    "CREATE INDEX certs_spki_after ON certs(spki_sha256, not_after);"
    "DROP INDEX certs_spki;",
    /* 2 -> 3: SANs as a list (JSON [[type, value], ...]) instead of "DNS:a, IP:b", which
     * was split again and let one dNSName holding ", DNS:x" stand for two names; the key
     * as type and bits instead of "RSA 2048". The old text is not parsed: the keyring
     * fills san_list (NULL meanwhile, and never served) from the DER or the CSR. */
    "ALTER TABLE certs ADD COLUMN san_list TEXT;"
    "ALTER TABLE certs ADD COLUMN key_type TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE certs ADD COLUMN key_bits INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE certs DROP COLUMN sans;"
    "ALTER TABLE requests ADD COLUMN san_list TEXT;"
    "ALTER TABLE requests DROP COLUMN sans;"
    "CREATE INDEX certs_unfilled ON certs(id) WHERE san_list IS NULL;"
    "CREATE INDEX requests_unfilled ON requests(id) WHERE san_list IS NULL;",
    /* 3 -> 4: the chain built with the status, as ids (JSON [12, 7, -3]: nearest first;
     * positive: certs.id, negative: -default_cas.rowid; leaf and self-signed root not
     * included, i.e. what serve sends), so that serve loads a certificate without
     * building its chain. NULL: not computed yet; the keyring fills it on first open. */
    "ALTER TABLE certs ADD COLUMN chain_ids TEXT;"
    "CREATE INDEX certs_chain_unfilled ON certs(id) WHERE chain_ids IS NULL;",
    /* 4 -> 5: inspection proxies (issue 9). The references the store must guard are
     * columns (a certificate or trust store in use cannot go; the keyring refuses first,
     * the foreign keys are the backstop); the rest of the configuration is the keyring's
     * JSON document, which the store keeps as text. Names are unique across kinds. */
    "CREATE TABLE proxies ("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  kind TEXT NOT NULL CHECK (kind IN ('client', 'server')),"
    "  signing_cert_id INTEGER REFERENCES certs(id),"
    "  truststore_id INTEGER REFERENCES truststores(id),"
    "  config TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL);"
    "CREATE INDEX proxies_signing ON proxies(signing_cert_id);"
    "CREATE INDEX proxies_truststore ON proxies(truststore_id);",
    /* 5 -> 6: decryption policies (issue 9, item 5). A policy's lists are child rows, not
     * a JSON column: up to 10,000 domains per policy, changed an entry at a time (a
     * document would be rewritten whole for each), held once each by the primary key.
     * A proxy names at most one policy (proxies.policy_id, a guarded reference like the
     * others). The default never-decrypt list and the domain-to-category map (up to
     * 1,000,000 rows, looked up by domain) are tables of their own; the keyring seeds the
     * default list on first open, since its built-in content is the keyring's. */
    "CREATE TABLE policies ("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL,"
    "  no_defaults INTEGER NOT NULL CHECK (no_defaults IN (0, 1)),"
    "  created INTEGER NOT NULL, updated INTEGER NOT NULL);"
    "CREATE TABLE policy_entries ("
    "  policy_id INTEGER NOT NULL REFERENCES policies(id) ON DELETE CASCADE,"
    "  list TEXT NOT NULL CHECK (list IN ('never_domains', 'never_categories',"
    "    'never_sources', 'always_sources')),"
    "  value TEXT NOT NULL, PRIMARY KEY (policy_id, list, value)) WITHOUT ROWID;"
    "ALTER TABLE proxies ADD COLUMN policy_id INTEGER REFERENCES policies(id);"
    "CREATE INDEX proxies_policy ON proxies(policy_id);"
    "CREATE TABLE default_domains (domain TEXT PRIMARY KEY) WITHOUT ROWID;"
    "CREATE TABLE categories (domain TEXT PRIMARY KEY, category TEXT NOT NULL) WITHOUT ROWID;",
    /* 6 -> 7: the appliance's users (issue 10, M3), their API tokens and the audit log.
     * Names are unique without regard to ASCII case. A password is kept as the keyring's
     * self-describing scrypt string; a token only as the SHA-256 of its text, never the
     * text. Tokens go with their user (ON DELETE CASCADE); audit rows name their actor as
     * text, so they outlive the user. Audit ids only grow (the oldest rows are pruned, never
     * the newest), so they page stably. */
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  role TEXT NOT NULL CHECK (role IN ('Administrator', 'Certificate manager',"
    "    'Inspection manager', 'Auditor')),"
    "  password TEXT NOT NULL, must_change INTEGER NOT NULL CHECK (must_change IN (0, 1)),"
    "  disabled INTEGER NOT NULL CHECK (disabled IN (0, 1)),"
    "  created INTEGER NOT NULL, changed INTEGER NOT NULL);"
    "CREATE TABLE tokens ("
    "  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  sha256 BLOB NOT NULL UNIQUE CHECK (length(sha256) = 32), label TEXT NOT NULL,"
    "  created INTEGER NOT NULL, last_used INTEGER, expires INTEGER);"
    "CREATE INDEX tokens_user ON tokens(user_id);"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY, time INTEGER NOT NULL, actor TEXT NOT NULL,"
    "  source TEXT NOT NULL, action TEXT NOT NULL, object TEXT NOT NULL,"
    "  outcome TEXT NOT NULL, detail TEXT);"
    "CREATE INDEX audit_time ON audit(time);",
    /* 7 -> 8: user groups (issue 10, M3: "groups limited to chosen proxies"). A group
     * allows everything but what it denies, as in the reference: a denial names its object
     * by kind and name, not by id, so a proxy or policy made later can be denied before it
     * exists and a deletion does not drop the rule. Group names are unique without regard
     * to ASCII case; a group's denials go with it, and its users are left without one. */
    "CREATE TABLE groups ("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE group_denied ("
    "  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,"
    "  kind TEXT NOT NULL CHECK (kind IN ('proxy', 'policy')), name TEXT NOT NULL,"
    "  PRIMARY KEY (group_id, kind, name)) WITHOUT ROWID;"
    "ALTER TABLE users ADD COLUMN group_id INTEGER REFERENCES groups(id) ON DELETE SET NULL;"
    "CREATE INDEX users_group ON users(group_id);",
    /* 8 -> 9: enrollment (issue 11). identity_conf is how this appliance obtains its
     * identity certificate (one row): the enrollment server, the anchors of its TLS
     * certificate, the serial-number override. A factory reset keeps it, as a vendor's CA
     * address is part of the factory settings, and removes the identity itself, so that
     * the next start asks for a new one. sealed_values holds small secrets sealed with
     * the data key and bound to their name (the one-time bootstrap secret); a reset
     * removes them. est_secrets and est_devices are the enrollment CA's: one-time
     * bootstrap secrets as their SHA-256 only, and every request received with what
     * became of it (pending an approval, issued, rejected, revoked). */
    "CREATE TABLE identity_conf ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1), server TEXT NOT NULL, ca_pem TEXT,"
    "  serial TEXT, changed INTEGER NOT NULL);"
    "CREATE TABLE sealed_values (k TEXT PRIMARY KEY, sealed BLOB NOT NULL);"
    "CREATE TABLE est_secrets ("
    "  id INTEGER PRIMARY KEY, sha256 BLOB NOT NULL UNIQUE CHECK (length(sha256) = 32),"
    "  label TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL,"
    "  used INTEGER, used_by TEXT);"
    "CREATE TABLE est_devices ("
    "  id INTEGER PRIMARY KEY, device TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'issued', 'rejected', 'revoked')),"
    "  csr_sha256 BLOB NOT NULL, csr BLOB NOT NULL, cert BLOB, serial TEXT,"
    "  not_after INTEGER, source TEXT NOT NULL, requested INTEGER NOT NULL,"
    "  decided INTEGER, reason TEXT);"
    "CREATE INDEX est_devices_csr ON est_devices(csr_sha256);"
    "CREATE INDEX est_devices_serial ON est_devices(serial);"
    "CREATE INDEX est_devices_device ON est_devices(device);",
    /* 9 -> 10: ACME (issue 11, E5). An account's key is a sealed key row like any other; a
     * certificate kept by ACME names its account; the rest of each is the keyring's JSON
     * document (directory, contact, domains, schedule, ARI window), kept as text. Pending
     * challenges are rows serve reads while a validation runs: the key authorization of an
     * http-01 token, or the tls-alpn-01 certificate of a domain with its sealed key. */
    "CREATE TABLE acme_accounts ("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  key_id INTEGER NOT NULL REFERENCES keys(id), doc TEXT NOT NULL,"
    "  created INTEGER NOT NULL, updated INTEGER NOT NULL);"
    "CREATE TABLE acme_certs ("
    "  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  account_id INTEGER NOT NULL REFERENCES acme_accounts(id), doc TEXT NOT NULL,"
    "  created INTEGER NOT NULL, updated INTEGER NOT NULL);"
    "CREATE INDEX acme_certs_account ON acme_certs(account_id);"
    "CREATE TABLE acme_challenges ("
    "  token TEXT PRIMARY KEY, domain TEXT NOT NULL,"
    "  type TEXT NOT NULL CHECK (type IN ('http-01', 'tls-alpn-01', 'dns-01')),"
    "  keyauth TEXT NOT NULL, cert_der BLOB, key_id INTEGER REFERENCES keys(id),"
    "  created INTEGER NOT NULL);"
    "CREATE INDEX acme_challenges_domain ON acme_challenges(domain, type);",
    /* 10 -> 11: a server proxy's certificates (issue 12), up to 1,000 each, chosen by SNI.
     * Child rows, not JSON: a certificate in use cannot be deleted (the keyring refuses
     * naming the proxy, the foreign key is the backstop) and a replacement or renewal
     * moves the references with one UPDATE. position keeps the order they were given in. */
    "CREATE TABLE proxy_certs ("
    "  proxy_id INTEGER NOT NULL REFERENCES proxies(id) ON DELETE CASCADE,"
    "  cert_id INTEGER NOT NULL REFERENCES certs(id), position INTEGER NOT NULL,"
    "  PRIMARY KEY (proxy_id, cert_id)) WITHOUT ROWID;"
    "CREATE INDEX proxy_certs_cert ON proxy_certs(cert_id);",
};

int tg_db_err(tg_store *st, tg_err *err, const char *what)
{
    int rc = sqlite3_errcode(st->db);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return tg_err_set(err, TG_E_STORE,
                          "%s: the store is busy (another tlsgate holds it); "
                          "try again",
                          what);
    if (rc == SQLITE_CONSTRAINT)
        return tg_err_set(err, TG_E_CONFLICT, "%s: %s", what, sqlite3_errmsg(st->db));
    return tg_err_set(err, TG_E_STORE, "%s: %s", what, sqlite3_errmsg(st->db));
}

sqlite3_stmt *tg_db_prep(tg_store *st, const char *sql, tg_err *err)
{
    tg_stmt_slot *free_slot = NULL;
    for (int i = 0; i < TG_STMT_CACHE; i++) {
        tg_stmt_slot *slot = &st->stmts[i];
        if (slot->sql == sql && !slot->busy) {
            slot->busy = 1;
            return slot->stmt;
        }
        if (slot->sql == NULL && free_slot == NULL) free_slot = slot;
    }
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v3(st->db, sql, -1, free_slot ? SQLITE_PREPARE_PERSISTENT : 0, &s, NULL) !=
        SQLITE_OK) {
        tg_db_err(st, err, "store query");
        return NULL;
    }
    if (free_slot != NULL) *free_slot = (tg_stmt_slot){sql, s, 1};
    return s;
}

void tg_db_release(tg_store *st, sqlite3_stmt *s)
{
    if (s == NULL) return;
    for (int i = 0; i < TG_STMT_CACHE; i++)
        if (st->stmts[i].stmt == s) {
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            st->stmts[i].busy = 0;
            return;
        }
    sqlite3_finalize(s);
}

int tg_db_each(tg_store *st, sqlite3_stmt *s, tg_db_row_fn row, void *arg, tg_err *err,
               const char *what)
{
    if (s == NULL) return TG_E_STORE;
    int rc, stop = 0;
    while (stop == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW)
        stop = row(s, arg, err);
    int out = stop < 0 ? stop : stop > 0 || rc == SQLITE_DONE ? 0 : tg_db_err(st, err, what);
    tg_db_release(st, s);
    return out;
}

int tg_db_ids(tg_store *st, sqlite3_stmt *s, int64_t **ids, size_t *n, tg_err *err,
              const char *what)
{
    *ids = NULL;
    *n = 0;
    if (s == NULL) return TG_E_STORE;
    int64_t *v = NULL;
    size_t k = 0, cap = 0;
    int rc, out = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (tg_grow(&v, &cap, k, sizeof(*v), 16) != 0) {
            out = tg_err_set(err, TG_E_INTERNAL, "out of memory");
            break;
        }
        v[k++] = sqlite3_column_int64(s, 0);
    }
    if (out == 0 && rc != SQLITE_DONE) out = tg_db_err(st, err, what);
    tg_db_release(st, s);
    if (out != 0) {
        free(v);
        return out;
    }
    *ids = v;
    *n = k;
    return 0;
}

int tg_db_done(tg_store *st, sqlite3_stmt *s, tg_err *err, const char *what)
{
    int rc = sqlite3_step(s);
    int out = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : tg_db_err(st, err, what);
    tg_db_release(st, s);
    return out;
}

static int exec(tg_store *st, const char *sql, tg_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = tg_db_err(st, err, "store");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

int tg_store_begin(tg_store *st, tg_err *err)
{
    int rc = exec(st, "BEGIN IMMEDIATE", err);
    if (rc == 0) st->in_tx = 1;
    return rc;
}

/* After a commit that removed secrets (a key deleted, a factory reset): the WAL still
 * holds the frames with the old pages, so they are copied back into the database
 * (secure_delete has zeroed the freed content there) and the WAL is truncated to
 * nothing. It waits up to 2 s for readers (serve's are brief); it is best effort, since
 * the commit has happened: if a reader holds on longer, the frames stay until the next
 * such checkpoint or until the last connection closes (which checkpoints and deletes
 * the WAL). */
#define TG_SCRUB_WAIT_MS 2000
static void scrub_wal(tg_store *st)
{
    sqlite3_busy_timeout(st->db, TG_SCRUB_WAIT_MS);
    sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sqlite3_busy_timeout(st->db, TG_BUSY_MS);
}

int tg_store_commit(tg_store *st, tg_err *err)
{
    int rc = exec(st, "COMMIT", err);
    if (rc != 0) {
        tg_store_rollback(st);
        return rc;
    }
    st->in_tx = 0;
    if (st->pending_master) {
        /* The committed data key is sealed under the new master key: put it in place.
         * Should this fail, or the process die first, tg_store_data_key finds it beside
         * the old one and finishes the move. */
        st->pending_master = 0;
        if (rename(st->newkeypath, st->keypath) != 0 && errno != ENOENT)
            return tg_err_set(err, TG_E_STORE,
                              "the store was reset but its new master key %s could not replace "
                              "%s (%s); the next command will retry",
                              st->newkeypath, st->keypath, strerror(errno));
    }
    if (st->scrub) {
        st->scrub = 0;
        scrub_wal(st);
    }
    return 0;
}

void tg_store_rollback(tg_store *st)
{
    if (!st->in_tx) return;
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    st->in_tx = 0;
    st->scrub = 0;
    if (st->pending_master) {
        unlink(st->newkeypath);
        st->pending_master = 0;
        st->have_data_key = 0; /* the old one is read again */
    }
}

static int meta_get(tg_store *st, const char *k, unsigned char **v, size_t *vlen, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT v FROM meta WHERE k=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
    int rc = TG_E_NOTFOUND;
    if (sqlite3_step(s) == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        *v = malloc(n + 1);
        if (*v != NULL) {
            memcpy(*v, sqlite3_column_blob(s, 0), n);
            *vlen = n;
            rc = 0;
        } else
            rc = TG_E_INTERNAL;
    }
    tg_db_release(st, s);
    return rc;
}

static int meta_put(tg_store *st, const char *k, const void *v, size_t vlen, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "INSERT OR REPLACE INTO meta(k,v) VALUES(?,?)", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, v, (int)vlen, SQLITE_STATIC);
    return tg_db_done(st, s, err, "writing store metadata");
}

static const char DATAKEY_AAD[] = "tlsgate data key v1";

/* Reads the 32-byte master key at path (st->keypath, or the new one of an unfinished
 * factory reset); creates st->keypath when create is set and it is missing. */
static int read_master_at(tg_store *st, const char *path, unsigned char mk[32], int create,
                          tg_err *err)
{
    unsigned char *buf = NULL;
    size_t n = 0;
    tg_err tmp = {0};
    int rc = tg_file_read(path, 64, &buf, &n, &tmp);
    if (rc == 0 && n == 32) {
        memcpy(mk, buf, 32);
        tg_free_secret(buf, n + 1);
        return 0;
    }
    if (buf != NULL) tg_free_secret(buf, n + 1);
    if (rc == 0)
        return tg_err_set(err, TG_E_STORE, "the master key %s is damaged (it must be 32 bytes)",
                          path);
    if (rc != TG_E_NOTFOUND || !create)
        return tg_err_set(err, TG_E_STORE,
                          "the master key %s is missing or unreadable: the sealed keys in this "
                          "store cannot be opened without it",
                          path);
    if ((rc = tg_random(mk, 32, err)) != 0) return rc;
    return tg_file_write(st->keypath, mk, 32, 0600, err);
}

static int read_master(tg_store *st, unsigned char mk[32], int create, tg_err *err)
{
    return read_master_at(st, st->keypath, mk, create, err);
}

static void datakey_aad(unsigned char aad[sizeof(DATAKEY_AAD) + 16], const unsigned char sid[16])
{
    memcpy(aad, DATAKEY_AAD, sizeof(DATAKEY_AAD));
    memcpy(aad + sizeof(DATAKEY_AAD), sid, 16);
}

/* Remembers the sealed data key the cached one came from (to notice a rekey). */
static int cache_sealed(tg_store *st, const unsigned char *sealed, size_t slen)
{
    unsigned char *c = malloc(slen ? slen : 1);
    if (c == NULL) return TG_E_INTERNAL;
    memcpy(c, sealed, slen);
    free(st->sealed_dk);
    st->sealed_dk = c;
    st->sealed_dk_len = slen;
    return 0;
}

/* Creates store id and data key in the migration transaction. */
static int create_keys(tg_store *st, tg_err *err)
{
    unsigned char *mk = st->mk, *dk = st->dk, aad[sizeof(DATAKEY_AAD) + 16];
    int rc;
    if ((rc = tg_random(st->store_id, 16, err)) != 0) return rc;
    if ((rc = read_master(st, mk, 1, err)) != 0) return rc;
    if ((rc = tg_random(dk, 32, err)) != 0) goto end;
    datakey_aad(aad, st->store_id);
    unsigned char *sealed = NULL;
    size_t slen = 0;
    if ((rc = tg_seal(mk, aad, sizeof(aad), dk, 32, &sealed, &slen, err)) != 0) goto end;
    rc = meta_put(st, "store_id", st->store_id, 16, err);
    if (rc == 0) rc = meta_put(st, "data_key", sealed, slen, err);
    free(sealed);
end:
    tg_wipe(mk, 32);
    tg_wipe(dk, 32);
    return rc;
}

/* Unseals the data key with the master key at path into st. */
static int unseal_data_key(tg_store *st, const char *path, const unsigned char *sealed, size_t slen,
                           tg_err *err)
{
    unsigned char *mk = st->mk, aad[sizeof(DATAKEY_AAD) + 16], *dk = NULL;
    size_t dklen = 0;
    int rc = read_master_at(st, path, mk, 0, err);
    if (rc != 0) return rc;
    datakey_aad(aad, st->store_id);
    rc = tg_unseal(mk, aad, sizeof(aad), sealed, slen, &dk, &dklen, err);
    tg_wipe(mk, 32);
    if (rc == 0 && dklen == 32) {
        memcpy(st->data_key, dk, 32);
        st->have_data_key = 1;
    } else if (rc == 0) {
        rc = tg_err_set(err, TG_E_STORE, "the store's data key is damaged");
    }
    tg_free_secret(dk, dklen);
    return rc;
}

/* The data key, unsealed once and kept while the sealed one in the store is the same: a
 * factory reset by another process (serve keeps running) replaces both. */
int tg_store_data_key(tg_store *st, tg_err *err)
{
    unsigned char *id = NULL, *sealed = NULL;
    size_t idlen = 0, slen = 0;
    int rc = meta_get(st, "store_id", &id, &idlen, err);
    if (rc == 0) rc = meta_get(st, "data_key", &sealed, &slen, err);
    if (rc != 0 || idlen != 16) {
        rc = tg_err_set(err, TG_E_STORE, "the store's key metadata is missing or damaged");
        goto end;
    }
    if (st->have_data_key && memcmp(st->store_id, id, 16) == 0 && slen == st->sealed_dk_len &&
        memcmp(sealed, st->sealed_dk, slen) == 0)
        goto end;
    st->have_data_key = 0;
    memcpy(st->store_id, id, 16);
    tg_err first = {0};
    rc = unseal_data_key(st, st->keypath, sealed, slen, &first);
    if (rc != 0) {
        /* A factory reset that committed but did not yet put its new master key in place
         * (a crash between the two): the new key is beside the old one. */
        tg_err ignored = {0};
        if (unseal_data_key(st, st->newkeypath, sealed, slen, &ignored) == 0) {
            rc = 0;
            if (rename(st->newkeypath, st->keypath) != 0 && errno != ENOENT)
                rc = tg_err_set(err, TG_E_STORE, "cannot put the new master key %s in place: %s",
                                st->newkeypath, strerror(errno));
        } else {
            rc = tg_err_set(err, first.code, "%s", first.msg);
        }
    }
    if (rc == 0 && cache_sealed(st, sealed, slen) != 0)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc != 0) st->have_data_key = 0;
end:
    free(id);
    free(sealed);
    return rc;
}

int tg_store_rekey(tg_store *st, tg_err *err)
{
    if (!st->in_tx) return tg_err_set(err, TG_E_INTERNAL, "tg_store_rekey outside a transaction");
    unsigned char *mk = st->mk, *dk = st->dk, sid[16], aad[sizeof(DATAKEY_AAD) + 16];
    unsigned char *sealed = NULL;
    size_t slen = 0;
    int rc;
    if ((rc = tg_random(mk, 32, err)) != 0 || (rc = tg_random(dk, 32, err)) != 0 ||
        (rc = tg_random(sid, 16, err)) != 0)
        goto end;
    datakey_aad(aad, sid);
    if ((rc = tg_seal(mk, aad, sizeof(aad), dk, 32, &sealed, &slen, err)) != 0) goto end;
    /* The new master key waits beside the old one until the transaction commits. */
    if ((rc = tg_file_write(st->newkeypath, mk, 32, 0600, err)) != 0) goto end;
    st->pending_master = 1;
    rc = meta_put(st, "store_id", sid, 16, err);
    if (rc == 0) rc = meta_put(st, "data_key", sealed, slen, err);
    if (rc == 0 && cache_sealed(st, sealed, slen) != 0)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0) {
        memcpy(st->data_key, dk, 32);
        memcpy(st->store_id, sid, 16);
        st->have_data_key = 1;
        st->scrub = 1;
    }
end:
    free(sealed);
    tg_wipe(mk, 32);
    tg_wipe(dk, 32);
    return rc;
}

static int migrate(tg_store *st, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "PRAGMA user_version", err);
    if (s == NULL) return TG_E_STORE;
    int version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    tg_db_release(st, s);
    if (version == TG_SCHEMA_VERSION) return 0;
    if (version > TG_SCHEMA_VERSION)
        return tg_err_set(err, TG_E_STORE,
                          "the store has schema version %d, newer than this tlsgate knows (%d); "
                          "use a newer tlsgate",
                          version, TG_SCHEMA_VERSION);
    int rc = tg_store_begin(st, err);
    if (rc != 0) return rc;
    /* Another process may have migrated while we waited for the lock. */
    s = tg_db_prep(st, "PRAGMA user_version", err);
    version = s && sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    tg_db_release(st, s);
    for (int v = version; rc == 0 && v < TG_SCHEMA_VERSION; v++) {
        rc = exec(st, migrations[v], err);
        if (rc == 0 && v == 0) rc = create_keys(st, err);
    }
    if (rc == 0 && version < TG_SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", TG_SCHEMA_VERSION);
        rc = exec(st, sql, err);
    }
    if (rc != 0) {
        tg_store_rollback(st);
        return rc;
    }
    return tg_store_commit(st, err);
}

/* Switches the database to WAL mode, waiting for the write lock like every other
 * statement. SQLite's busy handler does not cover this one on a database that is still
 * in rollback mode (a fresh one): the switch reads the header first and then needs an
 * exclusive lock, and SQLite fails at once instead of waiting while another connection
 * holds the write lock (it could be a deadlock). So it is retried here, for up to the
 * same TG_BUSY_MS. */
static int wal_mode(tg_store *st, tg_err *err)
{
    long long deadline = tg_now_ms() + TG_BUSY_MS;
    for (;;) {
        sqlite3_stmt *s = NULL;
        int rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_step(s);
        int wal = rc == SQLITE_ROW && sqlite3_column_text(s, 0) != NULL &&
                  strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
        sqlite3_finalize(s);
        if (wal) return 0;
        int busy = rc == SQLITE_BUSY || rc == SQLITE_LOCKED || rc == SQLITE_ROW;
        if (!busy || tg_now_ms() >= deadline)
            return busy ? tg_err_set(err, TG_E_STORE,
                                     "store: the store is busy (another process has held it for "
                                     "%d s); try again",
                                     TG_BUSY_MS / 1000)
                        : tg_db_err(st, err, "store");
        struct timespec pause = {0, 10 * 1000000L};
        nanosleep(&pause, NULL);
    }
}

static char *join_path(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p != NULL) snprintf(p, n, "%s/%s", dir, file);
    return p;
}

/* The store is private to its owner: the directory 0700, its files 0600. They are
 * tightened on every open, since a directory made by hand or restored from a backup may
 * be loose. The directory first, so that nobody else can swap its entries; then each
 * file that is a regular file (lstat) by name. The files are not opened: closing any
 * descriptor of store.db or its -shm would drop the POSIX locks SQLite holds on them in
 * this process (serve opens the store more than once). SQLite gives the -wal and -shm
 * files the database file's mode. */
static int tighten(const char *home, tg_err *err)
{
    static const char *const files[] = {"store.db", "store.db-wal", "store.db-shm", "master.key",
                                        "master.key.new"};
    int dfd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return tg_err_set(err, TG_E_STORE, "cannot open the store directory %s: %s", home,
                          strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(dfd, &st) == 0 && (st.st_mode & 07077) != 0 && fchmod(dfd, 0700) != 0)
        rc = tg_err_set(err, TG_E_STORE,
                        "the store directory %s is open to other users and cannot be made "
                        "private (%s); run tlsgate as its owner or chmod 700 it",
                        home, strerror(errno));
    for (size_t i = 0; rc == 0 && i < sizeof(files) / sizeof(files[0]); i++) {
        if (fstatat(dfd, files[i], &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
            (st.st_mode & 07177) == 0)
            continue; /* not there, already private, or not ours to touch (checked where used) */
        if (fchmodat(dfd, files[i], 0600, 0) != 0)
            rc = tg_err_set(err, TG_E_STORE,
                            "%s/%s is open to other users and cannot be made private (%s); run "
                            "tlsgate as its owner or chmod 600 it",
                            home, files[i], strerror(errno));
    }
    close(dfd);
    return rc;
}

static int store_open(const char *home, int create, tg_store **out, tg_err *err)
{
    *out = NULL;
    int rc = 0;
    if (!create) { /* no directory made; sqlite3 below is not allowed to create the file */
        char *db = join_path(home, "store.db");
        struct stat sb;
        int missing = db != NULL && stat(db, &sb) != 0 && (errno == ENOENT || errno == ENOTDIR);
        free(db);
        /* field "home": what a face names when it says where it looked */
        if (missing)
            return tg_err_fset(err, TG_E_NOTFOUND, "home", "there is no store in %s", home);
    }
    if (create) rc = tg_mkdir_p(home, 0700, err);
    if (rc == 0) rc = tighten(home, err);
    if (rc != 0) return rc;
    tg_store *st = calloc(1, sizeof(*st));
    if (st == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    st->home = tg_strdup(home);
    st->dbpath = join_path(home, "store.db");
    st->keypath = join_path(home, "master.key");
    st->newkeypath = join_path(home, "master.key.new");
    st->secrets = tg_secure_alloc(96);
    if (st->secrets != NULL) {
        st->data_key = st->secrets;
        st->mk = st->secrets + 32;
        st->dk = st->secrets + 64;
    }
    if (!st->home || !st->dbpath || !st->keypath || !st->newkeypath || !st->secrets) {
        tg_store_close(st);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    mode_t old = umask(077);
    int src = sqlite3_open_v2(
        st->dbpath, &st->db,
        SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX, NULL);
    umask(old);
    if (src != SQLITE_OK) {
        rc = tg_err_set(err, TG_E_STORE, "cannot open the store %s: %s", st->dbpath,
                        st->db ? sqlite3_errmsg(st->db) : "out of memory");
        tg_store_close(st);
        return rc;
    }
    sqlite3_busy_timeout(st->db, TG_BUSY_MS);
    sqlite3_extended_result_codes(st->db, 0);
    if ((rc = wal_mode(st, err)) != 0 ||
        (rc = exec(st,
                   "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                   "PRAGMA secure_delete=ON",
                   err)) != 0 ||
        (rc = migrate(st, err)) != 0) {
        tg_store_close(st);
        return rc == TG_E_STORE ? rc : tg_err_set(err, TG_E_STORE, "cannot open the store");
    }
    *out = st;
    return 0;
}

int tg_store_open(const char *home, tg_store **out, tg_err *err)
{
    return store_open(home, 1, out, err);
}

int tg_store_open_existing(const char *home, tg_store **out, tg_err *err)
{
    return store_open(home, 0, out, err);
}

void tg_store_close(tg_store *st)
{
    if (st == NULL) return;
    tg_store_rollback(st);
    for (int i = 0; i < TG_STMT_CACHE; i++)
        if (st->stmts[i].stmt) sqlite3_finalize(st->stmts[i].stmt);
    if (st->db) sqlite3_close(st->db);
    tg_secure_free(st->secrets, 96);
    free(st->home);
    free(st->dbpath);
    free(st->keypath);
    free(st->newkeypath);
    free(st->sealed_dk);
    free(st);
}

const char *tg_store_path(const tg_store *st)
{
    return st->dbpath;
}

int tg_store_setting_get(tg_store *st, const char *k, char *buf, size_t bufsize, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT v FROM settings WHERE k=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
    int rc = TG_E_NOTFOUND;
    if (sqlite3_step(s) == SQLITE_ROW) {
        snprintf(buf, bufsize, "%s", (const char *)sqlite3_column_text(s, 0));
        rc = 0;
    }
    tg_db_release(st, s);
    return rc;
}

int tg_store_setting_set(tg_store *st, const char *k, const char *v, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "INSERT OR REPLACE INTO settings(k,v) VALUES(?,?)", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, v, -1, SQLITE_STATIC);
    return tg_db_done(st, s, err, "writing a setting");
}

int tg_store_wipe(tg_store *st, tg_err *err)
{
    /* Order respects the foreign keys; secure_delete overwrites the freed pages. */
    st->scrub = 1;
    return exec(
        st,
        "DELETE FROM acme_challenges; DELETE FROM acme_certs; DELETE FROM acme_accounts;"
        "DELETE FROM tokens; DELETE FROM users; DELETE FROM groups;"
        "DELETE FROM proxy_certs; DELETE FROM proxies; DELETE FROM policies; DELETE FROM "
        "default_domains;"
        "DELETE FROM categories; DELETE FROM refs; DELETE FROM truststore_cas;"
        "DELETE FROM truststores;"
        "UPDATE requests SET cert_id=NULL; DELETE FROM certs;"
        "DELETE FROM requests; DELETE FROM keys; DELETE FROM settings; DELETE FROM default_cas;"
        "DELETE FROM sealed_values; DELETE FROM est_secrets; DELETE FROM est_devices;",
        err);
}
