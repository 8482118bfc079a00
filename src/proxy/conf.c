/*
 * conf.c — one proxy as it runs: its settings from the store's document, its two TLS
 * contexts (towards clients and towards upstreams); pxy_common is what both kinds share,
 * pxy_build a client proxy's trust anchors and signers (sproxy.c: a server proxy's part).
 *
 * A pxy is built whole off the flows (on serve's thread 0, at start and after a change)
 * and reference-counted: the listener holds one, each flow holds one, so a changed or
 * deleted proxy lets its open flows finish with what they started with.
 *
 * Upstream defaults (SPEC I4): TLS 1.2 and 1.3 (the proxy's --protocols), for TLS 1.2
 * only ECDHE key exchange with AES-GCM, ChaCha20 or AES-CBC suites (no RSA key exchange, CCM, 3DES,
 * RC4 or export suites) unless --ciphers says otherwise; the upstream's certificate is not checked
 * by libssl (VERIFY_NONE) but by flow.c with x509's verifier before anything is forged. Towards
 * clients the same versions, never above what the upstream agreed (flow.c lowers it per flow).
 */
#include "proxy_int.h"

#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

void pxy_ref(pxy *p)
{
    atomic_fetch_add(&p->refs, 1);
}

void pxy_unref(pxy *p)
{
    if (p == NULL || atomic_fetch_sub(&p->refs, 1) != 1) return;
    SSL_CTX_free(p->cctx);
    SSL_CTX_free(p->uctx);
    for (size_t i = 0; i < p->nanchors; i++)
        tg_cert_free(p->anchors[i]);
    free(p->anchors);
    signer_free(p->sign);
    signer_free(p->untrusted);
    policy_free(p->pol);
    verdicts_free(p->verdicts);
    upsess_free(p->sessions);
    sk_X509_pop_free(p->ca_copies, X509_free);
    free(p->dest);
    free(p->except);
    tg_index_free(p->idx);
    for (size_t i = 0; i < p->ncerts; i++)
        forged_clear(&p->certs[i].f);
    free(p->certs);
    json_decref(p->conf);
    free(p);
}

int pxy_port_on(const pxy *p, unsigned port)
{
    return port < 65536 && (p->ports[port >> 3] >> (port & 7)) & 1;
}

static int version_of(const char *s)
{
    return strcmp(s, "1.0") == 0   ? TLS1_VERSION
           : strcmp(s, "1.1") == 0 ? TLS1_1_VERSION
           : strcmp(s, "1.2") == 0 ? TLS1_2_VERSION
           : strcmp(s, "1.3") == 0 ? TLS1_3_VERSION
                                   : 0;
}

static int flag(json_t *conf, const char *k)
{
    return json_is_true(json_object_get(conf, k));
}

/* "decrypt", "bypass" or "block" (absent: dflt). */
static int action(json_t *conf, const char *k, int dflt)
{
    const char *v = json_string_value(json_object_get(conf, k));
    return v == NULL                   ? dflt
           : strcmp(v, "block") == 0   ? ACT_BLOCK
           : strcmp(v, "bypass") == 0  ? ACT_BYPASS
           : strcmp(v, "decrypt") == 0 ? ACT_DECRYPT
                                       : dflt;
}

/* --keylog: the secrets of both connections of a decrypted flow, for Wireshark. */
static void on_keylog(const SSL *ssl, const char *line)
{
    tg_proxies *svc = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (svc != NULL) keylog_write(svc, line);
}

/* The versions and suites both contexts share. */
static int ctx_common(SSL_CTX *ctx, int minv, int maxv, const char *ciphers, tg_err *err)
{
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (minv < TLS1_2_VERSION) SSL_CTX_set_security_level(ctx, 0); /* TLS 1.0/1.1 on request */
    if (!SSL_CTX_set_min_proto_version(ctx, minv) || !SSL_CTX_set_max_proto_version(ctx, maxv) ||
        !SSL_CTX_set_cipher_list(ctx, ciphers) ||
        !SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384"))
        return tg_err_set(err, TG_E_INVALID, "the proxy's protocols or ciphers are not usable");
    return 0;
}

int pxy_common(tg_proxies *svc, tg_proxy_rt *rt, pstats *st, const char *client_ciphers,
               const char *upstream_ciphers, pxy **out, tg_err *err)
{
    *out = NULL;
    pxy *p = calloc(1, sizeof(*p));
    if (p == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    atomic_init(&p->refs, 1);
    p->svc = svc;
    p->st = st;
    p->conf = json_incref(rt->conf);
    json_t *c = rt->conf;
    int rc = 0;
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *listen = json_string_value(json_object_get(c, "listen"));
    const char *mode = json_string_value(json_object_get(c, "mode"));
    const char *kind = json_string_value(json_object_get(c, "kind"));
    p->server = kind != NULL && strcmp(kind, "server") == 0;
    if (name == NULL || mode == NULL || (listen == NULL && !p->server)) {
        rc = tg_err_set(err, TG_E_STORE, "a proxy in the store has no name, listen or mode");
        goto end;
    }
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->listen, sizeof(p->listen), "%s", listen ? listen : "");
    p->transparent = strcmp(mode, "transparent") == 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(c, "ports"), i, r) /* [[first, last], …] */
    {
        long long lo = json_integer_value(json_array_get(r, 0)),
                  hi = json_integer_value(json_array_get(r, 1));
        for (long long port = lo; port >= 1 && port <= hi && port < 65536; port++)
            p->ports[port >> 3] |= (uint8_t)(1u << (port & 7));
    }
    p->http2_downgrade = flag(c, "http2_downgrade");
    p->tcp_reset = flag(c, "tcp_reset");
    p->log = flag(c, "log");
    p->keylog = flag(c, "keylog");
    int minv = TLS1_2_VERSION, maxv = TLS1_3_VERSION;
    json_t *protos = json_object_get(c, "protocols");
    if (json_array_size(protos) > 0) {
        minv = TLS1_3_VERSION, maxv = TLS1_VERSION;
        json_t *v;
        json_array_foreach(protos, i, v)
        {
            int ver = version_of(json_string_value(v) ? json_string_value(v) : "");
            if (ver == 0) continue;
            if (ver < minv) minv = ver;
            if (ver > maxv) maxv = ver;
        }
        if (maxv < minv) minv = TLS1_2_VERSION, maxv = TLS1_3_VERSION;
    }
    const char *ciphers = json_string_value(json_object_get(c, "ciphers"));
    if ((p->verdicts = verdicts_new()) == NULL || (p->sessions = upsess_new()) == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    p->cctx = SSL_CTX_new(TLS_server_method());
    p->uctx = SSL_CTX_new(TLS_client_method());
    if (p->cctx == NULL || p->uctx == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "cannot create a TLS context");
        goto end;
    }
    if ((rc = ctx_common(p->cctx, minv, maxv, ciphers ? ciphers : client_ciphers, err)) != 0 ||
        (rc = ctx_common(p->uctx, minv, maxv, ciphers ? ciphers : upstream_ciphers, err)) != 0)
        goto end;
    SSL_CTX_set_verify(p->uctx, SSL_VERIFY_NONE, NULL); /* flow.c verifies, x509's verifier */
    /* sessions with upstreams are ours to keep (upsess.c), not OpenSSL's internal cache */
    SSL_CTX_set_session_cache_mode(p->uctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(p->uctx, flow_new_session);
    SSL_CTX_set_client_hello_cb(p->cctx, flow_hello_cb, NULL);
    SSL_CTX_set_alpn_select_cb(p->cctx, flow_alpn_cb, NULL);
    if (p->keylog) {
        SSL_CTX_set_app_data(p->cctx, svc);
        SSL_CTX_set_app_data(p->uctx, svc);
        SSL_CTX_set_keylog_callback(p->cctx, on_keylog);
        SSL_CTX_set_keylog_callback(p->uctx, on_keylog);
    }
end:
    if (rc != 0) {
        pxy_unref(p);
        return rc;
    }
    *out = p;
    return 0;
}

int pxy_build(tg_proxies *svc, tg_proxy_rt *rt, tg_cert *uca, tg_key *ukey, pstats *st,
              catmap *cats, pxy **out, tg_err *err)
{
    pxy *p = NULL;
    int rc = pxy_common(svc, rt, st, PROXY_CIPHERS_CLIENTS, PROXY_CIPHERS, &p, err);
    if (rc != 0) return rc;
    json_t *c = rt->conf;
    size_t i;
    p->block_invalid = flag(c, "block_invalid");
    p->block_expired = flag(c, "block_expired");
    p->min_key_bits = (int)json_integer_value(json_object_get(c, "min_key_bits"));
    p->no_sni = action(c, "no_sni", ACT_DECRYPT);
    p->ech = action(c, "ech", ACT_BYPASS);
    p->non_tls = action(c, "non_tls", ACT_BYPASS);
    p->fail_open_secs = (int)json_integer_value(json_object_get(c, "fail_open_secs"));
    p->max_conns = (int)json_integer_value(json_object_get(c, "max_conns"));
    const char *over = json_string_value(json_object_get(c, "over_max"));
    p->over_block = over != NULL && strcmp(over, "block") == 0;
    if ((rc = policy_build(rt->policy, cats, &p->pol, err)) != 0) goto end;
    if ((p->ca_copies = sk_X509_new_null()) == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    for (i = 0; i < rt->ncopies; i++) {
        X509 *x = tg_cert_x509(rt->copies[i]);
        if (!X509_up_ref(x)) continue;
        if (!sk_X509_push(p->ca_copies, x)) X509_free(x);
    }
    /* anchors: the trust store, never one of our own signing CAs */
    unsigned char own[2][32];
    if ((rc = tg_cert_spki_sha256(rt->signing, own[0], err)) != 0 ||
        (rc = tg_cert_spki_sha256(uca, own[1], err)) != 0)
        goto end;
    p->anchors = calloc(rt->nanchors + 1, sizeof(*p->anchors));
    if (p->anchors == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    for (i = 0; i < rt->nanchors; i++) {
        unsigned char id[32];
        if (tg_cert_spki_sha256(rt->anchors[i], id, err) != 0) {
            tg_err_clear(err);
            continue;
        }
        if (memcmp(id, own[0], 32) == 0 || memcmp(id, own[1], 32) == 0) continue;
        p->anchors[p->nanchors] = rt->anchors[i];
        rt->anchors[i] = NULL; /* moved */
        p->nanchors++;
    }
    /* the signers take their certificates and keys over */
    tg_cert *sc = rt->signing;
    tg_key *sk = rt->signing_key;
    rt->signing = NULL;
    rt->signing_key = NULL;
    if ((rc = signer_new(sc, sk, rt->chain, rt->nchain, st, &p->sign, err)) != 0) goto end;
    tg_cert *ucc = tg_cert_adopt(tg_cert_x509(uca));
    tg_key *ukk = tg_key_adopt(tg_key_pkey(ukey));
    if (ucc == NULL || ukk == NULL) {
        tg_cert_free(ucc);
        tg_key_free(ukk);
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    if ((rc = signer_new(ucc, ukk, NULL, 0, st, &p->untrusted, err)) != 0) goto end;
    /* forged leaves vary by upstream: nothing to resume */
    SSL_CTX_set_session_cache_mode(p->cctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(p->cctx, SSL_OP_NO_TICKET);
end:
    if (rc != 0) {
        pxy_unref(p);
        return rc;
    }
    *out = p;
    return 0;
}
