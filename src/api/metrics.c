/*
 * metrics.c — GET /metrics on the admin listener (SPEC M4): serve's counters and the
 * store's certificate counts in the Prometheus text exposition format, version 0.0.4
 * (README, "Logs and metrics"), and the API's own count of answers by HTTP status.
 *
 * Where each number lives: handshakes, evictions and refusals are counted in tls (per
 * worker, summed on request: tg_serve_counters_get through the tg_workers handle the
 * service was started with); answers are counted here, on the API thread, as they are
 * sent (api_count, from listener.c); certificate counts are one query of the keyring
 * (tg_keyring_cert_tally) per scrape. A scrape's own answer is counted after it is sent:
 * the next scrape shows it.
 */
#include "api_int.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void api_count(api_counts *c, int status)
{
    if (c == NULL) return;
    if (status >= API_CODE_LOW && status < API_CODE_LOW + API_CODES)
        c->by_code[status - API_CODE_LOW]++;
}

/* A label value as the format wants it: backslash, double quote and newline escaped. */
static void label(struct evbuffer *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            evbuffer_add_printf(b, "\\%c", *v);
        else if (*v == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, v, 1);
    }
}

static void head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(struct evbuffer *b, const char *name, const char *lname, const char *lvalue,
                   long long v)
{
    evbuffer_add_printf(b, "%s", name);
    if (lname != NULL) {
        evbuffer_add_printf(b, "{%s=\"", lname);
        label(b, lvalue);
        evbuffer_add(b, "\"}", 2);
    }
    evbuffer_add_printf(b, " %lld\n", v);
}

static void certificates(struct evbuffer *b, json_t *t, long long now)
{
    const char *key;
    json_t *v;
    head(b, "tlsgate_certificates", "gauge",
         "Certificates in the store (CA certificates included) by chain status.");
    json_object_foreach(json_object_get(t, "by_status"), key, v)
        sample(b, "tlsgate_certificates", "status", key, (long long)json_integer_value(v));
    head(b, "tlsgate_servable_certificates", "gauge",
         "Certificates whose private key is in the store, by validity now.");
    json_object_foreach(json_object_get(t, "servable"), key, v) sample(
        b, "tlsgate_servable_certificates", "validity", key, (long long)json_integer_value(v));
    json_t *na = json_object_get(t, "earliest_expiry_unix");
    head(b, "tlsgate_certificate_earliest_expiry_seconds", "gauge",
         "Seconds until the earliest not-after among servable certificates (negative: one has "
         "expired); absent without any.");
    if (json_is_integer(na))
        sample(b, "tlsgate_certificate_earliest_expiry_seconds", NULL, NULL,
               (long long)json_integer_value(na) - now);
}

static void serve(struct evbuffer *b, tg_workers *ws)
{
    tg_serve_counters sc;
    int front = ws != NULL && tg_serve_counters_get(ws, &sc) == 0;
    if (ws == NULL) memset(&sc, 0, sizeof(sc));
    static const char *const outcomes[] = {[TG_PICK_EXACT] = "exact",
                                           [TG_PICK_WILDCARD] = "wildcard",
                                           [TG_PICK_DEFAULT] = "default",
                                           [TG_PICK_NONE] = "none"};
    head(b, "tlsgate_handshakes_total", "counter",
         "TLS handshakes finished on serve's front, by how SNI chose the certificate (none: "
         "ClientHellos refused, no certificate to offer).");
    static const int order[] = {TG_PICK_EXACT, TG_PICK_WILDCARD, TG_PICK_DEFAULT, TG_PICK_NONE};
    for (size_t i = 0; i < 4; i++)
        sample(b, "tlsgate_handshakes_total", "outcome", outcomes[order[i]],
               (long long)sc.handshakes[order[i]]);
    head(b, "tlsgate_deadline_closes_total", "counter",
         "Connections of serve's front closed at a deadline, by what was missing.");
    sample(b, "tlsgate_deadline_closes_total", "stage", "handshake", (long long)sc.late_handshakes);
    sample(b, "tlsgate_deadline_closes_total", "stage", "request_head", (long long)sc.late_heads);
    head(b, "tlsgate_connections", "gauge",
         "Descriptors in use by connections (serve's front and the proxies).");
    sample(b, "tlsgate_connections", NULL, NULL, sc.workers.used);
    head(b, "tlsgate_connection_cap", "gauge", "Connections serve takes at most.");
    sample(b, "tlsgate_connection_cap", NULL, NULL, sc.workers.cap);
    head(b, "tlsgate_evicted_total", "counter",
         "Unfinished connections closed to make room at the connection cap.");
    sample(b, "tlsgate_evicted_total", NULL, NULL, (long long)sc.workers.evicted);
    head(b, "tlsgate_refused_total", "counter",
         "Connections refused at the cap (nothing could be evicted).");
    sample(b, "tlsgate_refused_total", NULL, NULL, (long long)sc.workers.refused);
    head(b, "tlsgate_accept_pauses_total", "counter",
         "Times accepting paused because the process ran out of descriptors.");
    sample(b, "tlsgate_accept_pauses_total", NULL, NULL, (long long)sc.workers.accept_pauses);
    if (front) {
        head(b, "tlsgate_start_time_seconds", "gauge", "When serve started (Unix seconds).");
        sample(b, "tlsgate_start_time_seconds", NULL, NULL, sc.started_unix);
    }
}

static void answers(struct evbuffer *b, const api_counts *c)
{
    head(b, "tlsgate_api_requests_total", "counter",
         "Answers of the management API by HTTP status (those evhttp sends itself for a "
         "malformed request are not counted).");
    for (int i = 0; c && i < API_CODES; i++)
        if (c->by_code[i] > 0) {
            char code[8];
            snprintf(code, sizeof(code), "%d", i + API_CODE_LOW);
            sample(b, "tlsgate_api_requests_total", "code", code, (long long)c->by_code[i]);
        }
}

int api_metrics(api_req *r)
{
    long long now = (long long)time(NULL);
    json_t *t = NULL;
    int rc = tg_keyring_cert_tally(r->kr, now, &t, &r->err);
    if (rc != 0) return rc;
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        json_decref(t);
        return api_fail(r, TG_E_INTERNAL, NULL, "out of memory");
    }
    head(b, "tlsgate_build_info", "gauge", "The version of tlsgate serving this.");
    evbuffer_add_printf(b, "tlsgate_build_info{version=\"%s\"} 1\n", TG_VERSION);
    certificates(b, t, now);
    serve(b, r->counts ? r->counts->ws : NULL);
    answers(b, r->counts);
    json_decref(t);
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_send_reply(r->req, 200, "OK", b);
    evbuffer_free(b);
    api_count(r->counts, 200);
    return 0;
}
