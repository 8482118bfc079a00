/*
 * acme.c — the stored state of the ACME client (issue 11, E5): accounts (a sealed EC key
 * and the directory's facts), the certificates ACME keeps (domains, challenge, schedule,
 * the last error and the ARI window) and the pending challenges serve answers.
 *
 * The protocol is src/enroll's; here are its rules on what is stored: names, bounded
 * documents, an account in use cannot go, a challenge's key is sealed and leaves with it.
 * An issued certificate enters the keyring like an imported one: its key was made here
 * for the request (never exportable), and a renewal takes NAME's place (K7) only once the
 * new certificate is in, the old one serving until then.
 */
#include "keyring_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const tables[] = {"ACME account", "ACME certificate"};

static int name_check(int table, const char *name, tg_err *err)
{
    /* a certificate's name is the keyring's (the certificate lands under it) */
    return table == TG_STORE_ACME_ACCOUNTS ? kr_conf_name_check("CA account", name, err)
                                           : tg_keyring_name_check(name, err);
}

int tg_keyring_acme_name_check(int account, const char *name, tg_err *err)
{
    return name_check(account ? TG_STORE_ACME_ACCOUNTS : TG_STORE_ACME_CERTS, name, err);
}

static int row_get(tg_keyring *kr, int table, const char *name, tg_store_acme *a, tg_err *err)
{
    int rc = tg_store_acme_by_name(kr->st, table, name, a, err);
    if (rc == TG_E_NOTFOUND)
        return tg_err_fset(err, TG_E_NOTFOUND, table == TG_STORE_ACME_ACCOUNTS ? "account" : "name",
                           "no %s is named '%s' (tlsgate acme %slist shows them)", tables[table],
                           name, table == TG_STORE_ACME_ACCOUNTS ? "account " : "");
    return rc;
}

static json_t *row_doc(const tg_store_acme *a, tg_err *err)
{
    json_error_t je;
    json_t *doc = json_loads(a->doc, 0, &je);
    if (!json_is_object(doc)) {
        json_decref(doc);
        tg_err_set(err, TG_E_STORE, "the stored ACME settings of '%s' are damaged", a->name);
        return NULL;
    }
    return doc;
}

static int doc_text(const json_t *doc, char **out, tg_err *err)
{
    *out = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    if (*out == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (strlen(*out) > TG_ACME_DOC_MAX) {
        free(*out);
        *out = NULL;
        return tg_err_set(err, TG_E_INVALID, "the ACME settings are too large");
    }
    return 0;
}

/* ---- accounts ---- */

int tg_keyring_acme_account_add(tg_keyring *kr, const char *name, const tg_key *key,
                                const json_t *doc, tg_err *err)
{
    char *text = NULL;
    int rc = name_check(TG_STORE_ACME_ACCOUNTS, name, err);
    if (rc == 0) rc = doc_text(doc, &text, err);
    if (rc != 0) return rc;
    if ((rc = tg_store_begin(kr->st, err)) != 0) {
        free(text);
        return rc;
    }
    tg_store_acme have;
    tg_store_acme a = {.name = (char *)name, .doc = text};
    if (tg_store_acme_by_name(kr->st, TG_STORE_ACME_ACCOUNTS, name, &have, NULL) == 0) {
        tg_store_acme_clear(&have);
        rc = tg_err_fset(err, TG_E_CONFLICT, "name",
                         "an ACME account named '%s' exists already; delete it first or choose "
                         "another name",
                         name);
    }
    if (rc == 0) rc = kr_key_put(kr, key, 0, &a.ref_id, NULL, err);
    if (rc == 0) rc = tg_store_acme_add(kr->st, TG_STORE_ACME_ACCOUNTS, &a, err);
    free(text);
    return kr_finish(kr, rc, err);
}

int tg_keyring_acme_account_update(tg_keyring *kr, const char *name, const json_t *doc, tg_err *err)
{
    char *text = NULL;
    int rc = doc_text(doc, &text, err);
    if (rc != 0) return rc;
    if ((rc = tg_store_begin(kr->st, err)) == 0) {
        tg_store_acme a = {0};
        if ((rc = row_get(kr, TG_STORE_ACME_ACCOUNTS, name, &a, err)) == 0)
            rc = tg_store_acme_update(kr->st, TG_STORE_ACME_ACCOUNTS, a.id, text, err);
        tg_store_acme_clear(&a);
        rc = kr_finish(kr, rc, err);
    }
    free(text);
    return rc;
}

/* Times are stored as unix seconds (0 or absent: none); the faces show them as
 * docs/json.md has it: X (RFC 3339) beside X_unix, both null when there is none. Every
 * document has every member. */
static const char *const time_members[] = {"issued", "not_after", "renew_at", "next_try",
                                           "ari_next"};
static const char *const text_members[] = {"profile", "last_error", "order", "replaced"};

static void time_pair(json_t *doc, const char *name)
{
    long long t = (long long)json_integer_value(json_object_get(doc, name));
    if (t > 0) {
        kr_json_time(doc, name, t);
        return;
    }
    char unix_name[64];
    snprintf(unix_name, sizeof(unix_name), "%s_unix", name);
    json_object_set_new(doc, name, json_null());
    json_object_set_new(doc, unix_name, json_null());
}

static void face_times(json_t *doc)
{
    for (size_t i = 0; i < sizeof(time_members) / sizeof(time_members[0]); i++)
        time_pair(doc, time_members[i]);
    for (size_t i = 0; i < sizeof(text_members) / sizeof(text_members[0]); i++)
        if (!json_is_string(json_object_get(doc, text_members[i])))
            json_object_set_new(doc, text_members[i], json_null());
    json_t *ari = json_object_get(doc, "ari");
    if (json_is_object(ari)) {
        time_pair(ari, "start");
        time_pair(ari, "end");
        if (!json_is_string(json_object_get(ari, "explanation")))
            json_object_set_new(ari, "explanation", json_null());
    } else {
        json_object_set_new(doc, "ari", json_null());
    }
    if (!json_is_integer(json_object_get(doc, "ari_failure_count")))
        json_object_set_new(doc, "ari_failure_count", json_integer(0));
    if (!json_is_array(json_object_get(doc, "dns_hook")))
        json_object_set_new(doc, "dns_hook", json_array());
}

/* The document with the name and times added (what list and show print; face: the
 * stored times as the faces show them). */
static json_t *shown(const tg_store_acme *a, const char *account, int face, tg_err *err)
{
    json_t *doc = row_doc(a, err);
    if (doc == NULL) return NULL;
    if (face && account != NULL) face_times(doc);
    json_object_set_new(doc, "name", kr_json_text(a->name));
    if (account != NULL) json_object_set_new(doc, "account", kr_json_text(account));
    kr_json_time(doc, "created", a->created);
    kr_json_time(doc, "updated", a->updated);
    return doc;
}

int tg_keyring_acme_account_get(tg_keyring *kr, const char *name, json_t **doc, tg_key **key,
                                tg_err *err)
{
    *doc = NULL;
    if (key) *key = NULL;
    tg_store_acme a = {0};
    int rc = row_get(kr, TG_STORE_ACME_ACCOUNTS, name, &a, err);
    if (rc == 0 && (*doc = shown(&a, NULL, 1, err)) == NULL)
        rc = err->code ? err->code : TG_E_STORE;
    if (rc == 0 && key) rc = kr_key_load(kr, a.ref_id, key, err);
    if (rc == 0)
        json_object_set_new(*doc, "certificate_count",
                            json_integer(tg_store_acme_account_uses(kr->st, a.id)));
    if (rc != 0) {
        json_decref(*doc);
        *doc = NULL;
    }
    tg_store_acme_clear(&a);
    return rc;
}

typedef struct list_arg {
    tg_keyring *kr;
    json_t *arr;
    tg_err *err;
    int certs;
} list_arg;

static int list_one(const tg_store_acme *a, void *arg)
{
    list_arg *l = arg;
    char account[TG_NAME_MAX + 1] = "";
    if (l->certs) {
        tg_store_acme acc;
        if (tg_store_acme_get(l->kr->st, TG_STORE_ACME_ACCOUNTS, a->ref_id, &acc, NULL) == 0) {
            snprintf(account, sizeof(account), "%s", acc.name);
            tg_store_acme_clear(&acc);
        }
    }
    json_t *doc = shown(a, l->certs ? account : NULL, 1, l->err);
    if (doc == NULL) return TG_E_STORE;
    if (!l->certs)
        json_object_set_new(doc, "certificate_count",
                            json_integer(tg_store_acme_account_uses(l->kr->st, a->id)));
    json_array_append_new(l->arr, doc);
    return 0;
}

static int list(tg_keyring *kr, int table, json_t **out, tg_err *err)
{
    list_arg l = {kr, json_array(), err, table == TG_STORE_ACME_CERTS};
    if (l.arr == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = tg_store_acme_each(kr->st, table, list_one, &l, err);
    if (rc != 0) {
        json_decref(l.arr);
        return rc;
    }
    *out = l.arr;
    return 0;
}

int tg_keyring_acme_account_list(tg_keyring *kr, json_t **out, tg_err *err)
{
    return list(kr, TG_STORE_ACME_ACCOUNTS, out, err);
}

int tg_keyring_acme_account_delete(tg_keyring *kr, const char *name, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_acme a = {0};
    if ((rc = row_get(kr, TG_STORE_ACME_ACCOUNTS, name, &a, err)) == 0 &&
        tg_store_acme_account_uses(kr->st, a.id) > 0)
        rc = tg_err_fset(err, TG_E_CONFLICT, "account",
                         "the ACME account '%s' still keeps certificates; delete them from ACME "
                         "first (tlsgate acme list shows them)",
                         name);
    if (rc == 0) rc = tg_store_acme_delete(kr->st, TG_STORE_ACME_ACCOUNTS, a.id, err);
    if (rc == 0) rc = tg_store_key_gc(kr->st, a.ref_id, err);
    tg_store_acme_clear(&a);
    return kr_finish(kr, rc, err);
}

/* ---- certificates ---- */

int tg_keyring_acme_cert_put(tg_keyring *kr, const char *name, const char *account,
                             const json_t *doc, int create, tg_err *err)
{
    char *text = NULL;
    int rc = name_check(TG_STORE_ACME_CERTS, name, err);
    if (rc == 0) rc = doc_text(doc, &text, err);
    if (rc != 0) return rc;
    if ((rc = tg_store_begin(kr->st, err)) != 0) {
        free(text);
        return rc;
    }
    tg_store_acme acc = {0}, have = {0};
    rc = row_get(kr, TG_STORE_ACME_ACCOUNTS, account, &acc, err);
    int found =
        rc == 0 && tg_store_acme_by_name(kr->st, TG_STORE_ACME_CERTS, name, &have, NULL) == 0;
    if (rc == 0 && found && create)
        rc = tg_err_fset(err, TG_E_CONFLICT, "name",
                         "ACME keeps a certificate named '%s' already; renew it with tlsgate "
                         "acme renew, or choose another name",
                         name);
    if (rc == 0 && found) {
        rc = tg_store_acme_update(kr->st, TG_STORE_ACME_CERTS, have.id, text, err);
    } else if (rc == 0) {
        tg_store_acme a = {.name = (char *)name, .ref_id = acc.id, .doc = text};
        rc = tg_store_acme_add(kr->st, TG_STORE_ACME_CERTS, &a, err);
    }
    tg_store_acme_clear(&acc);
    tg_store_acme_clear(&have);
    free(text);
    return kr_finish(kr, rc, err);
}

int tg_keyring_acme_cert_merge(tg_keyring *kr, const char *name, const json_t *changes, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_acme a = {0};
    json_t *doc = NULL;
    char *text = NULL;
    rc = row_get(kr, TG_STORE_ACME_CERTS, name, &a, err);
    if (rc == 0 && (doc = json_loads(a.doc, 0, NULL)) == NULL)
        rc = tg_err_set(err, TG_E_STORE, "the ACME document of '%s' is damaged", name);
    if (rc == 0 && json_object_update(doc, (json_t *)changes) != 0)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0) rc = doc_text(doc, &text, err);
    if (rc == 0) rc = tg_store_acme_update(kr->st, TG_STORE_ACME_CERTS, a.id, text, err);
    free(text);
    json_decref(doc);
    tg_store_acme_clear(&a);
    return kr_finish(kr, rc, err);
}

static int cert_get(tg_keyring *kr, const char *name, int face, json_t **doc, tg_err *err)
{
    *doc = NULL;
    tg_store_acme a = {0}, acc = {0};
    int rc = row_get(kr, TG_STORE_ACME_CERTS, name, &a, err);
    if (rc == 0) rc = tg_store_acme_get(kr->st, TG_STORE_ACME_ACCOUNTS, a.ref_id, &acc, err);
    if (rc == 0 && (*doc = shown(&a, acc.name, face, err)) == NULL) rc = TG_E_STORE;
    tg_store_acme_clear(&a);
    tg_store_acme_clear(&acc);
    return rc;
}

int tg_keyring_acme_cert_get(tg_keyring *kr, const char *name, json_t **doc, tg_err *err)
{
    return cert_get(kr, name, 0, doc, err);
}

int tg_keyring_acme_cert_show(tg_keyring *kr, const char *name, json_t **doc, tg_err *err)
{
    return cert_get(kr, name, 1, doc, err);
}

int tg_keyring_acme_cert_list(tg_keyring *kr, json_t **out, tg_err *err)
{
    return list(kr, TG_STORE_ACME_CERTS, out, err);
}

int tg_keyring_acme_cert_delete(tg_keyring *kr, const char *name, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_acme a = {0};
    if ((rc = row_get(kr, TG_STORE_ACME_CERTS, name, &a, err)) == 0)
        rc = tg_store_acme_delete(kr->st, TG_STORE_ACME_CERTS, a.id, err);
    tg_store_acme_clear(&a);
    return kr_finish(kr, rc, err);
}

int tg_keyring_acme_current(tg_keyring *kr, const char *name, tg_cert **out, tg_err *err)
{
    *out = NULL;
    tg_store_cert c = {0};
    int rc = tg_store_cert_by_name(kr->st, name, &c, err);
    if (rc == 0) rc = tg_cert_from_der(c.der, c.derlen, out, err);
    tg_store_cert_clear(&c);
    return rc;
}

/* ---- the request and the issued certificate ---- */

static void request_name(const char *name, char *out, size_t size)
{
    size_t n = tg_utf8_cut(name, strlen(name), TG_NAME_MAX - 12);
    snprintf(out, size, "%.*s acme-order", (int)n, name);
}

int tg_keyring_acme_csr(tg_keyring *kr, const char *name, const char *const *domains, size_t n,
                        char **pem, tg_err *err)
{
    *pem = NULL;
    char rname[TG_NAME_MAX + 1];
    request_name(name, rname, sizeof(rname));
    tg_err ignored = {0};
    tg_keyring_request_delete(kr, rname, &ignored); /* a leftover of an order that failed */
    tg_newcert spec = {
        .name = rname, .sans = domains, .nsans = n, .keyspec = "ec:p256", .no_export = 1};
    spec.subject.cn = domains[0];
    json_t *doc = NULL;
    int rc = tg_keyring_request_create(kr, &spec, &doc, err);
    const char *p = rc == 0 ? json_string_value(json_object_get(doc, "pem")) : NULL;
    if (rc == 0 && (p == NULL || (*pem = tg_strdup(p)) == NULL))
        rc = tg_err_set(err, TG_E_INTERNAL, "the request has no PEM");
    json_decref(doc);
    return rc;
}

void tg_keyring_acme_csr_discard(tg_keyring *kr, const char *name)
{
    char rname[TG_NAME_MAX + 1];
    request_name(name, rname, sizeof(rname));
    tg_err ignored = {0};
    tg_keyring_request_delete(kr, rname, &ignored);
}

int tg_keyring_acme_install(tg_keyring *kr, const char *name, const char *chain_pem, size_t len,
                            json_t **out, tg_err *err)
{
    *out = NULL;
    /* the CA's answer must be a certificate for the key made for its request: anything
     * else would enter the keyring without its key, or take NAME's place unservable */
    char rname[TG_NAME_MAX + 1];
    request_name(name, rname, sizeof(rname));
    tg_store_req req = {0};
    tg_store_key key = {0};
    tg_bundle b = {0};
    unsigned char spki[32];
    int rc = tg_store_req_by_name(kr->st, rname, &req, err);
    if (rc == 0) rc = tg_store_key_get(kr->st, req.key_id, &key, err);
    if (rc == 0)
        rc = tg_bundle_decode((const unsigned char *)chain_pem, len, "the CA's certificate chain",
                              NULL, &b, err);
    if (rc == 0 &&
        (b.ncerts == 0 || b.nkeys != 0 || tg_cert_spki_sha256(b.certs[0], spki, err) != 0 ||
         memcmp(spki, key.spki_sha256, 32) != 0))
        rc = tg_err_set(err, TG_E_IO,
                        "the CA's answer is not a certificate for the key of '%s''s request", name);
    tg_bundle_clear(&b);
    tg_store_req_clear(&req);
    if (rc != 0)
        return rc == TG_E_NOTFOUND
                   ? tg_err_set(err, TG_E_STORE, "the request of '%s' is gone", name)
                   : rc;
    tg_input in = {.data = (const unsigned char *)chain_pem, .len = len, .label = "the ACME chain"};
    tg_import imp = {.inputs = &in, .ninputs = 1, .name = name, .no_export = 1};
    tg_store_cert have = {0};
    int exists = tg_store_cert_by_name(kr->st, name, &have, NULL) == 0;
    tg_store_cert_clear(&have);
    rc = exists ? tg_keyring_cert_replace(kr, name, &imp, out, err)
                : tg_keyring_cert_import(kr, &imp, out, err);
    if (rc == 0) tg_keyring_acme_csr_discard(kr, name); /* its key now belongs to NAME */
    return rc;
}

/* ---- challenges ---- */

int tg_keyring_acme_challenge_add(tg_keyring *kr, const char *type, const char *token,
                                  const char *domain, const char *keyauth, tg_err *err)
{
    tg_store_chal c = {
        .token = (char *)token, .domain = (char *)domain, .keyauth = (char *)keyauth};
    snprintf(c.type, sizeof(c.type), "%s", type);
    tg_key *key = NULL;
    tg_cert *cert = NULL;
    int rc = 0;
    if (strcmp(type, "tls-alpn-01") == 0) {
        unsigned char digest[32];
        tg_keyspec ks;
        if ((rc = tg_sha256(keyauth, strlen(keyauth), digest, err)) == 0 &&
            (rc = tg_keyspec_parse("ec:p256", &ks, err)) == 0 &&
            (rc = tg_key_generate(&ks, &key, err)) == 0 &&
            (rc = tg_cert_acme_alpn(key, domain, digest, &cert, err)) == 0)
            rc = tg_cert_to_der(cert, &c.der, &c.derlen, err);
    }
    if (rc == 0 && (rc = tg_store_begin(kr->st, err)) == 0) {
        /* what an order killed on its way left behind goes now (an order lasts minutes) */
        rc = tg_store_chal_purge(kr->st, (long long)time(NULL) - TG_ACME_CHALLENGE_STALE, err);
        if (rc == 0 && key != NULL) rc = kr_key_put(kr, key, 0, &c.key_id, NULL, err);
        if (rc == 0) rc = tg_store_chal_add(kr->st, &c, err);
        rc = kr_finish(kr, rc, err);
    }
    free(c.der);
    tg_cert_free(cert);
    tg_key_free(key);
    return rc;
}

int tg_keyring_acme_challenge_remove(tg_keyring *kr, const char *token, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_chal c = {0};
    rc = tg_store_chal_by_token(kr->st, token, &c, err);
    if (rc == 0) rc = tg_store_chal_delete(kr->st, token, err);
    if (rc == 0 && c.key_id > 0) rc = tg_store_key_gc(kr->st, c.key_id, err);
    if (rc == TG_E_NOTFOUND) rc = 0;
    tg_store_chal_clear(&c);
    return kr_finish(kr, rc, err);
}

int tg_keyring_acme_http_answer(tg_keyring *kr, const char *token, char *buf, size_t size)
{
    tg_store_chal c = {0};
    tg_err err = {0};
    int rc = tg_store_chal_by_token(kr->st, token, &c, &err);
    if (rc == 0 && strcmp(c.type, "http-01") != 0) rc = TG_E_NOTFOUND;
    if (rc == 0 && (size_t)snprintf(buf, size, "%s", c.keyauth) >= size) rc = TG_E_INVALID;
    tg_store_chal_clear(&c);
    return rc;
}

int tg_keyring_acme_alpn_get(tg_keyring *kr, const char *domain, tg_cert **cert, tg_key **key,
                             tg_err *err)
{
    *cert = NULL;
    *key = NULL;
    tg_store_chal c = {0};
    int rc = tg_store_chal_by_domain(kr->st, domain, "tls-alpn-01", &c, err);
    if (rc == 0 && (c.der == NULL || c.key_id <= 0)) rc = TG_E_NOTFOUND;
    if (rc == 0) rc = tg_cert_from_der(c.der, c.derlen, cert, err);
    if (rc == 0) rc = kr_key_load(kr, c.key_id, key, err);
    if (rc != 0) {
        tg_cert_free(*cert);
        *cert = NULL;
    }
    tg_store_chal_clear(&c);
    return rc;
}
