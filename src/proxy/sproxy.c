/*
 * sproxy.c — one server proxy as it runs (SPEC I5–I8, issue 12): the protected servers'
 * own certificates with their keys, chosen by the client's SNI with serve's name index
 * (src/tls index.c: the same rules, not a copy), the networks it protects, its source
 * exceptions, and where the real server is.
 *
 * A server proxy is built whole like a client proxy (conf.c: pxy_common gives the two
 * contexts and the shared switches) and flows run through flow.c; what differs is here:
 *   - certificates: rt's tg_served list, in the proxy's order, loaded once per build; the
 *     first is served when the SNI names none of them (or there is no SNI);
 *   - towards clients, sessions resume (a server's own certificate, unlike a forged
 *     leaf, is the same for every flow): a session cache and tickets per build;
 *   - the real server's certificate is verified against the trust store's anchors only
 *     when the proxy has one (`verify_upstream`); otherwise anything is accepted, as
 *     internal servers often have internal certificates.
 * Invariant: the index's ids are positions in certs plus one, so that a pick needs no
 * lookup; a build with no usable certificate fails (serve logs it and runs the others).
 */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <limits.h>
#include <event2/util.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The loaded certificate (leaf, key, chain as stored) and its index entry. */
static int load_one(pxy *p, tg_served *sv, size_t pos, tg_err *err)
{
    scert *sc = &p->certs[pos];
    X509 *leaf = tg_cert_x509(sv->cert);
    EVP_PKEY *key = tg_key_pkey(sv->key);
    if (!X509_up_ref(leaf)) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    sc->f.leaf = leaf;
    if (!EVP_PKEY_up_ref(key)) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    sc->f.key = key;
    if ((sc->f.chain = sk_X509_new_null()) == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < sv->nchain; i++) {
        const unsigned char *d = sv->chain[i].der;
        X509 *x = d2i_X509(NULL, &d, (long)sv->chain[i].derlen);
        if (x == NULL || !sk_X509_push(sc->f.chain, x)) {
            X509_free(x);
            return tg_err_set(err, TG_E_STORE, "certificate '%s': its stored chain does not parse",
                              sv->name ? sv->name : "?");
        }
    }
    unsigned int n = 0;
    X509_digest(leaf, EVP_sha256(), sc->f.sha256, &n);
    snprintf(sc->name, sizeof(sc->name), "%s", sv->name ? sv->name : "");
    tg_certinfo info = {0};
    int rc = tg_cert_info(sv->cert, &info, err);
    if (rc != 0) return rc;
    sc->not_after = info.not_after;
    tg_servable s = {.id = (int64_t)pos + 1,
                     .sans = info.sans.v,
                     .nsans = info.sans.n,
                     .cn = info.subject_cn ? info.subject_cn : "",
                     .ecdsa = strcmp(info.key_type, "EC") == 0,
                     .not_before = info.not_before,
                     .not_after = info.not_after};
    if (tg_index_add(p->idx, &s) != 0) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    tg_certinfo_clear(&info);
    return rc;
}

/* "ADDR:PORT" of explicit mode's real server, as an address (the store keeps it
 * canonical: a literal address, never a name). */
static int upstream_addr(pxy *p, const char *up, tg_err *err)
{
    int len = (int)sizeof(p->upstream);
    if (up == NULL || evutil_parse_sockaddr_port(up, (struct sockaddr *)&p->upstream, &len) != 0)
        return tg_err_set(err, TG_E_STORE, "server proxy '%s': its upstream '%s' is not an address",
                          p->name, up ? up : "");
    p->upstreamlen = (socklen_t)len;
    return 0;
}

int spxy_build(tg_proxies *svc, tg_proxy_rt *rt, pstats *st, pxy **out, tg_err *err)
{
    pxy *p = NULL;
    /* the protected server's own clients may be older than a browser: CBC suites too */
    int rc = pxy_common(svc, rt, st, PROXY_CIPHERS, PROXY_CIPHERS, &p, err);
    if (rc != 0) return rc;
    json_t *c = rt->conf;
    p->verify = json_is_true(json_object_get(c, "verify_upstream"));
    if ((rc = cidr_list(json_object_get(c, "dest"), &p->dest, &p->ndest, err)) != 0 ||
        (rc = cidr_list(json_object_get(c, "source_except"), &p->except, &p->nexcept, err)) != 0)
        goto end;
    if (!p->transparent &&
        (rc = upstream_addr(p, json_string_value(json_object_get(c, "upstream")), err)) != 0)
        goto end;
    if (rt->ncerts == 0) {
        rc = tg_err_set(err, TG_E_NOTFOUND,
                        "none of its certificates has a usable private key (tlsgate proxy server "
                        "show %s)",
                        p->name);
        goto end;
    }
    if ((p->idx = tg_index_new()) == NULL ||
        (p->certs = calloc(rt->ncerts, sizeof(*p->certs))) == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    for (size_t i = 0; rc == 0 && i < rt->ncerts; i++) {
        rc = load_one(p, &rt->certs[i], i, err);
        p->ncerts = i + 1; /* freed with the build, loaded or not */
    }
    if (rc != 0) goto end;
    tg_index_done(p->idx, 1);
    /* the trust store's anchors, moved over: verification only when there is one */
    if (p->verify && rt->nanchors > 0) {
        p->anchors = rt->anchors;
        p->nanchors = rt->nanchors;
        rt->anchors = NULL;
        rt->nanchors = 0;
    }
    /* a server's own certificate: clients may resume (cache and tickets per build) */
    SSL_CTX_set_session_cache_mode(p->cctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(p->cctx, (const unsigned char *)p->name,
                                   (unsigned int)strnlen(p->name, SSL_MAX_SID_CTX_LENGTH));
    SSL_CTX_set_timeout(p->cctx, 300);
    SSL_CTX_set_num_tickets(p->cctx, 1);
    size_t nun = json_array_size(rt->unusable);
    for (size_t i = 0; i < nun; i++) {
        json_t *u = json_array_get(rt->unusable, i);
        tg_serve_say("server proxy %s: certificate %s is not served: its private key is %s "
                     "(import the key again: tlsgate cert import KEYFILE)",
                     p->name, json_string_value(json_object_get(u, "name")),
                     json_string_value(json_object_get(u, "key")));
    }
end:
    if (rc != 0) {
        pxy_unref(p);
        return rc;
    }
    *out = p;
    return 0;
}

const scert *spxy_pick(const pxy *p, const char *sni, int ecdsa_ok, int *how)
{
    int64_t id =
        tg_index_pick(p->idx, sni && sni[0] ? sni : NULL, ecdsa_ok, (long long)time(NULL), how);
    if (id < 1 || (size_t)id > p->ncerts) id = 1;
    return &p->certs[id - 1];
}

int spxy_protects(const pxy *p, const struct sockaddr_storage *dst)
{
    if (!p->server || !p->transparent) return 0;
    unsigned port = dst->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)dst)->sin_port)
                    : dst->ss_family == AF_INET6
                        ? ntohs(((const struct sockaddr_in6 *)dst)->sin6_port)
                        : 0;
    char net[64];
    return pxy_port_on(p, port) && cidr_find(p->dest, p->ndest, dst, net, sizeof(net));
}

void spxy_expiry(pxy *p, long long now)
{
    if (now < p->next_expiry) return; /* called every second: nothing has expired since */
    long long next = LLONG_MAX;
    for (size_t i = 0; i < p->ncerts; i++) {
        scert *sc = &p->certs[i];
        if (sc->expired_said) continue;
        if (sc->not_after > now) {
            if (sc->not_after < next) next = sc->not_after;
            continue;
        }
        sc->expired_said = 1;
        char t[40];
        tg_time_rfc3339((time_t)sc->not_after, t, sizeof(t));
        tg_log(TG_LOG_ERROR,
               "server proxy %s: certificate %s expired on %s and is still served: renew "
               "or replace it (tlsgate cert replace %s …)",
               p->name, sc->name, t, sc->name);
    }
    p->next_expiry = next;
}
