/*
 * http.c — the one HTTP client of src/enroll (EST, ACME): libcurl, with the bounds an
 * appliance needs on what it fetches.
 *
 * Invariants:
 *   - every exchange has a deadline for the whole of it (CURLOPT_TIMEOUT), not an
 *     inactivity timer, and an answer is read into at most max_body bytes: a longer one
 *     fails the exchange;
 *   - only http and https, never a redirect (a protocol here names its next URL itself);
 *   - a client key reaches libssl as the EVP_PKEY the keyring unsealed, on the
 *     connection's SSL_CTX (CURLOPT_SSL_CTX_FUNCTION): it is never written out as PEM
 *     for curl to copy;
 *   - curl's global state is made once, before any thread uses it.
 */
#include "enroll_int.h"
#include "../x509/ossl.h"

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int global_rc;
static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

typedef struct xfer {
    const enroll_http_req *q;
    enroll_http_resp *r;
    size_t max;
    int overflow;
} xfer;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    xfer *x = arg;
    size_t len = size * n;
    if (len > x->max - x->r->len) {
        x->overflow = 1;
        return 0;
    }
    unsigned char *b = realloc(x->r->body, x->r->len + len + 1);
    if (b == NULL) return 0;
    memcpy(b + x->r->len, p, len);
    x->r->body = b;
    x->r->len += len;
    b[x->r->len] = '\0';
    return len;
}

static void headers_clear(enroll_http_resp *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    r->nheaders = 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    xfer *x = arg;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new response (after a 100, say) */
        headers_clear(x->r);
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (colon == NULL || x->r->nheaders >= ENROLL_HTTP_HEADERS_MAX) return len;
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    enroll_http_header *h = &x->r->headers[x->r->nheaders];
    h->name = strndup(p, nl);
    h->value = strndup(v, (size_t)(end - v));
    if (h->name == NULL || h->value == NULL) {
        free(h->name);
        free(h->value);
        return 0;
    }
    x->r->nheaders++;
    return len;
}

static CURLcode on_ssl_ctx(CURL *curl, void *sslctx, void *arg)
{
    (void)curl;
    const enroll_http_req *q = arg;
    SSL_CTX *ctx = sslctx;
    if (SSL_CTX_use_certificate(ctx, tg_cert_x509(q->client_cert)) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, tg_key_pkey(q->client_key)) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        return CURLE_SSL_CERTPROBLEM;
    for (size_t i = 0; i < q->nclient_chain; i++) {
        X509 *c = tg_cert_x509(q->client_chain[i]);
        if (SSL_CTX_add1_chain_cert(ctx, c) != 1) return CURLE_SSL_CERTPROBLEM;
    }
    return CURLE_OK;
}

int enroll_http(const enroll_http_req *q, enroll_http_resp *r, tg_err *err)
{
    memset(r, 0, sizeof(*r));
    pthread_once(&once, global_init);
    if (global_rc != 0) return tg_err_set(err, TG_E_INTERNAL, "libcurl could not start");
    if (q->url == NULL ||
        (strncasecmp(q->url, "https://", 8) != 0 && strncasecmp(q->url, "http://", 7) != 0))
        return tg_err_set(err, TG_E_INVALID, "'%s' is not an http:// or https:// URL",
                          q->url ? q->url : "");
    if ((q->client_cert == NULL) != (q->client_key == NULL))
        return tg_err_set(err, TG_E_INTERNAL, "a client certificate needs its key");
    CURL *h = curl_easy_init();
    if (h == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    xfer x = {.q = q, .r = r, .max = q->max_body ? q->max_body : ENROLL_HTTP_BODY_MAX};
    struct curl_slist *hdrs = NULL;
    char line[256];
    int ok = 1;
    if (q->content_type != NULL) {
        snprintf(line, sizeof(line), "Content-Type: %s", q->content_type);
        ok &= (hdrs = curl_slist_append(hdrs, line)) != NULL;
    }
    if (ok && q->accept != NULL) {
        snprintf(line, sizeof(line), "Accept: %s", q->accept);
        ok &= (hdrs = curl_slist_append(hdrs, line)) != NULL;
    }
    if (ok) ok &= (hdrs = curl_slist_append(hdrs, "Expect:")) != NULL; /* no 100-continue wait */
    char ua[64];
    snprintf(ua, sizeof(ua), "tlsgate/%s", TG_VERSION);
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, q->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, q->timeout > 0 ? q->timeout : (long)ENROLL_HTTP_TIMEOUT);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)ENROLL_HTTP_CONNECT);
    curl_easy_setopt(h, CURLOPT_USERAGENT, ua);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (q->method != NULL && strcmp(q->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body ? (const char *)q->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->bodylen);
    } else if (q->method != NULL && strcmp(q->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    }
    if (q->ca_pem != NULL) {
        struct curl_blob b = {
            .data = (void *)q->ca_pem, .len = strlen(q->ca_pem), .flags = CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
    }
    if (q->user != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, q->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, q->password ? q->password : "");
    }
    if (q->client_cert != NULL) {
        curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, (void *)q);
        /* a session resumed across requests would skip the client certificate */
        curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    }
    int rc = 0;
    CURLcode cc = ok ? curl_easy_perform(h) : CURLE_OUT_OF_MEMORY;
    if (cc != CURLE_OK) {
        if (x.overflow)
            rc = tg_err_set(err, TG_E_IO, "%s: the answer is longer than %zu bytes", q->url, x.max);
        else if (cc == CURLE_OPERATION_TIMEDOUT)
            rc = tg_err_set(err, TG_E_IO, "%s: no complete answer within %ld s", q->url,
                            q->timeout > 0 ? q->timeout : (long)ENROLL_HTTP_TIMEOUT);
        else
            rc =
                tg_err_set(err, TG_E_IO, "%s: %s", q->url, ebuf[0] ? ebuf : curl_easy_strerror(cc));
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        if (r->body == NULL && (r->body = calloc(1, 1)) == NULL)
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    if (q->password != NULL) /* curl keeps a copy of the bootstrap secret */
        curl_easy_setopt(h, CURLOPT_PASSWORD, "");
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (rc != 0) enroll_http_resp_clear(r);
    return rc;
}

const char *enroll_http_header_get(const enroll_http_resp *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

void enroll_http_resp_clear(enroll_http_resp *r)
{
    headers_clear(r);
    free(r->body);
    r->body = NULL;
    r->len = 0;
    r->status = 0;
}

long long enroll_retry_after(const enroll_http_resp *r, long long now)
{
    const char *v = enroll_http_header_get(r, "Retry-After");
    if (v == NULL || *v == '\0') return -1;
    long long s = -1;
    char *end;
    if (*v >= '0' && *v <= '9') {
        s = strtoll(v, &end, 10);
        if (*end != '\0') s = -1;
    } else {
        time_t t = curl_getdate(v, NULL); /* the IMF-fixdate form */
        if (t != (time_t)-1) s = (long long)t - now;
        if (s < 0 && t != (time_t)-1) s = 0;
    }
    if (s > 86400) s = 86400;
    return s;
}

long long enroll_backoff(int failures, long long base, long long cap)
{
    if (failures < 1) failures = 1;
    long long d = base;
    for (int i = 1; i < failures && d < cap; i++)
        d *= 2;
    if (d > cap) d = cap;
    unsigned char rnd[2];
    tg_err e = {0};
    unsigned r = 0;
    if (tg_random(rnd, sizeof(rnd), &e) == 0) r = (unsigned)rnd[0] << 8 | rnd[1];
    long long j = d / 2 + (long long)((double)(d - d / 2) * (double)r / 65535.0);
    return j < 1 ? 1 : j;
}
