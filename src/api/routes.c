/*
 * routes.c — the API's resources (docs/api.md): each route names its method, its path
 * with {…} segments, and a handler that reads the request, calls the keyring exactly as
 * cli does, and answers with the keyring's document. Handlers hold no rule of their own:
 * a value the keyring would refuse is passed through for the keyring to refuse, so the
 * API and the CLI refuse with the same sentence.
 */
#include "api_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Members a request body may hold: an unknown one is refused, as the CLI refuses an
 * unknown option (a typo must not be ignored). */
int api_members_only(api_req *r, const char *const *allowed)
{
    const char *key;
    json_t *v;
    if (r->json == NULL) return 0;
    json_object_foreach(r->json, key, v)
    {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (allowed[i] == NULL)
            return api_fail(r, TG_E_USAGE, key, "the member '%s' is not known here", key);
    }
    return 0;
}

int api_done(api_req *r, int rc, int status, json_t *doc)
{
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    api_send_json(r, status, doc ? doc : json_object());
    return 0;
}

/* ---- status ---- */

static long long started_at;

static int status_get(api_req *r)
{
    tg_page all = {.limit = 1}, soon = {.limit = 1, .expiring_set = 1, .expiring_days = 30};
    json_t *a = NULL, *s = NULL;
    int rc = tg_keyring_cert_page(r->kr, &all, &a, &r->err);
    if (rc == 0) rc = tg_keyring_cert_page(r->kr, &soon, &s, &r->err);
    json_t *doc = NULL;
    if (rc == 0) {
        char started[40];
        tg_time_rfc3339((time_t)started_at, started, sizeof(started));
        doc = json_pack("{s:s, s:s, s:I, s:I, s:O, s:O}", "version", TG_VERSION, "started", started,
                        "started_unix", (json_int_t)started_at, "uptime_seconds",
                        (json_int_t)(time(NULL) - started_at), "certificates",
                        json_object_get(a, "total"), "expiring_within_30_days",
                        json_object_get(s, "total"));
        if (doc == NULL) rc = api_fail(r, TG_E_INTERNAL, NULL, "out of memory");
    }
    /* the listeners, as serve's state file says them (this process wrote it) */
    json_t *state = NULL;
    if (rc == 0 && (rc = tg_keyring_serve_state(r->kr, &state, &r->err)) == 0) {
        json_t *l = json_object_get(state, "listeners");
        json_object_set_new(doc, "listeners", json_is_array(l) ? json_deep_copy(l) : json_array());
    }
    json_decref(state);
    json_decref(a);
    json_decref(s);
    return api_done(r, rc, 200, doc);
}

/* ---- certificates and CA certificates ---- */

static int page_of(api_req *r, int ca)
{
    tg_page pg = {.ca = ca, .after = api_query(r, "after"), .query = api_query(r, "q")};
    int rc = api_query_int(r, "limit", 1, TG_PAGE_MAX, &pg.limit, NULL);
    if (rc == 0)
        rc = api_query_int(r, "expiring", 0, TG_DAYS_MAX, &pg.expiring_days, &pg.expiring_set);
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_cert_page(r->kr, &pg, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

static int certs_list(api_req *r)
{
    return page_of(r, 0);
}

static int ca_list(api_req *r)
{
    return page_of(r, 1);
}

static int cert_get(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_cert_show(r->kr, r->params[0], &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

static int ca_get(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_ca_show(r->kr, r->params[0], &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

/* K10: every CA's dates and rollover (ca rollover-plan), and the lead time. */
static int ca_rollover_plan(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_rollover_plan(r->kr, (long long)time(NULL), &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

static int ca_rollover_lead(api_req *r)
{
    static const char *const allowed[] = {"days", NULL};
    int days = -1, given = 0;
    int rc = api_members_only(r, allowed);
    if (rc == 0) rc = api_member_int(r, "days", &days, &given);
    if (rc == 0 && !given)
        rc = api_fail(r, TG_E_USAGE, "days",
                      "the lead time needs a number of days (0 turns automatic rollover off)");
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_rollover_lead_set(r->kr, days, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

/* The members of a new certificate or request: the CLI's options by name. */
static int newcert_of(api_req *r, tg_newcert *spec, const char ***sans)
{
    static const char *const allowed[] = {"name", "cn",        "country", "state", "locality",
                                          "org",  "ou",        "email",   "san",   "key",
                                          "days", "no_export", "signing", NULL};
    tg_subject *s = &spec->subject;
    int rc = api_members_only(r, allowed);
    if (rc == 0) rc = api_member_str(r, "name", 1, &spec->name);
    if (rc == 0) rc = api_member_str(r, "cn", 0, &s->cn);
    if (rc == 0) rc = api_member_str(r, "country", 0, &s->country);
    if (rc == 0) rc = api_member_str(r, "state", 0, &s->state);
    if (rc == 0) rc = api_member_str(r, "locality", 0, &s->locality);
    if (rc == 0) rc = api_member_str(r, "org", 0, &s->org);
    if (rc == 0) rc = api_member_str(r, "ou", 0, &s->unit);
    if (rc == 0) rc = api_member_str(r, "email", 0, &s->email);
    if (rc == 0) rc = api_member_str(r, "key", 0, &spec->keyspec);
    if (rc == 0) rc = api_member_int(r, "days", &spec->days, &spec->days_set);
    if (rc == 0) rc = api_member_bool(r, "no_export", &spec->no_export);
    if (rc == 0) rc = api_member_bool(r, "signing", &spec->signing);
    if (rc == 0) rc = api_member_strs(r, "san", sans, &spec->nsans);
    spec->sans = *sans;
    return rc;
}

static int cert_create(api_req *r)
{
    tg_newcert spec = {0};
    const char **sans = NULL;
    json_t *doc = NULL;
    int rc = newcert_of(r, &spec, &sans);
    if (rc == 0) rc = tg_keyring_cert_create(r->kr, &spec, &doc, &r->err);
    free(sans);
    return api_done(r, rc, 201, doc);
}

static int cert_delete(api_req *r)
{
    int rc = tg_keyring_cert_delete(r->kr, r->params[0], &r->err);
    return api_done(r, rc, 200, json_pack("{s:s}", "deleted", r->params[0]));
}

static int cert_default(api_req *r)
{
    int rc = tg_keyring_cert_default(r->kr, r->params[0], &r->err);
    return api_done(r, rc, 200, json_pack("{s:s}", "default", r->params[0]));
}

static int refresh(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_refresh(r->kr, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

/* ---- requests ---- */

static int requests_list(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_request_list(r->kr, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

static int request_get(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_request_show(r->kr, r->params[0], &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

static int request_create(api_req *r)
{
    tg_newcert spec = {0};
    const char **sans = NULL;
    json_t *doc = NULL;
    int rc = newcert_of(r, &spec, &sans);
    if (rc == 0) rc = tg_keyring_request_create(r->kr, &spec, &doc, &r->err);
    free(sans);
    return api_done(r, rc, 201, doc);
}

static int request_delete(api_req *r)
{
    int rc = tg_keyring_request_delete(r->kr, r->params[0], &r->err);
    return api_done(r, rc, 200, json_pack("{s:s}", "deleted", r->params[0]));
}

/* ---- trust stores ---- */

static int ts_list(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_ts_list(r->kr, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

static int ts_get(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_ts_show(r->kr, r->params[0], &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

/* ---- the table ---- */

static const struct route {
    int method;
    const char *path; /* segments after /api/v1/; "{}" takes one; "/…": the whole path */
    api_handler fn;
    api_route_info info;
} routes[] = {
    {EVHTTP_REQ_GET, "status", status_get, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_GET, "certificates", certs_list, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_POST, "certificates", cert_create, {1, TG_CAP_CERTS, "cert.create"}},
    {EVHTTP_REQ_GET, "certificates/{}", cert_get, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_DELETE, "certificates/{}", cert_delete, {0, TG_CAP_CERTS, "cert.delete"}},
    {EVHTTP_REQ_POST, "certificates/{}/default", cert_default, {0, TG_CAP_CERTS, "cert.default"}},
    {EVHTTP_REQ_GET, "ca", ca_list, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_GET, "ca/rollover-plan", ca_rollover_plan, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_POST, "ca/rollover-lead", ca_rollover_lead, {1, TG_CAP_CERTS, "ca.rollover-lead"}},
    {EVHTTP_REQ_GET, "ca/{}", ca_get, {0, TG_CAP_READ, NULL}}, /* after ca/rollover-plan */
    {EVHTTP_REQ_GET, "requests", requests_list, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_POST, "requests", request_create, {1, TG_CAP_CERTS, "request.create"}},
    {EVHTTP_REQ_GET, "requests/{}", request_get, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_DELETE, "requests/{}", request_delete, {0, TG_CAP_CERTS, "request.delete"}},
    {EVHTTP_REQ_GET, "truststores", ts_list, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_GET, "truststores/{}", ts_get, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_POST, "refresh", refresh, {0, TG_CAP_CERTS, "refresh"}},
    {EVHTTP_REQ_POST, "session", api_session_login, {1, TG_CAP_READ, "session.login", 1, 1}},
    {EVHTTP_REQ_GET, "session", api_session_get, {0, TG_CAP_READ, NULL, 0, 1}},
    {EVHTTP_REQ_DELETE, "session", api_session_end, {0, TG_CAP_READ, NULL, 0, 1}},
    {EVHTTP_REQ_GET, "/metrics", api_metrics, {0, TG_CAP_READ, NULL}},     /* metrics.c */
    {EVHTTP_REQ_GET, "openapi.json", api_openapi, {0, TG_CAP_READ, NULL}}, /* console.c */
    /* certs.c: files in and out (an export of a key also needs TG_CAP_CERTS: the handler
     * asks, since only the request says) */
    {EVHTTP_REQ_POST, "certificates/import", api_cert_import, {0, TG_CAP_CERTS, "cert.import"}},
    {EVHTTP_REQ_POST, "certificates/{}/export", api_cert_export, {1, TG_CAP_READ, "cert.export"}},
    {EVHTTP_REQ_POST,
     "certificates/{}/replace",
     api_cert_replace,
     {0, TG_CAP_CERTS, "cert.replace"}},
    {EVHTTP_REQ_GET, "requests/{}/export", api_request_export, {0, TG_CAP_READ, "request.export"}},
    {EVHTTP_REQ_POST, "ca/import", api_ca_import, {0, TG_CAP_CERTS, "ca.import"}},
    {EVHTTP_REQ_POST, "ca/{}/export", api_ca_export, {1, TG_CAP_READ, "ca.export"}},
    {EVHTTP_REQ_POST, "ca/{}/replace", api_ca_replace, {0, TG_CAP_CERTS, "ca.replace"}},
    {EVHTTP_REQ_DELETE, "ca/{}", api_ca_delete, {0, TG_CAP_CERTS, "ca.delete"}},
    {EVHTTP_REQ_POST, "ca/{}/reissue", api_ca_reissue, {1, TG_CAP_CERTS, "ca.reissue"}},
    /* trust.c */
    {EVHTTP_REQ_POST, "truststores", api_ts_create, {1, TG_CAP_CERTS, "truststore.create"}},
    {EVHTTP_REQ_POST,
     "truststores/update-defaults",
     api_ts_update_defaults,
     {0, TG_CAP_CERTS, "truststore.update-defaults"}},
    {EVHTTP_REQ_POST, "truststores/{}/add", api_ts_add, {1, TG_CAP_CERTS, "truststore.add"}},
    {EVHTTP_REQ_POST,
     "truststores/{}/remove",
     api_ts_remove,
     {1, TG_CAP_CERTS, "truststore.remove"}},
    {EVHTTP_REQ_DELETE, "truststores/{}", api_ts_delete, {0, TG_CAP_CERTS, "truststore.delete"}},
    {EVHTTP_REQ_POST, "verify", api_verify, {0, TG_CAP_READ, NULL}},
    /* users.c: a user's own password, tokens and document need no more than READ (the
     * handler checks whose they are); anyone else's need TG_CAP_USERS */
    {EVHTTP_REQ_GET, "users", api_users_list, {0, TG_CAP_USERS, NULL}},
    {EVHTTP_REQ_POST, "users", api_user_add, {1, TG_CAP_USERS, "user.add"}},
    {EVHTTP_REQ_GET, "users/{}", api_user_get, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_DELETE, "users/{}", api_user_delete, {0, TG_CAP_USERS, "user.del"}},
    {EVHTTP_REQ_POST, "users/{}/role", api_user_role, {1, TG_CAP_USERS, "user.role"}},
    {EVHTTP_REQ_POST, "users/{}/password", api_user_password, {1, TG_CAP_READ, "user.passwd"}},
    {EVHTTP_REQ_POST, "users/{}/disable", api_user_disable, {0, TG_CAP_USERS, "user.disable"}},
    {EVHTTP_REQ_POST, "users/{}/enable", api_user_enable, {0, TG_CAP_USERS, "user.enable"}},
    {EVHTTP_REQ_GET, "users/{}/tokens", api_tokens_list, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_POST, "users/{}/tokens", api_token_create, {1, TG_CAP_READ, "user.token"}},
    {EVHTTP_REQ_DELETE, "users/{}/tokens/{}", api_token_revoke, {0, TG_CAP_READ, "user.revoke"}},
    {EVHTTP_REQ_GET, "audit", api_audit_list, {0, TG_CAP_AUDIT, NULL}},
    /* enroll.c: the appliance's identity and the enrollment CA (issue 11) */
    {EVHTTP_REQ_GET, "identity", api_identity_get, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_POST, "identity", api_identity_set, {1, TG_CAP_CERTS, "identity.enroll"}},
    {EVHTTP_REQ_GET, "enroll-ca", api_enrollca_get, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_POST, "enroll-ca", api_enrollca_init, {1, TG_CAP_CERTS, "enroll-ca.init"}},
    {EVHTTP_REQ_POST, "enroll-ca/set", api_enrollca_set, {1, TG_CAP_CERTS, "enroll-ca.set"}},
    {EVHTTP_REQ_POST,
     "enroll-ca/secrets",
     api_enrollca_secret,
     {1, TG_CAP_CERTS, "enroll-ca.secret"}},
    {EVHTTP_REQ_POST,
     "enroll-ca/requests/{}/approve",
     api_enrollca_approve,
     {0, TG_CAP_CERTS, "enroll-ca.approve"}},
    {EVHTTP_REQ_POST,
     "enroll-ca/devices/{}/revoke",
     api_enrollca_revoke,
     {1, TG_CAP_CERTS, "enroll-ca.revoke"}},
    {EVHTTP_REQ_POST, "factory-reset", api_factory_reset, {1, TG_CAP_USERS, "factory-reset"}},
    /* inspect.c: the inspection configuration (reads need READ, changes INSPECTION; the
     * exports are audited as the CLI's are). "policies/defaults…" before "policies/{}…": the
     * first row that matches answers. */
    {EVHTTP_REQ_GET, "proxies/client", api_proxies_list, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_POST,
     "proxies/client",
     api_proxy_create,
     {1, TG_CAP_INSPECTION, "proxy.client.create"}},
    {EVHTTP_REQ_GET, "proxies/client/{}", api_proxy_get, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_POST,
     "proxies/client/{}/set",
     api_proxy_set,
     {1, TG_CAP_INSPECTION, "proxy.client.set"}},
    {EVHTTP_REQ_DELETE,
     "proxies/client/{}",
     api_proxy_delete,
     {0, TG_CAP_INSPECTION, "proxy.client.delete"}},
    {EVHTTP_REQ_GET, "proxies/server", api_srvproxies_list, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_POST,
     "proxies/server",
     api_srvproxy_create,
     {1, TG_CAP_INSPECTION, "proxy.server.create"}},
    {EVHTTP_REQ_GET, "proxies/server/{}", api_srvproxy_get, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_POST,
     "proxies/server/{}/set",
     api_srvproxy_set,
     {1, TG_CAP_INSPECTION, "proxy.server.set"}},
    {EVHTTP_REQ_DELETE,
     "proxies/server/{}",
     api_srvproxy_delete,
     {0, TG_CAP_INSPECTION, "proxy.server.delete"}},
    {EVHTTP_REQ_GET, "proxies/stats", api_proxy_stats, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_GET, "policies", api_policies_list, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_POST, "policies", api_policy_create, {1, TG_CAP_INSPECTION, "policy.create"}},
    {EVHTTP_REQ_POST,
     "policies/import",
     api_policy_import,
     {0, TG_CAP_INSPECTION, "policy.import"}},
    {EVHTTP_REQ_GET, "policies/defaults", api_defaults_get, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_GET,
     "policies/defaults/export",
     api_defaults_export,
     {0, TG_CAP_READ, "policy.defaults.export"}},
    {EVHTTP_REQ_POST,
     "policies/defaults/import",
     api_defaults_import,
     {0, TG_CAP_INSPECTION, "policy.defaults.import"}},
    {EVHTTP_REQ_POST,
     "policies/defaults/reset",
     api_defaults_reset,
     {0, TG_CAP_INSPECTION, "policy.defaults.reset"}},
    {EVHTTP_REQ_GET, "policies/{}", api_policy_get, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_POST, "policies/{}/set", api_policy_set, {1, TG_CAP_INSPECTION, "policy.set"}},
    {EVHTTP_REQ_DELETE, "policies/{}", api_policy_delete, {0, TG_CAP_INSPECTION, "policy.delete"}},
    {EVHTTP_REQ_GET, "policies/{}/export", api_policy_export, {0, TG_CAP_READ, "policy.export"}},
    {EVHTTP_REQ_GET, "categories", api_categories_list, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_GET, "categories/{}", api_category_get, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_POST,
     "categories/import",
     api_categories_import,
     {0, TG_CAP_INSPECTION, "category.import"}},
    {EVHTTP_REQ_POST,
     "categories/clear",
     api_categories_clear,
     {0, TG_CAP_INSPECTION, "category.clear"}},
    {EVHTTP_REQ_GET, "acme/accounts", api_acme_accounts, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_GET, "acme/accounts/{}", api_acme_account, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_GET, "acme/certificates", api_acme_certs, {0, TG_CAP_READ, NULL}},
    {EVHTTP_REQ_GET, "acme/certificates/{}", api_acme_cert, {0, TG_CAP_READ, NULL}},
};

#define PREFIX "/api/v1/"

/* Matches path (after the prefix) against pattern; decoded {} segments go to out. */
static int match(const char *pattern, const char *path, char **out, int *nout)
{
    *nout = 0;
    for (;;) {
        const char *pe = strchr(pattern, '/'), *se = strchr(path, '/');
        size_t pl = pe ? (size_t)(pe - pattern) : strlen(pattern);
        size_t sl = se ? (size_t)(se - path) : strlen(path);
        if (sl == 0) return 0;
        if (pl == 2 && memcmp(pattern, "{}", 2) == 0) {
            if (*nout >= API_PARAMS_MAX) return 0;
            char *seg = strndup(path, sl);
            size_t dl = 0;
            char *dec = seg ? evhttp_uridecode(seg, 0, &dl) : NULL;
            free(seg);
            if (dec == NULL) return 0;
            if (strlen(dec) != dl) { /* %00 */
                free(dec);
                return 0;
            }
            out[(*nout)++] = dec;
        } else if (pl != sl || memcmp(pattern, path, pl) != 0)
            return 0;
        if ((pe == NULL) != (se == NULL)) return 0;
        if (pe == NULL) return 1;
        pattern = pe + 1;
        path = se + 1;
    }
}

api_handler api_route(int method, const char *path, api_req *r, api_route_info *info,
                      int *method_ok)
{
    *method_ok = 1;
    const char *rel = strncmp(path, PREFIX, strlen(PREFIX)) == 0 ? path + strlen(PREFIX) : NULL;
    int other_method = 0;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        char *params[API_PARAMS_MAX] = {0};
        int n = 0;
        int whole = routes[i].path[0] == '/'; /* outside /api/v1/ (/metrics) */
        if (whole && path[0] != '/') continue;
        if (!whole && rel == NULL) continue;
        int hit = whole ? match(routes[i].path + 1, path + 1, params, &n)
                        : match(routes[i].path, rel, params, &n);
        if (hit && routes[i].method == method) {
            memcpy(r->params, params, sizeof(params));
            *info = routes[i].info;
            return routes[i].fn;
        }
        for (int k = 0; k < n; k++)
            free(params[k]);
        other_method |= hit;
    }
    *method_ok = !other_method;
    return NULL;
}

void api_started(void)
{
    started_at = (long long)time(NULL);
}
