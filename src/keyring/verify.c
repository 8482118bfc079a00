/*
 * verify.c — `tlsgate verify` (SPEC C5): the inputs' bytes in, the verdict document out.
 * The rules live in src/x509/verify.c; this file only decodes and describes. Nothing here
 * touches the store unless a trust store is named: verifying files must work (and change
 * nothing) without one.
 */
#include "keyring_int.h"

#include <stdlib.h>
#include <string.h>

/* Certificates collected from several files; the bundles keep ownership. */
typedef struct certset {
    tg_bundle *bundles;
    size_t nbundles;
    tg_cert **v;
    size_t n;
} certset;

static int set_add(certset *s, const tg_input *in, tg_err *err)
{
    tg_bundle *nb = realloc(s->bundles, (s->nbundles + 1) * sizeof(*nb));
    if (nb == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    s->bundles = nb;
    tg_bundle *b = &s->bundles[s->nbundles];
    memset(b, 0, sizeof(*b));
    int rc = tg_bundle_decode(in->data, in->len, in->label, NULL, b, err);
    if (rc != 0) return rc;
    s->nbundles++;
    if (b->ncerts == 0) return tg_err_set(err, TG_E_INVALID, "%s holds no certificate", in->label);
    tg_cert **nv = realloc(s->v, (s->n + b->ncerts) * sizeof(*nv));
    if (nv == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    s->v = nv;
    for (size_t i = 0; i < b->ncerts; i++)
        s->v[s->n++] = b->certs[i];
    return 0;
}

static void set_clear(certset *s)
{
    for (size_t i = 0; i < s->nbundles; i++)
        tg_bundle_clear(&s->bundles[i]);
    free(s->bundles);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static json_t *chain_doc(const tg_verify_result *r)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < r->nchain; i++) {
        int anchor = r->anchored && i + 1 == r->nchain;
        json_t *o =
            json_pack("{s:s, s:s}", "subject", r->links[i].subject, "issuer", r->links[i].issuer);
        if (o != NULL && (kr_json_time(o, "not_after", r->links[i].not_after) != 0 ||
                          json_object_set_new(o, "trust_anchor", json_boolean(anchor)) != 0)) {
            json_decref(o);
            o = NULL;
        }
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

int tg_keyring_verify(tg_keyring *kr, const tg_verify_opts *o, json_t **out, tg_err *err)
{
    *out = NULL;
    long long at = 0;
    tg_purpose purpose = TG_PURPOSE_SERVER;
    if (o->leaf == NULL)
        return tg_err_fset(err, TG_E_USAGE, "leaf", "verify needs the certificate to check");
    if ((o->ncas == 0) == (o->truststore == NULL))
        return tg_err_fset(err, TG_E_USAGE, o->truststore ? "truststore" : "ca_file",
                           "verify needs the certificates to trust: a trust store or CA files "
                           "(one of the two, not both)");
    if (o->host != NULL && o->host[0] == '\0')
        return tg_err_fset(err, TG_E_USAGE, "host", "the host must be a DNS name or an IP address");
    if (o->at != NULL && tg_time_parse(o->at, &at) != 0)
        return tg_err_fset(err, TG_E_USAGE, "at",
                           "the validation time must be seconds since 1970 (Unix time) or an "
                           "RFC 3339 date such as 2026-01-31T12:00:00Z, not '%s'",
                           o->at);
    if (o->purpose != NULL && strcmp(o->purpose, "server") != 0) {
        if (strcmp(o->purpose, "client") != 0)
            return tg_err_fset(err, TG_E_USAGE, "purpose",
                               "the purpose is server or client, not '%s'", o->purpose);
        purpose = TG_PURPOSE_CLIENT;
    }
    if (o->truststore != NULL && kr == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "a trust store needs the keyring");
    certset leaf = {0}, cands = {0}, anchors = {0};
    tg_cert **ts = NULL; /* a trust store's anchors, owned here */
    size_t nts = 0;
    tg_verify_result res = {0};
    int rc = set_add(&leaf, o->leaf, err);
    for (size_t i = 0; rc == 0 && i < o->nchains; i++)
        rc = set_add(&cands, &o->chains[i], err);
    for (size_t i = 0; rc == 0 && i < o->ncas; i++)
        rc = set_add(&anchors, &o->cas[i], err);
    if (rc == 0 && o->truststore != NULL &&
        (rc = tg_keyring_ts_anchors(kr, o->truststore, &ts, &nts, err)) == 0) {
        /* borrowed into the anchor set; freed below */
        tg_cert **nv = realloc(anchors.v, (anchors.n + nts + 1) * sizeof(*nv));
        if (nv == NULL)
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        else {
            anchors.v = nv;
            for (size_t i = 0; i < nts; i++)
                anchors.v[anchors.n++] = ts[i];
        }
    }
    /* certificates after the first in the leaf's file (a server's full chain) are candidates */
    for (size_t i = 1; rc == 0 && i < leaf.n; i++) {
        tg_cert **nv = realloc(cands.v, (cands.n + 1) * sizeof(*nv));
        if (nv == NULL) {
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
            break;
        }
        cands.v = nv;
        cands.v[cands.n++] = leaf.v[i];
    }
    if (rc != 0) goto end;
    tg_verify_req req = {.leaf = leaf.v[0],
                         .anchors = anchors.v,
                         .nanchors = anchors.n,
                         .candidates = cands.v,
                         .ncandidates = cands.n,
                         .host = o->host,
                         .at = at,
                         .at_set = o->at != NULL,
                         .purpose = purpose};
    if ((rc = tg_verify(&req, &res, err)) != 0) goto end;
    json_t *chain = chain_doc(&res);
    *out = chain ? json_pack("{s:s, s:s, s:o}", "verdict", res.valid ? "valid" : "invalid",
                             "reason", res.reason, "chain", chain)
                 : NULL;
    if (*out == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
end:
    tg_verify_result_clear(&res);
    set_clear(&leaf);
    set_clear(&cands);
    set_clear(&anchors);
    for (size_t i = 0; i < nts; i++)
        tg_cert_free(ts[i]);
    free(ts);
    return rc;
}
