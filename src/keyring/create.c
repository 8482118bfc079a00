/*
 * create.c — new keys: self-signed certificates (K2) and certificate requests (K3),
 * and the requests' life until a certificate completes them (K4).
 *
 * Everything the operator typed is validated before a key is generated, so a typo
 * costs nothing and leaves nothing behind.
 */
#include "keyring_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct prepared {
    tg_keyspec ks;
    tg_strlist sans;
    int days;
} prepared;

static int prepare(const tg_newcert *spec, prepared *p, tg_err *err)
{
    memset(p, 0, sizeof(*p));
    int rc;
    if ((rc = tg_keyring_name_check(spec->name, err)) != 0 ||
        (rc = kr_name_reserved(spec->name, err)) != 0 ||
        (spec->signing && (rc = kr_ca_name_check(spec->name, err)) != 0) ||
        (rc = tg_subject_check(&spec->subject, err)) != 0 ||
        (rc = tg_keyspec_parse(spec->keyspec, &p->ks, err)) != 0)
        return rc;
    p->days = spec->days_set ? spec->days : TG_DAYS_DEFAULT;
    if (p->days < 1 || p->days > TG_DAYS_MAX)
        return tg_err_fset(err, TG_E_INVALID, "days", "the number of days must be between 1 and %d",
                           TG_DAYS_MAX);
    return tg_sans_build(&spec->subject, spec->sans, spec->nsans, &p->sans, err);
}

int kr_create_tx(tg_keyring *kr, const tg_newcert *spec, int protect, int64_t *id, tg_err *err)
{
    prepared p;
    int rc = prepare(spec, &p, err);
    if (rc != 0) return rc;
    tg_key *key = NULL;
    tg_cert *cert = NULL;
    tg_store_cert row = {0};
    if (tg_store_name_taken(kr->st, spec->name)) {
        rc = tg_err_set(err, TG_E_CONFLICT,
                        "a certificate named '%s' already exists; choose another name", spec->name);
        goto end;
    }
    if ((rc = tg_key_generate(&p.ks, &key, err)) != 0 ||
        (rc = tg_cert_selfsign(key, &spec->subject, &p.sans, p.days, spec->signing, &cert, err)) !=
            0 ||
        (rc = kr_cert_row(cert, &row, err)) != 0 ||
        (rc = kr_key_put(kr, key, !spec->no_export, &row.key_id, NULL, err)) != 0)
        goto end;
    row.name = tg_strdup(spec->name);
    row.protected_ = protect;
    if ((rc = kr_chain_status(kr, cert, row.key_id, row.spki_sha256, row.status, sizeof(row.status),
                              &row.chain_ids, err)) != 0)
        goto end;
    if (row.name == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    rc = tg_store_cert_add(kr->st, &row, err);
    *id = row.id;
end:
    tg_store_cert_clear(&row);
    tg_cert_free(cert);
    tg_key_free(key);
    tg_strlist_free(&p.sans);
    return rc;
}

int tg_keyring_cert_create(tg_keyring *kr, const tg_newcert *spec, json_t **out, tg_err *err)
{
    *out = NULL;
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    int64_t id = 0;
    rc = kr_finish(kr, kr_create_tx(kr, spec, 0, &id, err), err);
    if (rc != 0) return rc;
    tg_store_cert c;
    if ((rc = tg_store_cert_get(kr->st, id, &c, err)) != 0) return rc;
    *out = kr_cert_doc(kr, &c);
    tg_store_cert_clear(&c);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

/* ---- requests ---- */

static json_t *req_doc(tg_keyring *kr, const tg_store_req *r, int with_pem)
{
    json_t *cert = json_null();
    if (r->cert_id != 0) {
        tg_store_cert c;
        if (tg_store_cert_get(kr->st, r->cert_id, &c, NULL) == 0) {
            json_decref(cert);
            cert = json_string(c.name);
            tg_store_cert_clear(&c);
        }
    }
    json_t *sans = kr_sans_doc(r->san_list, NULL);
    json_t *doc =
        json_pack("{s:o, s:s, s:o, s:o, s:s, s:b}", "name", kr_json_text(r->name), "status",
                  r->cert_id ? "completed" : "pending", "subject", kr_json_text(r->subject),
                  "alternative_names", sans, "key", r->key_desc, "signing", r->signing);
    if (doc == NULL || kr_json_time(doc, "created", r->created) != 0) {
        json_decref(cert);
        json_decref(doc);
        return NULL;
    }
    if (json_object_set_new(doc, "certificate", cert) != 0) {
        json_decref(doc);
        return NULL;
    }
    if (with_pem) json_object_set_new(doc, "pem", json_string(r->pem));
    return doc;
}

int tg_keyring_request_create(tg_keyring *kr, const tg_newcert *spec, json_t **out, tg_err *err)
{
    *out = NULL;
    prepared p;
    int rc = prepare(spec, &p, err);
    if (rc != 0) return rc;
    tg_key *key = NULL;
    tg_store_req req = {0};
    char *pem = NULL;
    char *subject = NULL, *sans = NULL;
    if ((rc = tg_store_begin(kr->st, err)) != 0) goto end;
    tg_store_req existing;
    if (tg_store_req_by_name(kr->st, spec->name, &existing, NULL) == 0) {
        tg_store_req_clear(&existing);
        rc = tg_err_set(err, TG_E_CONFLICT,
                        "a request named '%s' already exists; choose another name", spec->name);
        goto end;
    }
    if ((rc = tg_key_generate(&p.ks, &key, err)) != 0 ||
        (rc = tg_csr_create(key, &spec->subject, &p.sans, spec->signing, &pem, err)) != 0 ||
        (rc = kr_key_put(kr, key, !spec->no_export, &req.key_id, NULL, err)) != 0)
        goto end;
    subject = tg_subject_text(&spec->subject);
    tg_sanlist l;
    if ((rc = tg_sanlist_from_built(&p.sans, &l, err)) != 0) goto end;
    sans = kr_sans_encode(&l);
    tg_sanlist_free(&l);
    if (subject == NULL || sans == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    char desc[32];
    tg_key_describe(key, desc, sizeof(desc));
    req.name = (char *)spec->name;
    req.pem = pem;
    req.subject = subject;
    req.san_list = sans;
    req.key_desc = desc;
    req.signing = spec->signing;
    rc = tg_store_req_add(kr->st, &req, err);
end:
    rc = kr_finish(kr, rc, err);
    if (rc == 0) *out = req_doc(kr, &req, 1);
    free(subject);
    free(sans);
    free(pem);
    tg_key_free(key);
    tg_strlist_free(&p.sans);
    if (rc == 0 && *out == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    return rc;
}

/* A row that cannot be built stops the list (a[2] set): a list never drops a row. */
static int add_req(const tg_store_req *r, void *arg)
{
    void **a = arg;
    if (json_array_append_new(a[1], req_doc(a[0], r, 0)) == 0) return 0;
    a[2] = a;
    return 1;
}

int tg_keyring_request_list(tg_keyring *kr, json_t **out, tg_err *err)
{
    *out = json_array();
    void *a[3] = {kr, *out, NULL};
    int rc = tg_store_req_each(kr->st, add_req, a, err);
    if (rc == 0 && a[2] != NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

static int req_get(tg_keyring *kr, const char *name, tg_store_req *r, tg_err *err)
{
    int rc = tg_store_req_by_name(kr->st, name, r, err);
    if (rc == TG_E_NOTFOUND)
        return tg_err_set(err, TG_E_NOTFOUND,
                          "no request is named '%s' (the list of requests shows the names)", name);
    return rc;
}

int tg_keyring_request_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err)
{
    tg_store_req r;
    int rc = req_get(kr, name, &r, err);
    if (rc != 0) return rc;
    *out = req_doc(kr, &r, 1);
    tg_store_req_clear(&r);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

int tg_keyring_request_delete(tg_keyring *kr, const char *name, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_req r = {0};
    if ((rc = req_get(kr, name, &r, err)) == 0 &&
        (rc = tg_store_req_delete(kr->st, r.id, err)) == 0)
        rc = tg_store_key_gc(kr->st, r.key_id, err); /* a pending request's key goes with it */
    tg_store_req_clear(&r);
    return kr_finish(kr, rc, err);
}
