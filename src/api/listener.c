/*
 * listener.c — the management listener: its thread and loop, TLS, the bounds on each
 * connection, and one request's path from bytes to a handler (api.h says what and why).
 *
 * Invariants:
 *   - everything here runs on the API thread, except tg_api_new/free and the service's
 *     start/stop, which run on serve's main thread while the API loop is not running;
 *   - the connections themselves (TLS always, the deadline, the cap, the bounds) are
 *     tls's small HTTPS server (src/tls/https.c), shared with the EST server.
 */
#include "api_int.h"
#include "../x509/ossl.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

struct tg_api {
    tg_api_opts o;
    char *listen, *cert;
    SSL_CTX *ctx;      /* made by tg_api_new, handed to https at the start */
    long long version; /* the store's, when ctx was made */
    tg_keyring *kr;
    struct event_base *base;
    tg_https *https;
    struct event *watch; /* reloads the certificate when the store changes */
    api_sessions *sessions;
    pthread_t thread;
    int running;
    api_counts counts; /* answers by status, and serve's workers (metrics.c) */
};

static pthread_once_t json_once = PTHREAD_ONCE_INIT;

static void say(tg_api *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(tg_api *a, const char *fmt, ...)
{
    if (a->o.quiet) return;
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    tg_serve_say("admin: %s", line);
}

/* ---- TLS ---- */

static SSL_CTX *ctx_new(tg_api *a, tg_err *err)
{
    SSL_CTX *ctx = tg_https_ctx(a->kr, a->cert, "admin listener", err);
    if (ctx != NULL) SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    return ctx;
}

/* The store changed (a new default certificate, a replacement): new connections get the
 * certificate as it is now; open ones keep theirs (SSL objects hold their context). */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_api *a = arg;
    long long v = tg_keyring_version(a->kr);
    if (v == a->version) return;
    a->version = v;
    tg_err e = {0};
    SSL_CTX *ctx = ctx_new(a, &e);
    if (ctx == NULL) {
        say(a, "keeping the current certificate: %s", e.msg);
        return;
    }
    tg_https_set_ctx(a->https, ctx);
}

/* jansson's memory is wiped when freed, process-wide: request bodies parsed here hold
 * passwords and passphrases, and jansson's lexer keeps copies of the strings it reads
 * that no handler can reach. malloc_usable_size gives the size to wipe (glibc). */
static void wiping_free(void *p)
{
    if (p == NULL) return;
    tg_wipe(p, malloc_usable_size(p));
    free(p);
}

static void json_init(void)
{
    json_set_alloc_funcs(malloc, wiping_free);
}

/* ---- answers ---- */

void api_common_headers(struct evhttp_request *req, const char *type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
}

void api_send_json(api_req *r, int status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(doc);
    struct evbuffer *out = evbuffer_new();
    api_common_headers(r->req, "application/json");
    if (text == NULL || out == NULL) {
        free(text);
        if (out) evbuffer_free(out);
        evhttp_send_error(r->req, 500, "Internal Server Error");
        api_count(r->counts, 500);
        return;
    }
    evbuffer_add(out, text, strlen(text));
    evbuffer_add(out, "\n", 1);
    free(text);
    evhttp_send_reply(r->req, status, status < 300 ? "OK" : "Error", out);
    evbuffer_free(out);
    api_count(r->counts, status);
}

static void wipe_sent(const void *data, size_t len, void *arg)
{
    (void)arg;
    tg_free_secret((void *)data, len);
}

void api_send_bytes(api_req *r, int status, const char *type, const char *disposition,
                    unsigned char *data, size_t len)
{
    struct evbuffer *out = evbuffer_new();
    api_common_headers(r->req, type);
    if (disposition)
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Disposition",
                          disposition);
    /* referenced, not copied: the bytes are wiped when libevent is done with them */
    if (out == NULL || evbuffer_add_reference(out, data, len, wipe_sent, NULL) != 0) {
        tg_free_secret(data, len);
        if (out) evbuffer_free(out);
        evhttp_send_error(r->req, 500, "Internal Server Error");
        return;
    }
    evhttp_send_reply(r->req, status, status < 300 ? "OK" : "Error", out);
    evbuffer_free(out);
    api_count(r->counts, status);
}

static const struct {
    int code, http, exit;
    const char *name;
} errmap[] = {
    {TG_E_USAGE, 400, 2, "usage"},
    {TG_E_INVALID, 400, 3, "invalid"},
    {TG_E_NOTFOUND, 404, 4, "not_found"},
    {TG_E_CONFLICT, 409, 5, "conflict"},
    {TG_E_PASSWORD, 400, 6, "password"},
    {TG_E_STORE, 503, 7, "store"},
    {TG_E_IO, 500, 8, "io"},
    {TG_E_INTERNAL, 500, 9, "internal"},
};

void api_send_error(api_req *r)
{
    size_t i = 0;
    while (i + 1 < sizeof(errmap) / sizeof(errmap[0]) && errmap[i].code != r->err.code)
        i++;
    const char *msg = r->err.msg[0] ? r->err.msg : "the operation failed";
    /* who may ask is the API's own question: no exit status of the CLI answers it */
    json_t *doc = r->errname ? json_pack("{s:s, s:s}", "error", r->errname, "message", msg)
                             : json_pack("{s:s, s:i, s:s}", "error", errmap[i].name, "exit_status",
                                         errmap[i].exit, "message", msg);
    if (doc && r->err.field[0]) json_object_set_new(doc, "field", json_string(r->err.field));
    api_send_json(r, r->status ? r->status : errmap[i].http, doc);
}

/* ---- one request ---- */

static int body_read(api_req *r, int json)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    if (len == 0) return 0;
    unsigned char *b = malloc(len + 1);
    if (b == NULL) return api_fail(r, TG_E_INTERNAL, NULL, "out of memory");
    evbuffer_remove(in, b, len);
    b[len] = '\0';
    r->body = b;
    r->bodylen = len;
    if (!json) return 0;
    json_error_t je;
    r->json = json_loadb((const char *)b, len, JSON_REJECT_DUPLICATES, &je);
    if (r->json == NULL)
        return api_fail(r, TG_E_USAGE, NULL, "the body is not JSON (line %d, column %d: %s)",
                        je.line, je.column, je.text);
    if (!json_is_object(r->json))
        return api_fail(r, TG_E_USAGE, NULL, "the body must be a JSON object");
    return 0;
}

/* The caller: by its bearer token (RFC 6750), else by its console session's cookie. */
static int authenticate(api_req *r)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
    int rc = 0, found = 0;
    if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *tok = h + 7;
        while (*tok == ' ')
            tok++;
        rc = tg_keyring_token_check(r->kr, tok, &r->who, &r->err);
        found = 1;
    } else if (h == NULL)
        rc = api_session_auth(r, &found);
    if (rc == 0 && !found)
        rc = api_fail(r, TG_E_PASSWORD, NULL,
                      "this needs a token or a console session: send 'Authorization: Bearer "
                      "TOKEN' (tlsgate user token NAME makes one) or log in");
    if (rc != 0 && rc != TG_E_STORE && rc != TG_E_INTERNAL) {
        r->status = 401;
        r->errname = "unauthorized";
    }
    return rc;
}

static const char *const cap_words[] = {
    [TG_CAP_READ] = "read the configuration",  [TG_CAP_CERTS] = "manage certificates",
    [TG_CAP_INSPECTION] = "manage inspection", [TG_CAP_USERS] = "manage users",
    [TG_CAP_AUDIT] = "read the audit log",
};

int api_authorize(api_req *r, tg_cap cap)
{
    if (tg_role_allows(r->who.role, cap)) return 0;
    r->status = 403;
    r->errname = "forbidden";
    return api_fail(r, TG_E_CONFLICT, NULL, "the role %s may not %s", tg_role_name(r->who.role),
                    cap_words[cap]);
}

/* A change, whatever its outcome, goes to the audit log: who, from where, what, to
 * which object. Never a body: it may hold a key or a password. */
static void audit(tg_api *a, api_req *r, const api_route_info *info, int rc)
{
    char source[96];
    snprintf(source, sizeof(source), "api %s", r->peer);
    const char *object = r->object ? r->object : r->params[0];
    if (object == NULL && r->json) object = json_string_value(json_object_get(r->json, "name"));
    json_t *detail = r->detail ? json_deep_copy(r->detail) : rc != 0 ? json_object() : NULL;
    if (detail && rc != 0) json_object_set_new(detail, "error", json_string(r->err.msg));
    const char *actor = r->who.name;
    if (actor[0] == '\0' && r->json) /* a refused login: the name it gave */
        actor = json_string_value(json_object_get(r->json, "user"));
    tg_audit_entry e = {.actor = actor && actor[0] ? actor : "?",
                        .source = source,
                        .action = info->action,
                        .object = object,
                        .outcome = rc,
                        .detail = detail};
    tg_err ae = {0};
    if (tg_keyring_audit_add(r->kr, &e, &ae) != 0)
        say(a, "the audit log could not record %s: %s", info->action, ae.msg);
    json_decref(detail);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    tg_api *a = arg;
    api_req r = {
        .req = req, .kr = a->kr, .home = a->o.home, .sessions = a->sessions, .counts = &a->counts};
    TAILQ_INIT(&r.query);
    struct evhttp_connection *ec = evhttp_request_get_connection(req);
    char *host = NULL;
    ev_uint16_t port = 0;
    if (ec) evhttp_connection_get_peer(ec, &host, &port);
    snprintf(r.peer, sizeof(r.peer), "%s", host ? host : "?");
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
    /* the console's files are public (they hold no data: the page asks the API for it) */
    if (path && api_console_serve(req, path)) return;
    int method_ok = 1;
    api_route_info info = {0};
    api_handler h = NULL;
    /* who asks comes first: without a token or a session nothing, not even whether a
     * path exists; only the login is open */
    int rc = 0;
    const char *bad = NULL;
    if (path == NULL)
        bad = "the request has no path";
    else if (qs && evhttp_parse_query_str(qs, &r.query) != 0)
        bad = "the query string cannot be decoded";
    else
        h = api_route(evhttp_request_get_command(req), path, &r, &info, &method_ok);
    if (h == NULL || !info.open) rc = authenticate(&r);
    if (rc == 0 && bad) rc = api_fail(&r, TG_E_USAGE, NULL, "%s", bad);
    if (rc == 0 && h == NULL) {
        if (!method_ok) r.status = 405;
        rc = method_ok ? api_fail(&r, TG_E_NOTFOUND, NULL, "there is nothing at %s", path)
                       : api_fail(&r, TG_E_USAGE, NULL, "%s does not take this method", path);
    }
    if (rc == 0 && r.by_session && evhttp_request_get_command(req) != EVHTTP_REQ_GET)
        rc = api_session_csrf(&r);
    if (rc == 0 && r.by_session && r.who.must_change && !info.must_change_ok &&
        !(info.action && strcmp(info.action, "user.passwd") == 0 && r.params[0] &&
          strcmp(r.params[0], r.who.name) == 0)) {
        r.status = 403;
        r.errname = "password_change_required";
        rc = api_fail(&r, TG_E_PASSWORD, NULL,
                      "this password was given once: choose a new one before anything else");
    }
    if (rc == 0 && !info.open) rc = api_authorize(&r, info.cap);
    if (rc == 0) rc = body_read(&r, info.json_body);
    if (rc == 0) rc = h(&r);
    if (h != NULL && info.action != NULL && (info.open || r.who.name[0])) audit(a, &r, &info, rc);
    if (rc != 0) {
        if (r.err.code == 0) tg_err_set(&r.err, rc, "the operation failed");
        if (r.status == 401)
            evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                              "Bearer realm=\"tlsgate\"");
        api_send_error(&r);
    }
    evhttp_clear_headers(&r.query);
    for (int i = 0; i < API_PARAMS_MAX; i++)
        free(r.params[i]);
    json_decref(r.json);
    json_decref(r.detail);
    free(r.object);
    if (r.body) tg_free_secret((void *)r.body, r.bodylen + 1); /* may hold a key */
}

/* ---- the service ---- */

static void *api_main(void *arg)
{
    tg_api *a = arg;
    event_base_dispatch(a->base);
    return NULL;
}

static int svc_start(void *self, tg_workers *ws, tg_err *err)
{
    tg_api *a = self;
    a->counts.ws = ws; /* serve's counters, for /metrics */
    if ((a->base = event_base_new()) == NULL ||
        (a->watch = event_new(a->base, -1, EV_PERSIST, on_watch, a)) == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    tg_https_opts ho = {.listen = a->listen,
                        .what = "admin API",
                        .field = "admin",
                        .max_conns = TG_API_CONNS_MAX,
                        .deadline_secs = TG_API_REQUEST_SECS,
                        .max_headers = TG_API_HEADERS_MAX,
                        .max_body = TG_API_BODY_MAX,
                        .methods = EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                   EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH,
                        .on_request = on_request,
                        .arg = a};
    int rc = tg_https_new(a->base, &ho, a->ctx, &a->https, err);
    if (rc != 0) return rc;
    a->ctx = NULL; /* https's now */
    struct timeval tv = {1, 0};
    event_add(a->watch, &tv);
    if (pthread_create(&a->thread, NULL, api_main, a) != 0)
        return tg_err_set(err, TG_E_INTERNAL, "cannot start the admin thread");
    a->running = 1;
    api_started();
    say(a, "listening on %s (HTTPS, API under /api/v1/)", a->listen);
    return 0;
}

static void svc_stop(void *self)
{
    tg_api *a = self;
    if (a->running) {
        event_base_loopbreak(a->base);
        pthread_join(a->thread, NULL);
        a->running = 0;
    }
}

static void svc_listeners(void *self,
                          void (*add)(void *ctx, const char *kind, const char *name,
                                      const char *addr),
                          void *ctx)
{
    tg_api *a = self;
    if (a->running) add(ctx, "admin", "admin", a->listen);
}

tg_service tg_api_service(tg_api *a)
{
    return (tg_service){.name = "admin",
                        .start = svc_start,
                        .stop = svc_stop,
                        .listeners = svc_listeners,
                        .self = a};
}

int tg_api_new(const tg_api_opts *o, tg_api **out, tg_err *err)
{
    *out = NULL;
    pthread_once(&json_once, json_init);
    tg_api *a = calloc(1, sizeof(*a));
    if (a == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    a->o = *o;
    a->listen = tg_strdup(o->listen ? o->listen : TG_API_DEFAULT_LISTEN);
    a->cert = o->cert ? tg_strdup(o->cert) : NULL;
    int rc = 0;
    if (a->listen == NULL || (o->cert && a->cert == NULL))
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0 && (a->sessions = api_sessions_new()) == NULL)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0) rc = tg_keyring_open(o->home, &a->kr, err);
    if (rc == 0) {
        a->version = tg_keyring_version(a->kr);
        if ((a->ctx = ctx_new(a, err)) == NULL) {
            rc = err->code ? err->code : TG_E_INTERNAL;
            if (o->cert && err->field[0] == '\0') /* --admin-cert named it */
                snprintf(err->field, sizeof(err->field), "admin_cert");
        }
    }
    if (rc != 0) {
        tg_api_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void tg_api_free(tg_api *a)
{
    if (a == NULL) return;
    svc_stop(a);
    tg_https_free(a->https); /* its connections, the bound socket too */
    if (a->watch) event_free(a->watch);
    if (a->base) event_base_free(a->base);
    SSL_CTX_free(a->ctx);
    api_sessions_free(a->sessions);
    tg_keyring_close(a->kr);
    free(a->listen);
    free(a->cert);
    free(a);
}
