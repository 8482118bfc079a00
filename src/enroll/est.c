/*
 * est.c — the EST client (RFC 7030): /cacerts, /simpleenroll and /simplereenroll over
 * the HTTP client of http.c.
 *
 * Requests go out as base64 PKCS#10 (application/pkcs10) and certificates come back as
 * a base64 certs-only PKCS#7 (application/pkcs7-mime), read with the same decoder as an
 * imported file. A 202 answer is "pending" with its Retry-After; any other status is a
 * refusal whose sentence carries the server's first line of text.
 */
#include "enroll_int.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EST_RESPONSE_MAX (256 * 1024) /* bytes of an answer: a few certificates */

int est_url(const char *server, const char *op, char *out, size_t size, tg_err *err)
{
    const char *host = strstr(server, "://");
    const char *path = host ? strchr(host + 3, '/') : NULL;
    int n;
    if (path == NULL || strcmp(path, "/") == 0)
        n = snprintf(out, size, "%.*s/.well-known/est/%s",
                     (int)(path ? (size_t)(path - server) : strlen(server)), server, op);
    else
        n = snprintf(out, size, "%s%s%s", server, server[strlen(server) - 1] == '/' ? "" : "/", op);
    if (n < 0 || (size_t)n >= size)
        return tg_err_set(err, TG_E_INVALID, "the enrollment server's URL is too long");
    return 0;
}

/* base64 (line breaks allowed) to bytes; *out the caller's to free. */
int enroll_unbase64(const unsigned char *in, size_t len, const char *what, unsigned char **out,
                    size_t *outlen, tg_err *err)
{
    *out = malloc(len / 4 * 3 + 4);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int n1 = 0, n2 = 0;
    int ok = *out != NULL && ctx != NULL && len < INT32_MAX;
    if (ok) {
        EVP_DecodeInit(ctx);
        ok = EVP_DecodeUpdate(ctx, *out, &n1, in, (int)len) >= 0 &&
             EVP_DecodeFinal(ctx, *out + n1, &n2) == 1;
    }
    EVP_ENCODE_CTX_free(ctx);
    if (!ok) {
        free(*out);
        *out = NULL;
        return tg_err_set(err, TG_E_INVALID, "%s is not base64", what);
    }
    *outlen = (size_t)(n1 + n2);
    return 0;
}

static char *base64(const unsigned char *in, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out != NULL) EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

/* The first line of the server's text, printable, for a sentence. */
static void server_says(const enroll_http_resp *r, char *buf, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < r->len && o + 1 < size && r->body[i] != '\n'; i++)
        buf[o++] = r->body[i] >= 0x20 && r->body[i] < 0x7f ? (char)r->body[i] : '?';
    buf[o] = '\0';
}

static int certs_of(const enroll_http_resp *r, const char *what, tg_bundle *b, tg_err *err)
{
    memset(b, 0, sizeof(*b));
    const char *type = enroll_http_header_get(r, "Content-Type");
    if (type == NULL || strncasecmp(type, "application/pkcs7-mime", 22) != 0)
        return tg_err_set(err, TG_E_INVALID,
                          "the enrollment server answered %s with '%s', not "
                          "application/pkcs7-mime",
                          what, type ? type : "no content type");
    unsigned char *der = NULL;
    size_t n = 0;
    int rc = enroll_unbase64(r->body, r->len, "the enrollment server's answer", &der, &n, err);
    if (rc == 0) rc = tg_bundle_decode(der, n, what, NULL, b, err);
    free(der);
    if (rc == 0 && (b->ncerts == 0 || b->nkeys != 0)) {
        tg_bundle_clear(b);
        rc = tg_err_set(err, TG_E_INVALID,
                        "the enrollment server's answer to %s holds no certificate", what);
    }
    return rc;
}

int est_cacerts(const char *server, const char *ca_pem, tg_bundle *out, tg_err *err)
{
    char url[TG_URL_MAX + 64];
    int rc = est_url(server, "cacerts", url, sizeof(url), err);
    if (rc != 0) return rc;
    enroll_http_req q = {.url = url, .ca_pem = ca_pem, .max_body = EST_RESPONSE_MAX};
    enroll_http_resp r;
    if ((rc = enroll_http(&q, &r, err)) != 0) return rc;
    if (r.status != 200) {
        char says[160];
        server_says(&r, says, sizeof(says));
        rc = tg_err_set(err, TG_E_IO, "%s answered %ld%s%s", url, r.status, says[0] ? ": " : "",
                        says);
    } else {
        rc = certs_of(&r, "/cacerts", out, err);
    }
    enroll_http_resp_clear(&r);
    return rc;
}

int est_enroll(const est_req *e, est_result *res, tg_err *err)
{
    memset(res, 0, sizeof(*res));
    char url[TG_URL_MAX + 64];
    int rc =
        est_url(e->server, e->reenroll ? "simplereenroll" : "simpleenroll", url, sizeof(url), err);
    if (rc != 0) return rc;
    char *body = base64(e->csr, e->csrlen);
    if (body == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    char *pw = NULL;
    if (e->secret != NULL) {
        if ((pw = malloc(e->secretlen + 1)) == NULL) {
            free(body);
            return tg_err_set(err, TG_E_INTERNAL, "out of memory");
        }
        memcpy(pw, e->secret, e->secretlen);
        pw[e->secretlen] = '\0';
    }
    enroll_http_req q = {.method = "POST",
                         .url = url,
                         .content_type = "application/pkcs10",
                         .body = (const unsigned char *)body,
                         .bodylen = strlen(body),
                         .ca_pem = e->ca_pem,
                         .user = pw ? e->device_id : NULL,
                         .password = pw,
                         .client_cert = e->client ? e->client->cert : NULL,
                         .client_key = e->client ? e->client->key : NULL,
                         .max_body = EST_RESPONSE_MAX};
    tg_cert *chain[TG_SERVED_CHAIN_MAX];
    if (e->client != NULL) {
        size_t n = 0;
        for (size_t i = 0; i < e->client->nchain; i++)
            if (tg_cert_from_der(e->client->chain[i].der, e->client->chain[i].derlen, &chain[n],
                                 NULL) == 0)
                n++;
        q.client_chain = (const tg_cert *const *)chain;
        q.nclient_chain = n;
    }
    enroll_http_resp r;
    rc = enroll_http(&q, &r, err);
    for (size_t i = 0; i < q.nclient_chain; i++)
        tg_cert_free(chain[i]);
    free(body);
    if (pw) tg_free_secret(pw, e->secretlen + 1);
    if (rc != 0) return rc;
    res->http = r.status;
    if (r.status == 200) {
        tg_bundle b;
        if ((rc = certs_of(&r, url, &b, err)) == 0) {
            /* the leaf: the certificate that is not a CA (the first one, else) */
            size_t leaf = 0;
            for (size_t i = 0; i < b.ncerts; i++)
                if (!tg_cert_is_ca(b.certs[i])) {
                    leaf = i;
                    break;
                }
            res->leaf = b.certs[leaf];
            b.certs[leaf] = NULL;
            for (size_t i = 0; i < b.ncerts && res->nchain < EST_CHAIN_MAX; i++)
                if (b.certs[i] != NULL) {
                    res->chain[res->nchain++] = b.certs[i];
                    b.certs[i] = NULL;
                }
            tg_bundle_clear(&b);
        }
    } else if (r.status == 202) {
        res->pending = 1;
        res->retry_after = enroll_retry_after(&r, 0);
    } else {
        char says[160];
        server_says(&r, says, sizeof(says));
        /* 4xx: the CA refused this request (a new key and request next time); 5xx: it failed */
        rc = tg_err_set(err, r.status >= 400 && r.status < 500 ? TG_E_CONFLICT : TG_E_IO,
                        "%s answered %ld%s%s", url, r.status, says[0] ? ": " : "", says);
    }
    enroll_http_resp_clear(&r);
    return rc;
}

void est_result_clear(est_result *r)
{
    tg_cert_free(r->leaf);
    for (size_t i = 0; i < r->nchain; i++)
        tg_cert_free(r->chain[i]);
    memset(r, 0, sizeof(*r));
}
