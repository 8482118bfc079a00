/*
 * acme.c — the ACME client (RFC 8555) with renewal information (RFC 9773): accounts,
 * orders answered through serve (http-01, tls-alpn-01) or a hook (dns-01), and the
 * renewal job of the enrollment thread.
 *
 * Invariants:
 *   - every request is JWS-signed (ES256) with the account key the keyring unsealed; the
 *     key is freed (wiped) with the client, never written anywhere else;
 *   - every exchange goes through enroll_http (one deadline each); every poll is capped
 *     in count (ACME_POLLS) and in total time (ACME_ORDER_SECS), and stops when serve
 *     stops;
 *   - a challenge published to the store is removed when the order ends, whatever its end;
 *   - the certificate enters the keyring only whole (tg_keyring_acme_install): until then
 *     the old one keeps serving;
 *   - an ACME error is told as the server's problem document: its type and detail.
 */
#include "enroll_int.h"
#include "../x509/ossl.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ACME_POLLS       60  /* polls of one authorization or order, at most */
#define ACME_ORDER_SECS  300 /* an order from newOrder to the certificate, at most */
#define ACME_POLL_MAX    10  /* seconds between polls, at most */
#define ACME_HOOK_SECS   120 /* a dns-01 hook's run, at most */
#define ACME_NONCE_TRIES 3   /* a request refused for its nonce is sent again, this often */
#define ACME_ARI_DEFAULT 21600
#define ACME_BACKOFF_MIN 10
#define ACME_BACKOFF_MAX 86400

extern char **environ;

/* ---- base64url ---- */

static char *b64url(const unsigned char *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out == NULL) return NULL;
    int len = n ? EVP_EncodeBlock((unsigned char *)out, p, (int)n) : 0;
    out[len] = '\0';
    for (int i = 0; i < len; i++) {
        if (out[i] == '+') out[i] = '-';
        if (out[i] == '/') out[i] = '_';
        if (out[i] == '=') out[i] = '\0';
    }
    return out;
}

static char *b64url_str(const char *s)
{
    return b64url((const unsigned char *)s, strlen(s));
}

/* Decodes base64url (or standard base64) text, whitespace trimmed at the ends, into a
 * secret for tg_free_secret (the scratch copy is wiped too). */
static int b64url_decode(const char *in, unsigned char **out, size_t *outlen)
{
    while (*in == ' ' || *in == '\n' || *in == '\r' || *in == '\t')
        in++;
    size_t n = strlen(in);
    while (n > 0 && strchr(" \n\r\t=", in[n - 1]) != NULL)
        n--;
    if (n == 0 || n > 4096) return -1;
    char *t = malloc(n + 4);
    unsigned char *b = malloc(n + 4);
    if (t == NULL || b == NULL) {
        free(t);
        free(b);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        t[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    size_t pad = (4 - n % 4) % 4;
    memset(t + n, '=', pad);
    int len = EVP_DecodeBlock(b, (unsigned char *)t, (int)(n + pad));
    tg_free_secret(t, n + 4); /* an EAB key's text */
    if (len < 0 || pad == 3) {
        tg_free_secret(b, n + 4);
        return -1;
    }
    *out = b;
    *outlen = (size_t)len - pad;
    return 0;
}

/* ---- the client ---- */

typedef struct acme {
    tg_keyring *kr;
    volatile int *stopping;
    char *ca_pem;    /* --directory-ca, or NULL */
    json_t *dir;     /* the directory */
    char *nonce;     /* the next Replay-Nonce */
    tg_key *key;     /* the account key */
    json_t *jwk;     /* its public JWK */
    char *thumb;     /* base64url(SHA-256(JWK)) (RFC 7638) */
    char *kid;       /* the account URL, once known */
    long long until; /* the order's deadline (unix seconds) */
} acme;

static void acme_clear(acme *c)
{
    free(c->ca_pem);
    json_decref(c->dir);
    free(c->nonce);
    tg_key_free(c->key);
    json_decref(c->jwk);
    free(c->thumb);
    free(c->kid);
    memset(c, 0, sizeof(*c));
}

static const char *dir_url(acme *c, const char *what)
{
    return json_string_value(json_object_get(c->dir, what));
}

static int coord(EVP_PKEY *pk, const char *name, char **out)
{
    BIGNUM *bn = NULL;
    unsigned char buf[32];
    if (EVP_PKEY_get_bn_param(pk, name, &bn) != 1 || BN_bn2binpad(bn, buf, 32) != 32) {
        BN_free(bn);
        return -1;
    }
    BN_free(bn);
    *out = b64url(buf, 32);
    return *out ? 0 : -1;
}

static int make_jwk(acme *c, tg_err *err)
{
    EVP_PKEY *pk = tg_key_pkey(c->key);
    char *x = NULL, *y = NULL;
    char name[32] = "";
    size_t nl = 0;
    if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &nl) !=
            1 ||
        strcmp(name, "prime256v1") != 0 || coord(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 0 ||
        coord(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 0) {
        free(x);
        free(y);
        return tg_err_set(err, TG_E_INVALID, "the ACME account key is not an EC P-256 key");
    }
    c->jwk = json_pack("{s:s,s:s,s:s,s:s}", "crv", "P-256", "kty", "EC", "x", x, "y", y);
    free(x);
    free(y);
    char *text = c->jwk ? json_dumps(c->jwk, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    unsigned char h[32];
    int rc = text ? tg_sha256(text, strlen(text), h, err) : TG_E_INTERNAL;
    free(text);
    if (rc == 0 && (c->thumb = b64url(h, 32)) == NULL) rc = TG_E_INTERNAL;
    return rc ? tg_err_set(err, TG_E_INTERNAL, "out of memory") : 0;
}

/* ES256: the DER signature OpenSSL makes, as JWS wants it (r || s, 32 bytes each). */
static char *es256(acme *c, const char *input, tg_err *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[80], raw[64];
    size_t len = sizeof(der);
    char *out = NULL;
    ECDSA_SIG *sig = NULL;
    const unsigned char *p = der;
    if (md != NULL &&
        EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, tg_key_pkey(c->key), NULL) == 1 &&
        EVP_DigestSign(md, der, &len, (const unsigned char *)input, strlen(input)) == 1 &&
        (sig = d2i_ECDSA_SIG(NULL, &p, (long)len)) != NULL) {
        const BIGNUM *r, *s;
        ECDSA_SIG_get0(sig, &r, &s);
        if (BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32)
            out = b64url(raw, 64);
    }
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    if (out == NULL) tg_err_set(err, TG_E_INTERNAL, "signing an ACME request failed");
    return out;
}

static char *hs256(const unsigned char *key, size_t keylen, const char *input, tg_err *err)
{
    unsigned char mac[32];
    size_t len = 0;
    char *out = NULL;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *x = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (x != NULL && EVP_MAC_init(x, key, keylen, params) == 1 &&
        EVP_MAC_update(x, (const unsigned char *)input, strlen(input)) == 1 &&
        EVP_MAC_final(x, mac, &len, sizeof(mac)) == 1)
        out = b64url(mac, len);
    EVP_MAC_CTX_free(x);
    EVP_MAC_free(m);
    OPENSSL_cleanse(mac, sizeof(mac));
    if (out == NULL) tg_err_set(err, TG_E_INTERNAL, "the external account binding failed");
    return out;
}

/* A flattened JWS (RFC 7515 §7.2.2) of payload (NULL: "" for POST-as-GET) under protected
 * header hdr; signed with the account key, or with HMAC key when hkey is given. */
static char *jws(acme *c, json_t *hdr, const char *payload, const unsigned char *hkey,
                 size_t hkeylen, tg_err *err)
{
    char *ht = json_dumps(hdr, JSON_COMPACT);
    char *h64 = ht ? b64url_str(ht) : NULL;
    char *p64 = payload ? b64url_str(payload) : tg_strdup("");
    char *input = NULL, *sig = NULL, *out = NULL;
    if (h64 && p64 && (input = malloc(strlen(h64) + strlen(p64) + 2)) != NULL) {
        sprintf(input, "%s.%s", h64, p64);
        sig = hkey ? hs256(hkey, hkeylen, input, err) : es256(c, input, err);
    }
    if (sig != NULL) {
        json_t *j = json_pack("{s:s,s:s,s:s}", "protected", h64, "payload", p64, "signature", sig);
        out = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
    }
    if (out == NULL) tg_err_set(err, TG_E_INTERNAL, "out of memory");
    free(ht);
    free(h64);
    free(p64);
    free(input);
    free(sig);
    return out;
}

/* The server's problem document as a sentence: "TYPE: DETAIL" (RFC 8555 §6.7). */
static int problem(const char *what, const enroll_http_resp *r, tg_err *err)
{
    json_t *p = json_loadb((const char *)r->body, r->len, 0, NULL);
    const char *type = json_string_value(json_object_get(p, "type"));
    const char *detail = json_string_value(json_object_get(p, "detail"));
    if (type && strncmp(type, "urn:ietf:params:acme:error:", 27) == 0) type += 27;
    int rc = tg_err_set(err, TG_E_IO, "%s: the ACME server answered %ld (%s: %s)", what, r->status,
                        type ? type : "no problem document", detail ? detail : "");
    json_decref(p);
    return rc;
}

static int is_problem(const enroll_http_resp *r, const char *type)
{
    json_t *p = json_loadb((const char *)r->body, r->len, 0, NULL);
    const char *t = json_string_value(json_object_get(p, "type"));
    int yes = t != NULL && strcmp(t, type) == 0;
    json_decref(p);
    return yes;
}

static void keep_nonce(acme *c, const enroll_http_resp *r)
{
    const char *n = enroll_http_header_get(r, "Replay-Nonce");
    if (n == NULL || strlen(n) == 0 || strlen(n) > 256 ||
        strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != strlen(n))
        return; /* RFC 8555 §6.5.1: base64url, else not a nonce */
    free(c->nonce);
    c->nonce = tg_strdup(n);
}

static int get_nonce(acme *c, tg_err *err)
{
    const char *url = dir_url(c, "newNonce");
    if (url == NULL) return tg_err_set(err, TG_E_IO, "the ACME directory names no newNonce");
    enroll_http_req q = {.method = "HEAD", .url = url, .ca_pem = c->ca_pem};
    enroll_http_resp r;
    int rc = enroll_http(&q, &r, err);
    if (rc != 0) return rc;
    keep_nonce(c, &r);
    enroll_http_resp_clear(&r);
    return c->nonce ? 0 : tg_err_set(err, TG_E_IO, "the ACME server gave no Replay-Nonce");
}

/* One signed POST (payload NULL: POST-as-GET). A badNonce is sent again with the fresh
 * nonce the refusal carried (RFC 8555 §6.5; ACME_NONCE_TRIES in all). HTTP errors become
 * the problem's sentence. use_jwk: the header carries the key (newAccount), else the
 * account URL. */
static int post(acme *c, const char *url, const char *payload, int use_jwk, const char *accept,
                const char *what, enroll_http_resp *r, tg_err *err)
{
    for (int attempt = 0; attempt < ACME_NONCE_TRIES; attempt++) {
        if (c->stopping && *c->stopping) return tg_err_set(err, TG_E_IO, "serve is stopping");
        int rc = c->nonce ? 0 : get_nonce(c, err);
        if (rc != 0) return rc;
        json_t *hdr = json_pack("{s:s,s:s,s:s}", "alg", "ES256", "nonce", c->nonce, "url", url);
        if (hdr == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
        if (use_jwk)
            json_object_set(hdr, "jwk", c->jwk);
        else
            json_object_set_new(hdr, "kid", json_string(c->kid));
        free(c->nonce);
        c->nonce = NULL;
        char *body = jws(c, hdr, payload, NULL, 0, err);
        json_decref(hdr);
        if (body == NULL) return TG_E_INTERNAL;
        enroll_http_req q = {.method = "POST",
                             .url = url,
                             .content_type = "application/jose+json",
                             .body = (const unsigned char *)body,
                             .bodylen = strlen(body),
                             .accept = accept,
                             .ca_pem = c->ca_pem};
        rc = enroll_http(&q, r, err);
        free(body);
        if (rc != 0) return rc;
        keep_nonce(c, r);
        if (r->status < 400) return 0;
        if (attempt + 1 < ACME_NONCE_TRIES && r->status == 400 &&
            is_problem(r, "urn:ietf:params:acme:error:badNonce")) {
            enroll_http_resp_clear(r);
            continue;
        }
        rc = problem(what, r, err);
        enroll_http_resp_clear(r);
        return rc;
    }
    return tg_err_set(err, TG_E_INTERNAL, "%s: no attempt was made", what);
}

static json_t *body_json(const enroll_http_resp *r, const char *what, tg_err *err)
{
    json_t *j = json_loadb((const char *)r->body, r->len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        tg_err_set(err, TG_E_IO, "%s: the ACME server's answer is not a JSON object", what);
        return NULL;
    }
    return j;
}

static int open_dir(acme *c, const char *url, const char *ca_pem, tg_err *err)
{
    if (ca_pem != NULL && (c->ca_pem = tg_strdup(ca_pem)) == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    enroll_http_req q = {.url = url, .ca_pem = c->ca_pem, .accept = "application/json"};
    enroll_http_resp r;
    int rc = enroll_http(&q, &r, err);
    if (rc != 0) return rc;
    if (r.status != 200)
        rc = problem("reading the ACME directory", &r, err);
    else if ((c->dir = body_json(&r, "reading the ACME directory", err)) == NULL)
        rc = TG_E_IO;
    else if (!dir_url(c, "newAccount") || !dir_url(c, "newOrder") || !dir_url(c, "newNonce"))
        rc = tg_err_set(err, TG_E_IO,
                        "%s is not an ACME directory (newAccount, newOrder, newNonce)", url);
    enroll_http_resp_clear(&r);
    return rc;
}

/* Opens the client for a stored account: directory, key, account URL. */
static int open_account(acme *c, tg_keyring *kr, const char *account, json_t **doc, tg_err *err)
{
    c->kr = kr;
    int rc = tg_keyring_acme_account_get(kr, account, doc, &c->key, err);
    if (rc == 0) rc = make_jwk(c, err);
    if (rc == 0)
        rc = open_dir(c, json_string_value(json_object_get(*doc, "directory")),
                      json_string_value(json_object_get(*doc, "directory_ca")), err);
    const char *url = rc == 0 ? json_string_value(json_object_get(*doc, "url")) : NULL;
    if (rc == 0 && url != NULL && (c->kid = tg_strdup(url)) == NULL)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0 && c->kid == NULL) {
        /* the account URL was lost: ask for the account of this key (RFC 8555 §7.3.1) */
        enroll_http_resp r;
        rc = post(c, dir_url(c, "newAccount"), "{\"onlyReturnExisting\":true}", 1, NULL,
                  "finding the ACME account", &r, err);
        const char *loc = rc == 0 ? enroll_http_header_get(&r, "Location") : NULL;
        if (rc == 0 && (loc == NULL || (c->kid = tg_strdup(loc)) == NULL))
            rc = tg_err_set(err, TG_E_IO, "the ACME server named no account URL");
        enroll_http_resp_clear(&r);
        if (rc == 0) { /* kept again, as stored (without what show adds) */
            json_t *keep = json_deep_copy(*doc);
            const char *shown[] = {"name",    "created",      "created_unix",
                                   "updated", "updated_unix", "certificate_count"};
            for (size_t i = 0; keep && i < sizeof(shown) / sizeof(shown[0]); i++)
                json_object_del(keep, shown[i]);
            tg_err e2 = {0};
            if (keep) json_object_set_new(keep, "url", json_string(c->kid));
            if (keep == NULL || tg_keyring_acme_account_update(kr, account, keep, &e2) != 0)
                tg_log(TG_LOG_WARNING, "ACME: the account URL of '%s' could not be kept: %s",
                       account, e2.msg);
            json_decref(keep);
        }
    }
    return rc;
}

/* ---- accounts ---- */

int tg_acme_account_create(tg_keyring *kr, const tg_acme_account_opts *o, json_t **out, tg_err *err)
{
    *out = NULL;
    acme c = {.kr = kr};
    const char *name = o->name ? o->name : "default";
    json_t *have = NULL, *doc = NULL;
    tg_err ignore = {0};
    if (tg_keyring_acme_name_check(1, name, err) != 0) return err->code;
    if (tg_keyring_acme_account_get(kr, name, &have, NULL, &ignore) == 0) {
        json_decref(have);
        return tg_err_fset(err, TG_E_CONFLICT, "name",
                           "an ACME account named '%s' exists already; delete it first or choose "
                           "another name",
                           name);
    }
    if ((o->eab_kid == NULL) != (o->eab_hmac == NULL))
        return tg_err_fset(err, TG_E_USAGE, "eab_kid",
                           "external account binding needs both the key id and the HMAC key");
    if (o->email && (strlen(o->email) > 254 || strchr(o->email, '@') == NULL ||
                     strpbrk(o->email, " ,\r\n") != NULL))
        return tg_err_fset(err, TG_E_INVALID, "email", "'%s' is not an e-mail address", o->email);
    tg_keyspec ks;
    int rc = tg_keyspec_parse("ec:p256", &ks, err);
    if (rc == 0) rc = tg_key_generate(&ks, &c.key, err);
    if (rc == 0) rc = make_jwk(&c, err);
    if (rc == 0) rc = open_dir(&c, o->directory, o->directory_ca, err);
    json_t *meta = json_object_get(c.dir, "meta");
    if (rc == 0 && o->eab_kid == NULL &&
        json_is_true(json_object_get(meta, "externalAccountRequired")))
        rc = tg_err_fset(err, TG_E_USAGE, "eab_kid",
                         "this ACME server requires external account binding: give the key id "
                         "and HMAC key your CA issued");
    json_t *payload = rc == 0 ? json_pack("{s:b}", "termsOfServiceAgreed", 1) : NULL;
    if (rc == 0 && payload == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0 && o->email) {
        char mailto[300];
        snprintf(mailto, sizeof(mailto), "mailto:%s", o->email);
        json_object_set_new(payload, "contact", json_pack("[s]", mailto));
    }
    if (rc == 0 && o->eab_kid) { /* RFC 8555 §7.3.4: the JWK signed with the CA's MAC key */
        json_t *h = json_pack("{s:s,s:s,s:s}", "alg", "HS256", "kid", o->eab_kid, "url",
                              dir_url(&c, "newAccount"));
        char *jwk = json_dumps(c.jwk, JSON_COMPACT);
        char *eab = h && jwk ? jws(&c, h, jwk, o->eab_hmac, o->eab_hmac_len, err) : NULL;
        json_t *e = eab ? json_loads(eab, 0, NULL) : NULL;
        if (e == NULL)
            rc = tg_err_set(err, TG_E_INTERNAL, "the external account binding failed");
        else
            json_object_set_new(payload, "externalAccountBinding", e);
        json_decref(h);
        free(jwk);
        free(eab);
    }
    char *ptext = rc == 0 ? json_dumps(payload, JSON_COMPACT) : NULL;
    enroll_http_resp r = {0};
    if (rc == 0)
        rc = post(&c, dir_url(&c, "newAccount"), ptext, 1, NULL, "creating the ACME account", &r,
                  err);
    const char *loc = rc == 0 ? enroll_http_header_get(&r, "Location") : NULL;
    if (rc == 0 && loc == NULL)
        rc = tg_err_set(err, TG_E_IO, "the ACME server named no account URL");
    if (rc == 0) {
        doc =
            json_pack("{s:s,s:s,s:o,s:o,s:o}", "directory", o->directory, "url", loc,
                      "directory_ca", o->directory_ca ? json_string(o->directory_ca) : json_null(),
                      "email", o->email ? json_string(o->email) : json_null(), "eab_kid",
                      o->eab_kid ? json_string(o->eab_kid) : json_null());
        rc = doc ? tg_keyring_acme_account_add(kr, name, c.key, doc, err)
                 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    if (rc == 0) rc = tg_keyring_acme_account_get(kr, name, out, NULL, err);
    enroll_http_resp_clear(&r);
    free(ptext);
    json_decref(payload);
    json_decref(doc);
    acme_clear(&c);
    return rc;
}

/* ---- challenges ---- */

/* Runs the dns-01 hook: argv as stored, the action ("add" or "remove") as its last
 * argument, what to publish in the environment; bounded in time. */
static int run_hook(const json_t *hook, const char *action, const char *domain, const char *value,
                    tg_err *err)
{
    size_t n = json_array_size(hook);
    if (n == 0 || n > 32)
        return tg_err_fset(err, TG_E_USAGE, "dns_hook", "dns-01 needs a hook command");
    const char *argv[34];
    for (size_t i = 0; i < n; i++)
        argv[i] = json_string_value(json_array_get(hook, i));
    argv[n] = action;
    argv[n + 1] = NULL;
    char e1[300], e2[320], e3[128], e4[32];
    snprintf(e1, sizeof(e1), "TLSGATE_ACME_DOMAIN=%s", domain);
    snprintf(e2, sizeof(e2), "TLSGATE_ACME_TXT_NAME=_acme-challenge.%s", domain);
    snprintf(e3, sizeof(e3), "TLSGATE_ACME_TXT_VALUE=%s", value);
    snprintf(e4, sizeof(e4), "TLSGATE_ACME_ACTION=%s", action);
    /* the environment is built here: the child of a threaded process (serve) may only exec */
    size_t ne = 0;
    while (environ[ne] != NULL && ne < 4096)
        ne++;
    char **envp = calloc(ne + 5, sizeof(*envp));
    if (envp == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < ne; i++)
        if (strncmp(environ[i], "TLSGATE_ACME_", 13) != 0) envp[k++] = environ[i];
    envp[k++] = e1;
    envp[k++] = e2;
    envp[k++] = e3;
    envp[k++] = e4;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int src = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    if (src != 0)
        return tg_err_fset(err, TG_E_IO, "dns_hook", "the dns-01 hook %s could not start: %s",
                           argv[0], strerror(src));
    int status = 0;
    for (int i = 0; i < ACME_HOOK_SECS * 10; i++) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
            return tg_err_fset(err, TG_E_IO, "dns_hook",
                               "the dns-01 hook (%s %s) failed (status %d)", argv[0], action,
                               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return tg_err_fset(err, TG_E_IO, "dns_hook", "the dns-01 hook (%s %s) took longer than %d s",
                       argv[0], action, ACME_HOOK_SECS);
}

typedef struct published {
    char *token, *domain, *value;
} published;

static void sleep_poll(acme *c, const enroll_http_resp *r)
{
    long long now = (long long)time(NULL);
    long long s = enroll_retry_after(r, now);
    if (s < 1) s = 1;
    if (s > ACME_POLL_MAX) s = ACME_POLL_MAX;
    for (long long i = 0; i < s * 10 && !(c->stopping && *c->stopping); i++) {
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
}

/* POST-as-GET url until its status leaves the pending ones; *out: the last object. */
static int poll(acme *c, const char *url, const char *what, json_t **out, tg_err *err)
{
    *out = NULL;
    for (int i = 0; i < ACME_POLLS; i++) {
        enroll_http_resp r;
        int rc = post(c, url, NULL, 0, NULL, what, &r, err);
        if (rc != 0) return rc;
        json_t *j = body_json(&r, what, err);
        const char *st = json_string_value(json_object_get(j, "status"));
        if (j == NULL || st == NULL) {
            json_decref(j);
            enroll_http_resp_clear(&r);
            return tg_err_set(err, TG_E_IO, "%s: the answer has no status", what);
        }
        if (strcmp(st, "pending") != 0 && strcmp(st, "processing") != 0) {
            enroll_http_resp_clear(&r);
            *out = j;
            return 0;
        }
        json_decref(j);
        if ((long long)time(NULL) >= c->until) {
            enroll_http_resp_clear(&r);
            break;
        }
        sleep_poll(c, &r);
        enroll_http_resp_clear(&r);
    }
    return tg_err_set(err, TG_E_IO, "%s: still pending after %d polls or %d s", what, ACME_POLLS,
                      ACME_ORDER_SECS);
}

/* The error of an invalid authorization: the failed challenge's problem. */
static int authz_failed(const json_t *authz, const char *domain, tg_err *err)
{
    json_t *ch;
    size_t i;
    json_array_foreach(json_object_get(authz, "challenges"), i, ch)
    {
        json_t *e = json_object_get(ch, "error");
        if (e == NULL) continue;
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *detail = json_string_value(json_object_get(e, "detail"));
        if (type && strncmp(type, "urn:ietf:params:acme:error:", 27) == 0) type += 27;
        return tg_err_set(err, TG_E_IO, "the ACME server could not validate %s (%s: %s)", domain,
                          type ? type : "?", detail ? detail : "");
    }
    return tg_err_set(err, TG_E_IO, "the ACME server could not validate %s", domain);
}

/* One authorization: publish the challenge, tell the server, wait for the verdict. */
static int authorize(acme *c, const char *url, const char *type, const json_t *hook, published *pub,
                     tg_err *err)
{
    enroll_http_resp r;
    int rc = post(c, url, NULL, 0, NULL, "reading an authorization", &r, err);
    if (rc != 0) return rc;
    json_t *authz = body_json(&r, "reading an authorization", err);
    enroll_http_resp_clear(&r);
    if (authz == NULL) return TG_E_IO;
    const char *domain =
        json_string_value(json_object_get(json_object_get(authz, "identifier"), "value"));
    const char *status = json_string_value(json_object_get(authz, "status"));
    if (domain == NULL || status == NULL || strlen(domain) > 253) {
        json_decref(authz);
        return tg_err_set(err, TG_E_IO, "an authorization names no domain");
    }
    if (strcmp(status, "valid") == 0) { /* validated before (an earlier order) */
        json_decref(authz);
        return 0;
    }
    const char *token = NULL, *chal_url = NULL;
    json_t *ch;
    size_t i;
    json_array_foreach(json_object_get(authz, "challenges"), i, ch)
    {
        const char *t = json_string_value(json_object_get(ch, "type"));
        if (t != NULL && strcmp(t, type) == 0) {
            token = json_string_value(json_object_get(ch, "token"));
            chal_url = json_string_value(json_object_get(ch, "url"));
        }
    }
    if (token == NULL || chal_url == NULL || strlen(token) > 128 ||
        strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
            strlen(token)) {
        rc = tg_err_set(err, TG_E_IO, "the ACME server offers no usable %s challenge for %s", type,
                        domain);
        json_decref(authz);
        return rc;
    }
    char keyauth[256];
    snprintf(keyauth, sizeof(keyauth), "%s.%s", token, c->thumb);
    pub->token = tg_strdup(token);
    pub->domain = tg_strdup(domain);
    if (strcmp(type, "dns-01") == 0) {
        unsigned char h[32];
        if ((rc = tg_sha256(keyauth, strlen(keyauth), h, err)) == 0 &&
            (pub->value = b64url(h, 32)) == NULL)
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        if (rc == 0) rc = run_hook(hook, "add", domain, pub->value, err);
    } else {
        rc = tg_keyring_acme_challenge_add(c->kr, type, token, domain, keyauth, err);
    }
    if (rc == 0) rc = post(c, chal_url, "{}", 0, NULL, "answering a challenge", &r, err);
    if (rc == 0) enroll_http_resp_clear(&r);
    json_t *done = NULL;
    if (rc == 0) rc = poll(c, url, "waiting for a validation", &done, err);
    const char *st = done ? json_string_value(json_object_get(done, "status")) : NULL;
    if (rc == 0 && (st == NULL || strcmp(st, "valid") != 0)) rc = authz_failed(done, domain, err);
    json_decref(done);
    json_decref(authz);
    return rc;
}

static void unpublish(acme *c, const char *type, const json_t *hook, published *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tg_err e = {0};
        if (p[i].token && strcmp(type, "dns-01") != 0)
            tg_keyring_acme_challenge_remove(c->kr, p[i].token, &e);
        else if (p[i].value)
            run_hook(hook, "remove", p[i].domain, p[i].value, &e);
        free(p[i].token);
        free(p[i].domain);
        free(p[i].value);
    }
}

/* ---- ARI (RFC 9773) ---- */

/* base64url(AKI keyIdentifier) "." base64url(serial's DER content octets) */
static char *ari_cert_id(const tg_cert *cert)
{
    X509 *x = tg_cert_x509(cert);
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
    unsigned char *der = NULL;
    int n = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &der);
    char *out = NULL;
    if (aki != NULL && n > 2) {
        int off = (der[1] & 0x80) ? 2 + (der[1] & 0x7f) : 2;
        char *a = b64url(ASN1_STRING_get0_data(aki), (size_t)ASN1_STRING_length(aki));
        char *s = off < n ? b64url(der + off, (size_t)(n - off)) : NULL;
        if (a && s && (out = malloc(strlen(a) + strlen(s) + 2)) != NULL)
            sprintf(out, "%s.%s", a, s);
        free(a);
        free(s);
    }
    OPENSSL_free(der);
    return out;
}

static long long rfc3339(const char *s)
{
    struct tm tm = {0};
    if (s == NULL) return -1;
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL) return -1;
    while (*end == '.' || (*end >= '0' && *end <= '9'))
        end++;
    long long t = (long long)timegm(&tm);
    if (*end == '+' || *end == '-') {
        int hh = 0, mm = 0;
        if (sscanf(end + 1, "%d:%d", &hh, &mm) == 2)
            t -= (*end == '+' ? 1 : -1) * (hh * 3600LL + mm * 60);
    }
    return t;
}

/* Reads the renewal window; *start, *end (unix), *explanation (new string or NULL),
 * *retry (seconds until the next look). */
static int ari_fetch(acme *c, const char *cert_id, long long *start, long long *end,
                     char **explanation, long long *retry, tg_err *err)
{
    const char *base = dir_url(c, "renewalInfo");
    char url[2048];
    if (base == NULL ||
        (size_t)snprintf(url, sizeof(url), "%s%s%s", base, base[strlen(base) - 1] == '/' ? "" : "/",
                         cert_id) >= sizeof(url))
        return tg_err_set(err, TG_E_IO, "the ACME directory names no usable renewalInfo");
    enroll_http_req q = {.url = url, .ca_pem = c->ca_pem, .accept = "application/json"};
    enroll_http_resp r;
    int rc = enroll_http(&q, &r, err);
    if (rc != 0) return rc;
    json_t *j = NULL;
    if (r.status != 200)
        rc = problem("reading the renewal information", &r, err);
    else if ((j = body_json(&r, "reading the renewal information", err)) == NULL)
        rc = TG_E_IO;
    json_t *w = json_object_get(j, "suggestedWindow");
    if (rc == 0) {
        *start = rfc3339(json_string_value(json_object_get(w, "start")));
        *end = rfc3339(json_string_value(json_object_get(w, "end")));
        if (*start < 0 || *end < *start)
            rc = tg_err_set(err, TG_E_IO, "the renewal information has no valid suggestedWindow");
        const char *ex = json_string_value(json_object_get(j, "explanationURL"));
        *explanation = ex && strlen(ex) < 2048 ? tg_strdup(ex) : NULL;
        long long ra = enroll_retry_after(&r, (long long)time(NULL));
        *retry = ra > 0 ? ra : ACME_ARI_DEFAULT;
        if (*retry < 1) *retry = 1; /* the CA says how often (RFC 9773 §4.3) */
    }
    json_decref(j);
    enroll_http_resp_clear(&r);
    return rc;
}

/* ---- orders ---- */

/* Reads the renewal schedule of the certificate just installed into doc. */
static void schedule(acme *c, json_t *doc, const tg_cert *cert, long long now)
{
    long long nb, na;
    tg_cert_validity(cert, &nb, &na);
    json_object_set_new(doc, "not_after", json_integer(na));
    long long at = nb + (na - nb) * 2 / 3;
    json_object_set_new(doc, "renew_at", json_integer(at));
    json_object_set_new(doc, "ari_next", json_integer(dir_url(c, "renewalInfo") ? now : 0));
    json_object_set_new(doc, "ari", json_null());
}

/* The order itself (RFC 8555 §7.4): newOrder, authorizations, finalize, download, install.
 * replaces: the ARI certID of the certificate this one renews, or NULL. */
static int order(acme *c, const char *name, json_t *doc, const char *replaces, json_t **out,
                 tg_err *err)
{
    const char *type = json_string_value(json_object_get(doc, "challenge"));
    json_t *domains = json_object_get(doc, "domains");
    json_t *hook = json_object_get(doc, "dns_hook");
    const char *profile = json_string_value(json_object_get(doc, "profile"));
    size_t n = json_array_size(domains);
    c->until = (long long)time(NULL) + ACME_ORDER_SECS;
    json_t *ids = json_array(), *d;
    size_t i;
    json_array_foreach(domains, i, d)
        json_array_append_new(ids, json_pack("{s:s,s:O}", "type", "dns", "value", d));
    json_t *req = json_pack("{s:o}", "identifiers", ids);
    if (replaces) json_object_set_new(req, "replaces", json_string(replaces));
    json_t *profiles = json_object_get(json_object_get(c->dir, "meta"), "profiles");
    if (profile && json_object_get(profiles, profile) == NULL) {
        json_decref(req);
        return tg_err_fset(err, TG_E_INVALID, "profile", "the ACME server offers no profile '%s'",
                           profile);
    }
    if (profile) json_object_set_new(req, "profile", json_string(profile));
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    enroll_http_resp r = {0};
    int rc = post(c, dir_url(c, "newOrder"), text, 0, NULL, "placing the ACME order", &r, err);
    free(text);
    if (rc != 0) return rc;
    const char *loc = enroll_http_header_get(&r, "Location");
    char *order_url = loc ? tg_strdup(loc) : NULL;
    json_t *ord = body_json(&r, "placing the ACME order", err);
    enroll_http_resp_clear(&r);
    if (ord == NULL || order_url == NULL) {
        json_decref(ord);
        free(order_url);
        return tg_err_set(err, TG_E_IO, "the ACME server's order has no URL");
    }
    json_object_set_new(doc, "order", json_string(order_url));
    json_t *authzs = json_object_get(ord, "authorizations");
    size_t na = json_array_size(authzs);
    published *pub = calloc(na + 1, sizeof(*pub));
    if (pub == NULL || na > 100 || na < 1)
        rc = tg_err_set(err, TG_E_IO, "the order has %zu authorizations", na);
    for (i = 0; rc == 0 && i < na; i++)
        rc = authorize(c, json_string_value(json_array_get(authzs, i)), type, hook, &pub[i], err);
    if (pub) unpublish(c, type, hook, pub, na);
    free(pub);
    json_t *o2 = NULL;
    if (rc == 0) rc = poll(c, order_url, "waiting for the order", &o2, err);
    const char *st = o2 ? json_string_value(json_object_get(o2, "status")) : NULL;
    if (rc == 0 && st && strcmp(st, "ready") != 0 && strcmp(st, "valid") != 0)
        rc = tg_err_set(err, TG_E_IO, "the ACME order is %s, not ready", st);
    char *pem = NULL;
    const char **names = calloc(n + 1, sizeof(*names));
    json_array_foreach(domains, i, d) if (names) names[i] = json_string_value(d);
    if (rc == 0 && names == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0 && st && strcmp(st, "ready") == 0) {
        rc = tg_keyring_acme_csr(c->kr, name, names, n, &pem, err);
        BIO *b = rc == 0 ? BIO_new_mem_buf(pem, -1) : NULL;
        X509_REQ *csr = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
        unsigned char *der = NULL;
        int dl = csr ? i2d_X509_REQ(csr, &der) : -1;
        char *c64 = dl > 0 ? b64url(der, (size_t)dl) : NULL;
        json_t *fin = c64 ? json_pack("{s:s}", "csr", c64) : NULL;
        char *ft = fin ? json_dumps(fin, JSON_COMPACT) : NULL;
        if (rc == 0 && ft == NULL)
            rc = tg_err_set(err, TG_E_INTERNAL, "the request could not be encoded");
        const char *fu = json_string_value(json_object_get(o2, "finalize"));
        if (rc == 0 && fu == NULL) rc = tg_err_set(err, TG_E_IO, "the order names no finalize URL");
        if (rc == 0) rc = post(c, fu, ft, 0, NULL, "finalizing the ACME order", &r, err);
        if (rc == 0) enroll_http_resp_clear(&r);
        free(ft);
        json_decref(fin);
        free(c64);
        OPENSSL_free(der);
        X509_REQ_free(csr);
        BIO_free(b);
        json_decref(o2);
        o2 = NULL;
        if (rc == 0) rc = poll(c, order_url, "waiting for the certificate", &o2, err);
        st = o2 ? json_string_value(json_object_get(o2, "status")) : NULL;
        if (rc == 0 && (st == NULL || strcmp(st, "valid") != 0))
            rc = tg_err_set(err, TG_E_IO, "the ACME order ended %s, not valid", st ? st : "?");
    }
    const char *cu = o2 ? json_string_value(json_object_get(o2, "certificate")) : NULL;
    if (rc == 0 && cu == NULL)
        rc = tg_err_set(err, TG_E_IO, "the valid order names no certificate");
    if (rc == 0)
        rc = post(c, cu, NULL, 0, "application/pem-certificate-chain",
                  "downloading the certificate", &r, err);
    if (rc == 0) {
        rc = tg_keyring_acme_install(c->kr, name, (const char *)r.body, r.len, out, err);
        enroll_http_resp_clear(&r);
    }
    if (rc != 0) tg_keyring_acme_csr_discard(c->kr, name);
    free(names);
    free(pem);
    json_decref(o2);
    json_decref(ord);
    free(order_url);
    return rc;
}

/* Renews (or first obtains) the certificate and records the outcome in its ACME state. */
static int run_order(tg_keyring *kr, const char *name, volatile int *stopping, int renewal,
                     json_t **out, tg_err *err)
{
    *out = NULL;
    json_t *doc = NULL, *acc = NULL, *res = NULL;
    acme c = {.stopping = stopping};
    int rc = tg_keyring_acme_cert_get(kr, name, &doc, err);
    const char *account = rc == 0 ? json_string_value(json_object_get(doc, "account")) : NULL;
    char *accname = account ? tg_strdup(account) : NULL;
    if (rc == 0) rc = open_account(&c, kr, accname, &acc, err);
    char *replaces = NULL;
    tg_cert *old = NULL;
    if (rc == 0 && renewal && dir_url(&c, "renewalInfo") &&
        tg_keyring_acme_current(kr, name, &old, NULL) == 0)
        replaces = ari_cert_id(old);
    tg_cert_free(old);
    old = NULL;
    if (rc == 0) rc = order(&c, name, doc, replaces, &res, err);
    long long now = (long long)time(NULL);
    if (doc != NULL) {
        /* the document as stored, without what show adds */
        json_object_del(doc, "name");
        json_object_del(doc, "account");
        json_object_del(doc, "created");
        json_object_del(doc, "created_unix");
        json_object_del(doc, "updated");
        json_object_del(doc, "updated_unix");
        if (rc == 0 && tg_keyring_acme_current(kr, name, &old, NULL) == 0) {
            json_object_set_new(doc, "state", json_string("valid"));
            json_object_set_new(doc, "failure_count", json_integer(0));
            json_object_set_new(doc, "last_error", json_null());
            json_object_set_new(doc, "next_try", json_integer(0));
            json_object_set_new(doc, "replaced", replaces ? json_string(replaces) : json_null());
            json_object_set_new(doc, "issued", json_integer(now));
            schedule(&c, doc, old, now);
        } else if (rc != 0 && !(stopping && *stopping)) { /* a stop is no failure */
            int f = (int)json_integer_value(json_object_get(doc, "failure_count")) + 1;
            json_object_set_new(doc, "failure_count", json_integer(f));
            json_object_set_new(doc, "last_error", json_string(err->msg));
            json_object_set_new(
                doc, "next_try",
                json_integer(now + enroll_backoff(f, ACME_BACKOFF_MIN, ACME_BACKOFF_MAX)));
            if (json_object_get(doc, "issued") == NULL)
                json_object_set_new(doc, "state", json_string("failed"));
            else
                json_object_set_new(doc, "state", json_string("renewal-failing"));
        }
        tg_err e2 = {0};
        if (accname && tg_keyring_acme_cert_put(kr, name, accname, doc, 0, &e2) != 0 && rc == 0)
            rc = tg_err_set(err, e2.code, "%s", e2.msg);
    }
    tg_cert_free(old);
    if (rc == 0) rc = tg_keyring_acme_cert_show(kr, name, out, err);
    json_decref(res);
    json_decref(doc);
    json_decref(acc);
    free(accname);
    free(replaces);
    acme_clear(&c);
    return rc;
}

/* http-01 and tls-alpn-01 are answered by a running serve (http-01: on its --http
 * listener): without one, an order would only wait for validations that fail. */
static int serve_ready(tg_keyring *kr, const char *type, tg_err *err)
{
    if (strcmp(type, "dns-01") == 0) return 0;
    json_t *state = NULL, *l;
    size_t i;
    int running = tg_keyring_serve_state(kr, &state, err) == 0 &&
                  json_is_true(json_object_get(state, "running"));
    int http = 0;
    json_array_foreach(json_object_get(state, "listeners"), i, l)
    {
        const char *k = json_string_value(json_object_get(l, "kind"));
        if (k && strcmp(k, "acme-http") == 0) http = 1;
    }
    json_decref(state);
    tg_err_clear(err);
    if (!running)
        return tg_err_fset(err, TG_E_CONFLICT, "challenge",
                           "%s is answered by tlsgate serve, which is not running for this "
                           "store: start serve%s and try again",
                           type, strcmp(type, "http-01") == 0 ? " --http ADDR:PORT" : "");
    if (strcmp(type, "http-01") == 0 && !http)
        return tg_err_fset(err, TG_E_CONFLICT, "challenge",
                           "http-01 is answered on serve's plain-HTTP listener, and this serve "
                           "has none: restart serve with --http ADDR:PORT (port 80 of the "
                           "domains' address) and try again");
    return 0;
}

static int domains_check(const tg_acme_order_opts *o, tg_err *err)
{
    if (o->ndomains == 0)
        return tg_err_fset(err, TG_E_USAGE, "domain", "an order needs at least one domain");
    if (o->ndomains > TG_ACME_DOMAINS_MAX)
        return tg_err_fset(err, TG_E_USAGE, "domain", "an order takes at most %d domains",
                           TG_ACME_DOMAINS_MAX);
    for (size_t i = 0; i < o->ndomains; i++)
        if (!tg_dns_name_valid(o->domains[i], 1) || strlen(o->domains[i]) > 253)
            return tg_err_fset(err, TG_E_INVALID, "domain", "'%s' is not a DNS name",
                               o->domains[i]);
    return 0;
}

int tg_acme_order(tg_keyring *kr, const tg_acme_order_opts *o, json_t **out, tg_err *err)
{
    *out = NULL;
    const char *type = o->challenge ? o->challenge : "http-01";
    const char *account = o->account ? o->account : "default";
    int rc = domains_check(o, err);
    if (rc != 0) return rc;
    if (strcmp(type, "http-01") != 0 && strcmp(type, "tls-alpn-01") != 0 &&
        strcmp(type, "dns-01") != 0)
        return tg_err_fset(err, TG_E_USAGE, "challenge",
                           "the challenge is http-01, tls-alpn-01 or dns-01, not '%s'", type);
    if (o->ndns_hook > 0 &&
        (o->dns_hook[0] == NULL || o->dns_hook[0][0] != '/' || strlen(o->dns_hook[0]) > 1024))
        return tg_err_fset(err, TG_E_USAGE, "dns_hook",
                           "the dns-01 hook is given by its absolute path (serve runs it too, "
                           "from its own directory)");
    if ((strcmp(type, "dns-01") == 0) != (o->ndns_hook > 0))
        return tg_err_fset(err, TG_E_USAGE, "dns_hook",
                           "dns-01 needs a hook command, and only dns-01 takes one");
    for (size_t i = 0; i < o->ndomains; i++)
        if (o->domains[i][0] == '*' && strcmp(type, "dns-01") != 0)
            return tg_err_fset(err, TG_E_USAGE, "domain",
                               "a wildcard name (%s) can only be validated by dns-01",
                               o->domains[i]);
    if (o->profile && (strlen(o->profile) > 64 || tg_text_check(o->profile, NULL, NULL) != 0))
        return tg_err_fset(err, TG_E_INVALID, "profile", "the profile name is not usable");
    if ((rc = serve_ready(kr, type, err)) != 0) return rc;
    json_t *doc =
        json_pack("{s:[],s:s,s:n,s:s,s:i,s:n,s:i}", "domains", "challenge", type, "profile",
                  "state", "ordering", "failure_count", 0, "last_error", "next_try", 0);
    if (doc == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < o->ndomains; i++)
        json_array_append_new(json_object_get(doc, "domains"), json_string(o->domains[i]));
    if (o->profile) json_object_set_new(doc, "profile", json_string(o->profile));
    if (o->ndns_hook) {
        json_t *h = json_array();
        for (size_t i = 0; i < o->ndns_hook; i++)
            json_array_append_new(h, json_string(o->dns_hook[i]));
        json_object_set_new(doc, "dns_hook", h);
    } else {
        json_object_set_new(doc, "dns_hook", json_null());
    }
    rc = tg_keyring_acme_cert_put(kr, o->name, account, doc, 1, err);
    json_decref(doc);
    if (rc != 0) return rc;
    rc = run_order(kr, o->name, NULL, 0, out, err);
    if (rc != 0 && rc != TG_E_IO) { /* refused before the CA saw an order: nothing kept */
        tg_err ignored = {0};
        tg_keyring_acme_cert_delete(kr, o->name, &ignored);
    }
    return rc;
}

int tg_acme_renew(tg_keyring *kr, const char *name, json_t **out, tg_err *err)
{
    json_t *doc = NULL;
    int rc = tg_keyring_acme_cert_get(kr, name, &doc, err);
    const char *type = rc == 0 ? json_string_value(json_object_get(doc, "challenge")) : NULL;
    if (rc == 0) rc = serve_ready(kr, type ? type : "http-01", err);
    json_decref(doc);
    return rc == 0 ? run_order(kr, name, NULL, 1, out, err) : rc;
}

/* ---- the renewal job in serve ---- */

static long long int_of(const json_t *doc, const char *k)
{
    return (long long)json_integer_value(json_object_get(doc, k));
}

/* Looks at one certificate: ARI when due, then a renewal when due; returns when it wants
 * to look again. */
static long long acme_one(enroll_ctx *x, const char *name, long long now)
{
    tg_err err = {0};
    json_t *doc = NULL;
    if (tg_keyring_acme_cert_get(x->kr, name, &doc, &err) != 0) return now + ENROLL_IDLE;
    long long next = now + ENROLL_IDLE;
    int issued = json_object_get(doc, "issued") != NULL;
    long long next_try = int_of(doc, "next_try");
    long long renew_at = int_of(doc, "renew_at");
    long long ari_next = int_of(doc, "ari_next");
    if (!issued) goto end; /* a first order is the CLI's (acme order, acme renew) */
    if (ari_next > 0 && ari_next <= now) {
        acme c = {.stopping = x->stopping};
        json_t *acc = NULL, *chg = json_object();
        tg_cert *cur = NULL;
        char *id = NULL, *ex = NULL;
        long long s = 0, e = 0, retry = ACME_ARI_DEFAULT;
        const char *account = json_string_value(json_object_get(doc, "account"));
        int rc = open_account(&c, x->kr, account, &acc, &err);
        if (rc == 0 && dir_url(&c, "renewalInfo") == NULL) {
            ari_next = 0; /* the CA stopped offering ARI: two thirds of the lifetime */
        } else if (rc == 0 && (rc = tg_keyring_acme_current(x->kr, name, &cur, &err)) == 0 &&
                   (id = ari_cert_id(cur)) != NULL &&
                   (rc = ari_fetch(&c, id, &s, &e, &ex, &retry, &err)) == 0) {
            json_t *ari = json_object_get(doc, "ari");
            if (int_of(ari, "start") != s || int_of(ari, "end") != e) {
                /* a new window: a random moment in it (RFC 9773 §4.2) */
                unsigned long long rnd = 0;
                tg_random(&rnd, sizeof(rnd), NULL);
                renew_at = e > s ? s + (long long)(rnd % (unsigned long long)(e - s)) : s;
                json_object_set_new(chg, "renew_at", json_integer(renew_at));
                json_object_set_new(chg, "ari",
                                    json_pack("{s:I,s:I,s:o}", "start", s, "end", e, "explanation",
                                              ex ? json_string(ex) : json_null()));
                tg_log(TG_LOG_INFO, "ACME: '%s' renewal window from the CA: renewing at %lld", name,
                       renew_at);
            }
            ari_next = now + retry;
            json_object_set_new(chg, "ari_failure_count", json_integer(0));
        } else {
            /* the CA's renewal information is unreadable: look again later and later (the
             * schedule stays as it was) */
            int f = (int)int_of(doc, "ari_failure_count") + 1;
            tg_log(TG_LOG_WARNING, "ACME: renewal information for '%s' (try %d): %s", name, f,
                   err.msg);
            ari_next = now + enroll_backoff(f, 60, ACME_ARI_DEFAULT);
            json_object_set_new(chg, "ari_failure_count", json_integer(f));
            tg_err_clear(&err);
        }
        json_object_set_new(chg, "ari_next", json_integer(ari_next));
        /* only what this look learnt: a renewal may have changed the rest meanwhile */
        tg_err e2 = {0};
        tg_keyring_acme_cert_merge(x->kr, name, chg, &e2);
        json_decref(chg);
        free(id);
        free(ex);
        tg_cert_free(cur);
        json_decref(acc);
        acme_clear(&c);
    }
    if (x->stopping && *x->stopping) goto end;
    if (now >= renew_at && now >= next_try) {
        json_t *res = NULL;
        tg_log(TG_LOG_INFO, "ACME: renewing '%s'", name);
        if (run_order(x->kr, name, x->stopping, 1, &res, &err) == 0) {
            tg_log(TG_LOG_INFO, "ACME: '%s' renewed", name);
            json_decref(res);
            json_decref(doc);
            doc = NULL;
            tg_err e2 = {0};
            if (tg_keyring_acme_cert_get(x->kr, name, &doc, &e2) != 0) return now + 60;
            renew_at = int_of(doc, "renew_at");
            ari_next = int_of(doc, "ari_next");
            next_try = 0;
        } else {
            tg_log(TG_LOG_ERROR, "ACME: renewing '%s' failed (it keeps serving): %s", name,
                   err.msg);
            json_decref(doc);
            doc = NULL;
            tg_err e2 = {0};
            if (tg_keyring_acme_cert_get(x->kr, name, &doc, &e2) == 0)
                next_try = int_of(doc, "next_try");
            json_decref(doc);
            return next_try > now ? next_try : now + ACME_BACKOFF_MIN;
        }
    }
    next = renew_at > now ? renew_at : now + ENROLL_IDLE;
    if (next_try > now && next_try < next) next = next_try;
    if (ari_next > now && ari_next < next) next = ari_next;
end:
    json_decref(doc);
    return next;
}

static long long acme_run(enroll_ctx *x, long long now)
{
    json_t *all = NULL;
    tg_err err = {0};
    if (tg_keyring_acme_cert_list(x->kr, &all, &err) != 0) {
        tg_log(TG_LOG_ERROR, "ACME: %s", err.msg);
        return now + 60;
    }
    long long next = now + ENROLL_IDLE;
    json_t *doc;
    size_t i;
    json_array_foreach(all, i, doc)
    {
        if (x->stopping && *x->stopping) break;
        const char *name = json_string_value(json_object_get(doc, "name"));
        if (name == NULL) continue;
        char *nm = tg_strdup(name);
        long long n = nm ? acme_one(x, nm, (long long)time(NULL)) : now + 60;
        free(nm);
        if (n < next) next = n;
    }
    json_decref(all);
    return next;
}

const enroll_job enroll_job_acme = {"acme", acme_run};

int tg_acme_eab_key(const char *text, unsigned char **key, size_t *len, tg_err *err)
{
    if (b64url_decode(text, key, len) != 0 || *len < 16)
        return tg_err_fset(err, TG_E_INVALID, "eab_hmac",
                           "the EAB HMAC key is not base64url text of at least 16 bytes");
    return 0;
}

int acme_wants_http(const char *home)
{
    tg_keyring *kr = NULL;
    tg_err err = {0};
    json_t *all = NULL, *doc;
    size_t i;
    int yes = 0;
    if (tg_keyring_open(home, &kr, &err) == 0 && tg_keyring_acme_cert_list(kr, &all, &err) == 0)
        json_array_foreach(all, i, doc)
        {
            const char *t = json_string_value(json_object_get(doc, "challenge"));
            if (t && strcmp(t, "http-01") == 0) yes = 1;
        }
    json_decref(all);
    tg_keyring_close(kr);
    return yes;
}
