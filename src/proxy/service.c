/*
 * service.c — the client proxies as a service of serve: listeners, live changes, the
 * per-worker state, the counters file and the SSL log.
 *
 * Each proxy's listener points at a slot, and the slot at the proxy's current build
 * (a pxy): a change in the store (polled once a second on thread 0) builds every proxy
 * anew and swaps each slot's pointer under its lock, so a changed proxy takes new flows
 * with its new settings at once while open flows keep theirs (they hold a reference). A
 * listener is closed and bound again only when a proxy's address or mode changed, and
 * closed when the proxy is deleted. A proxy that cannot be built (its signing key cannot
 * be unsealed, its address is taken) is logged and skipped; the others run.
 *
 * Counters are kept per proxy name for the life of the process and written, once a
 * second, to TG_PROXY_STATS_FILE in the store's directory (written whole, then renamed),
 * which `tlsgate proxy stats` reads. The SSL log (one JSON line per session of a proxy
 * with --log) is TG_PROXY_SSL_LOG there, mode 0600, rotated to ".1" beyond
 * TG_PROXY_LOG_MAX bytes.
 */
#include "proxy_int.h"

#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TICKS_PER_POLL 4 /* serve ticks every 250 ms: the store is asked once a second */

typedef struct slot {
    pthread_mutex_t lock;
    pxy *cur;
    char name[136], listen[96];
    int transparent, server;
    tg_listener *l;
} slot;

pworker *pworker_of(tg_proxies *svc, tg_worker *w)
{
    int i = tg_worker_index(w);
    return svc && i < svc->npw ? &svc->pw[i] : NULL;
}

/* ---- counters ---- */

pstats *stats_for(tg_proxies *svc, const char *name)
{
    pthread_mutex_lock(&svc->stats_lock);
    pstats *st = NULL;
    for (size_t i = 0; i < svc->nstats && st == NULL; i++)
        if (strcmp(svc->stats[i].name, name) == 0) st = &svc->stats[i];
    if (st == NULL && svc->nstats < TG_PROXY_STATS_MAX) {
        st = &svc->stats[svc->nstats++];
        snprintf(st->name, sizeof(st->name), "%s", name);
    }
    pthread_mutex_unlock(&svc->stats_lock);
    return st;
}

static json_t *stats_doc(pstats *st)
{
    /* what both kinds count, then what only one kind has */
    json_t *d = json_pack(
        "{s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name", st->name, "kind",
        st->server ? "server" : "client", "active", atomic_load(&st->active), "connections",
        (json_int_t)atomic_load(&st->conns), "decrypted", (json_int_t)atomic_load(&st->decrypted),
        "bypassed", (json_int_t)atomic_load(&st->bypassed), "blocked",
        (json_int_t)atomic_load(&st->blocked), "client_failures",
        (json_int_t)atomic_load(&st->client_failures), "upstream_failures",
        (json_int_t)atomic_load(&st->upstream_failures), "upstream_invalid",
        (json_int_t)atomic_load(&st->invalid_upstream));
    if (d == NULL) return NULL;
    unsigned long long mints = atomic_load(&st->mints);
    json_t *own =
        st->server /* nothing is forged: no cache, no mints; cleartext is dropped */
            ? json_pack("{s:I}", "cleartext_dropped", (json_int_t)atomic_load(&st->cleartext))
            : json_pack("{s:I, s:I, s:I, s:I, s:I}", "not_decrypted",
                        (json_int_t)atomic_load(&st->not_decrypted), "cache_hits",
                        (json_int_t)atomic_load(&st->cache_hits), "cache_misses",
                        (json_int_t)atomic_load(&st->cache_misses), "mints", (json_int_t)mints,
                        "mint_us_avg", (json_int_t)(mints ? atomic_load(&st->mint_us) / mints : 0));
    if (own == NULL || json_object_update(d, own) != 0) {
        json_decref(own);
        json_decref(d);
        return NULL;
    }
    json_decref(own);
    return d;
}

void stats_write(tg_proxies *svc)
{
    json_t *list = json_array();
    pthread_mutex_lock(&svc->stats_lock);
    size_t n = svc->nstats;
    pthread_mutex_unlock(&svc->stats_lock);
    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(list, stats_doc(&svc->stats[i]));
    time_t now = time(NULL);
    char t[40];
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
    tg_workers_stats ws = {0};
    if (svc->ws) tg_workers_counters(svc->ws, &ws);
    /* refusals and evictions at the descriptor budget are serve's, shared by every proxy */
    json_t *doc = json_pack(
        "{s:s, s:I, s:i, s:{s:i, s:i, s:I, s:I}, s:o}", "written", t, "written_unix",
        (json_int_t)now, "pid", (int)getpid(), "serve", "connections", ws.used, "cap", ws.cap,
        "refused", (json_int_t)ws.refused, "evicted", (json_int_t)ws.evicted, "proxies", list);
    if (doc == NULL) return;
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%s", svc->home, TG_PROXY_STATS_FILE);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        char *text = json_dumps(doc, JSON_COMPACT);
        size_t len = text ? strlen(text) : 0;
        int ok = text && write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
        free(text);
        if (close(fd) == 0 && ok)
            rename(tmp, path);
        else
            unlink(tmp);
    }
    json_decref(doc);
}

int tg_proxy_stats_read(const char *home, const char *name, json_t **out, tg_err *err)
{
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", home, TG_PROXY_STATS_FILE);
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL)
        return tg_err_set(err, TG_E_NOTFOUND,
                          "no proxy counters yet: they are written by 'tlsgate serve' while it "
                          "runs proxies");
    if (name != NULL) {
        json_t *list = json_object_get(doc, "proxies"), *keep = json_array(), *v;
        size_t i;
        json_array_foreach(list, i, v)
        {
            const char *vn = json_string_value(json_object_get(v, "name"));
            if (vn != NULL && strcmp(vn, name) == 0) json_array_append(keep, v);
        }
        if (json_array_size(keep) == 0) {
            json_decref(keep);
            json_decref(doc);
            return tg_err_set(err, TG_E_NOTFOUND, "serve has no counters for a proxy named '%s'",
                              name);
        }
        json_object_set_new(doc, "proxies", keep);
    }
    *out = doc;
    return 0;
}

/* ---- the SSL log ---- */

void sslog_write(tg_proxies *svc, json_t *line)
{
    char *text = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    if (text == NULL) return;
    pthread_mutex_lock(&svc->log_lock);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", svc->home, TG_PROXY_SSL_LOG);
    if (svc->sslog != NULL && svc->sslog_size > TG_PROXY_LOG_MAX) {
        fclose(svc->sslog);
        svc->sslog = NULL;
        char old[4200];
        snprintf(old, sizeof(old), "%s.1", path);
        rename(path, old);
    }
    if (svc->sslog == NULL) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
        svc->sslog = fd >= 0 ? fdopen(fd, "a") : NULL;
        if (svc->sslog == NULL && fd >= 0) close(fd);
        struct stat stt;
        svc->sslog_size = svc->sslog && fstat(fd, &stt) == 0 ? (long)stt.st_size : 0;
    }
    if (svc->sslog != NULL) {
        int n = fprintf(svc->sslog, "%s\n", text);
        fflush(svc->sslog);
        if (n > 0) svc->sslog_size += n;
    }
    pthread_mutex_unlock(&svc->log_lock);
    free(text);
}

void keylog_write(tg_proxies *svc, const char *line)
{
    pthread_mutex_lock(&svc->log_lock);
    if (svc->keylog == NULL) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", svc->home, TG_PROXY_KEYLOG);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
        svc->keylog = fd >= 0 ? fdopen(fd, "a") : NULL;
        if (svc->keylog == NULL && fd >= 0) close(fd);
    }
    if (svc->keylog != NULL) {
        fprintf(svc->keylog, "%s\n", line);
        fflush(svc->keylog);
    }
    pthread_mutex_unlock(&svc->log_lock);
}

/* ---- listeners and live changes ---- */

static void slot_accept(tg_worker *w, int fd, const struct sockaddr *peer, int peerlen, void *arg)
{
    slot *s = arg;
    pthread_mutex_lock(&s->lock);
    pxy *px = s->cur;
    pxy_ref(px);
    pthread_mutex_unlock(&s->lock);
    flow_accept(w, fd, peer, peerlen, px);
    pxy_unref(px);
}

static void slot_release(void *arg)
{
    slot *s = arg;
    pxy_unref(s->cur);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static slot *slot_open(tg_proxies *svc, pxy *px, tg_err *err)
{
    slot *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        tg_err_set(err, TG_E_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->cur = px;
    snprintf(s->name, sizeof(s->name), "%s", px->name);
    snprintf(s->listen, sizeof(s->listen), "%s", px->listen);
    s->transparent = px->transparent;
    s->server = px->server;
    s->l = tg_workers_listen(svc->ws, px->listen, px->transparent ? TG_LISTEN_TRANSPARENT : 0,
                             slot_accept, slot_release, s, err);
    if (s->l == NULL) {
        s->cur = NULL; /* the caller keeps px */
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    return s;
}

/* The proxy's leaf keys, made on its first build (RSA-2048 generation takes a while). */
static int leaf_keys(pstats *st, tg_err *err)
{
    if (st->fo == NULL && (st->fo = failopen_new()) == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (st->leaf_ec != NULL) return 0;
    tg_keyspec ec = {.rsa = 0, .group = "P-256"}, rsa = {.rsa = 1, .bits = 2048};
    tg_key *e = NULL, *r = NULL;
    tg_spki *se = NULL, *sr = NULL;
    int rc = tg_key_generate(&ec, &e, err);
    if (rc == 0) rc = tg_key_generate(&rsa, &r, err);
    if (rc == 0) rc = tg_spki_new(e, &se, err);
    if (rc == 0) rc = tg_spki_new(r, &sr, err);
    if (rc != 0) {
        tg_spki_free(se);
        tg_spki_free(sr);
        tg_key_free(e);
        tg_key_free(r);
        return rc;
    }
    st->leaf_ec = e, st->leaf_rsa = r, st->spki_ec = se, st->spki_rsa = sr;
    return 0;
}

/* Puts a built proxy with a listener of its own in place: its slot kept when its name,
 * address and mode are the same (new flows get the new build), else a new listener. */
static void place(tg_proxies *svc, pxy *px, slot **next, size_t *nnext)
{
    const char *kind = px->server ? "server" : "client";
    slot *keep = NULL;
    for (size_t j = 0; j < svc->nslots && keep == NULL; j++)
        if (svc->slots[j] && strcmp(svc->slots[j]->name, px->name) == 0 &&
            strcmp(svc->slots[j]->listen, px->listen) == 0 &&
            svc->slots[j]->transparent == px->transparent)
            keep = svc->slots[j];
    if (keep != NULL) {
        for (size_t j = 0; j < svc->nslots; j++)
            if (svc->slots[j] == keep) svc->slots[j] = NULL;
        pthread_mutex_lock(&keep->lock);
        pxy *old = keep->cur;
        keep->cur = px;
        pthread_mutex_unlock(&keep->lock);
        pxy_unref(old);
        next[(*nnext)++] = keep;
        return;
    }
    /* a new address: close the old one first so that it can be taken again */
    for (size_t j = 0; j < svc->nslots; j++)
        if (svc->slots[j] && (strcmp(svc->slots[j]->name, px->name) == 0 ||
                              strcmp(svc->slots[j]->listen, px->listen) == 0)) {
            tg_listener_close(svc->slots[j]->l);
            svc->slots[j] = NULL;
        }
    tg_err err = {0};
    slot *s = slot_open(svc, px, &err);
    if (s == NULL) {
        tg_serve_say("%s proxy %s not started: %s", kind, px->name, err.msg);
        pxy_unref(px);
        return;
    }
    if (px->server)
        tg_serve_say("server proxy %s: explicit on %s, to %s", px->name, px->listen,
                     json_string_value(json_object_get(px->conf, "upstream")));
    else
        tg_serve_say("client proxy %s: %s on %s", px->name,
                     px->transparent ? "transparent" : "explicit (CONNECT)", px->listen);
    next[(*nnext)++] = s;
}

/* The intercept listeners: open while a transparent server proxy exists, closed after. */
static void intakes_sync(tg_proxies *svc, int want)
{
    if (!want) {
        for (size_t i = 0; i < svc->nintakes; i++) {
            tg_serve_say("intercept %s closed: no transparent server proxy", svc->intakes[i]->addr);
            tg_listener_close(svc->intakes[i]->l);
        }
        free(svc->intakes);
        svc->intakes = NULL;
        svc->nintakes = 0;
        return;
    }
    if (svc->nintakes > 0) return;
    static const char *const dflt[] = {TG_PROXY_INTERCEPT_DEFAULT};
    const char *const *addrs = svc->nintercept ? (const char *const *)svc->intercept : dflt;
    size_t n = svc->nintercept ? svc->nintercept : 1;
    if ((svc->intakes = calloc(n, sizeof(*svc->intakes))) == NULL) return;
    for (size_t i = 0; i < n; i++) {
        intake *in = calloc(1, sizeof(*in));
        if (in == NULL) break;
        in->svc = svc;
        snprintf(in->addr, sizeof(in->addr), "%s", addrs[i]);
        tg_err err = {0};
        in->l = tg_workers_listen(svc->ws, in->addr, TG_LISTEN_TRANSPARENT, flow_intake, free, in,
                                  &err);
        if (in->l == NULL) {
            tg_serve_say("intercept %s not opened: %s; transparent server proxies get no flows "
                         "there",
                         in->addr, err.msg);
            free(in);
            continue;
        }
        tg_serve_say("intercept %s: flows redirected here go to the transparent server proxies",
                     in->addr);
        svc->intakes[svc->nintakes++] = in;
    }
}

/* Flows that reached an intercept address and no server proxy took. */
static void intakes_say(tg_proxies *svc)
{
    for (size_t i = 0; i < svc->nintakes; i++) {
        intake *in = svc->intakes[i];
        unsigned long long u = atomic_load(&in->unmatched), d = atomic_load(&in->direct);
        if (u + d == atomic_load(&in->said)) continue;
        atomic_store(&in->said, u + d);
        tg_serve_say("intercept %s: %llu flow(s) so far to a destination no server proxy "
                     "protects, %llu not redirected: closed",
                     in->addr, u, d);
    }
}

pxy *server_for(tg_proxies *svc, const struct sockaddr_storage *dst)
{
    pxy *found = NULL;
    pthread_mutex_lock(&svc->srv_lock);
    for (size_t i = 0; i < svc->nsrv && found == NULL; i++)
        if (spxy_protects(svc->srv[i], dst)) found = svc->srv[i];
    if (found) pxy_ref(found);
    pthread_mutex_unlock(&svc->srv_lock);
    return found;
}

/* Swaps the list of transparent server proxies (takes v). */
static void servers_set(tg_proxies *svc, pxy **v, size_t n)
{
    pthread_mutex_lock(&svc->srv_lock);
    pxy **old = svc->srv;
    size_t nold = svc->nsrv;
    svc->srv = v;
    svc->nsrv = n;
    pthread_mutex_unlock(&svc->srv_lock);
    for (size_t i = 0; i < nold; i++)
        pxy_unref(old[i]);
    free(old);
}

/* Builds every proxy of the store, of both kinds, and puts the builds in place. */
static void reload(tg_proxies *svc, const char *why)
{
    tg_err err = {0};
    tg_proxy_rt *rts = NULL, *srts = NULL;
    size_t n = 0, ns = 0, nc;
    if (tg_keyring_proxies_load(svc->watch, "client", &rts, &n, &err) != 0) {
        tg_serve_say("proxies not reloaded (%s): %s", why, err.msg);
        return;
    }
    if (tg_keyring_proxies_load(svc->watch, "server", &srts, &ns, &err) != 0) {
        tg_serve_say("proxies not reloaded (%s): %s", why, err.msg);
        tg_proxy_rt_free(rts, n);
        return;
    }
    long long stamp = tg_keyring_categories_stamp(svc->watch);
    if (n > 0 && stamp != catmap_stamp(svc->cats)) { /* the category map moved: load it again */
        catmap *m = NULL;
        if (catmap_load(svc->watch, stamp, &m, &err) != 0)
            tg_serve_say("categories not reloaded: %s", err.msg);
        else {
            catmap_unref(svc->cats);
            svc->cats = m;
        }
        tg_err_clear(&err);
    }
    tg_cert *uca = NULL;
    tg_key *ukey = NULL;
    if (n > 0 && tg_keyring_untrusted_ca(svc->watch, &uca, &ukey, &err) != 0) {
        tg_serve_say("client proxies not started: the untrusted CA: %s", err.msg);
        nc = 0; /* the server proxies still run */
    } else
        nc = n;
    slot **next = calloc(nc + ns + 1, sizeof(*next));
    pxy **srv = calloc(ns + 1, sizeof(*srv));
    size_t nnext = 0, nsrv = 0;
    for (size_t i = 0; next && srv && i < nc + ns; i++) {
        tg_proxy_rt *rt = i < nc ? &rts[i] : &srts[i - nc];
        const char *kind = i < nc ? "client" : "server";
        pxy *px = NULL;
        tg_err_clear(&err);
        const char *nm = json_string_value(json_object_get(rt->conf, "name"));
        pstats *st = nm ? stats_for(svc, nm) : NULL;
        int rc = st == NULL ? -1
                 : i < nc   ? (leaf_keys(st, &err) != 0
                                   ? -1
                                   : pxy_build(svc, rt, uca, ukey, st, svc->cats, &px, &err))
                            : spxy_build(svc, rt, st, &px, &err);
        if (rc != 0) {
            tg_serve_say("%s proxy %s not started: %s", kind, nm ? nm : "?",
                         st ? err.msg : "too many proxies");
            continue;
        }
        st->server = px->server;
        if (px->server && px->transparent) {
            srv[nsrv++] = px;
            continue;
        }
        place(svc, px, next, &nnext);
    }
    for (size_t j = 0; j < svc->nslots; j++)
        if (svc->slots[j]) { /* deleted, or failed to build: its listener goes */
            tg_serve_say("proxy %s stopped", svc->slots[j]->name);
            tg_listener_close(svc->slots[j]->l);
        }
    free(svc->slots);
    svc->slots = next;
    svc->nslots = next ? nnext : 0;
    for (size_t i = 0; i < nsrv; i++) { /* transparent server proxies: said once per change */
        int same = 0;
        for (size_t j = 0; j < svc->nsrv && !same; j++)
            same = strcmp(svc->srv[j]->name, srv[i]->name) == 0 &&
                   json_equal(svc->srv[j]->conf, srv[i]->conf);
        if (!same)
            tg_serve_say("server proxy %s: transparent, %zu network(s), %zu certificate(s)",
                         srv[i]->name, srv[i]->ndest, srv[i]->ncerts);
    }
    servers_set(svc, srv, srv ? nsrv : 0);
    intakes_sync(svc, nsrv > 0);
    tg_cert_free(uca);
    tg_key_free(ukey);
    tg_proxy_rt_free(rts, n);
    tg_proxy_rt_free(srts, ns);
}

/* ---- the service ---- */

static int svc_start(void *self, tg_workers *ws, tg_err *err)
{
    tg_proxies *svc = self;
    svc->ws = ws;
    svc->npw = tg_workers_n(ws);
    svc->pw = calloc((size_t)svc->npw, sizeof(*svc->pw));
    if (svc->pw == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    const char *hosts = getenv("TLSGATE_TEST_HOSTS"); /* tests only: names of local origins */
    for (int i = 0; i < svc->npw; i++) {
        pworker *pw = &svc->pw[i];
        pw->svc = svc;
        pw->w = tg_workers_at(ws, i);
        struct event_base *b = tg_worker_base(pw->w);
        if (tg_connq_init(&pw->setup, b, TG_PROXY_SETUP_SECS, flow_setup_late, pw) != 0 ||
            tg_connq_init(&pw->open, b, 0, NULL, pw) != 0)
            return tg_err_set(err, TG_E_INTERNAL, "cannot create a timer");
        pw->dns = evdns_base_new(b, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        if (pw->dns == NULL) pw->dns = evdns_base_new(b, 0); /* no resolv.conf: hosts only */
        if (pw->dns == NULL) return tg_err_set(err, TG_E_INTERNAL, "cannot create a resolver");
        if (hosts) evdns_base_load_hosts(pw->dns, hosts);
        pw->probe = SSL_CTX_new(TLS_server_method());
        if (pw->probe == NULL) return tg_err_set(err, TG_E_INTERNAL, "cannot create a TLS context");
        SSL_CTX_set_security_level(pw->probe, 0);
        SSL_CTX_set_min_proto_version(pw->probe, 0);
        SSL_CTX_set_client_hello_cb(pw->probe, flow_hello_cb, NULL);
    }
    tg_workers_kind(ws, flows_evict, flows_close_all, svc);
    if (tg_keyring_open(svc->home, &svc->watch, err) != 0) return err->code;
    svc->version = tg_keyring_version(svc->watch);
    reload(svc, "start");
    return 0;
}

static void pcap_tick(tg_proxies *svc)
{
    if (svc->pcap == NULL) return;
    tg_pcap_flush(svc->pcap);
    tg_pcap_stats st;
    tg_pcap_stats_get(svc->pcap, &st);
    if (st.dropped > 0 && svc->pcap_dropped == 0)
        tg_serve_say("pcap: writing stopped (%s); %llu packets not written so far",
                     st.full ? "the size limit is reached" : strerror(st.error),
                     (unsigned long long)st.dropped);
    svc->pcap_dropped = st.dropped;
}

int tg_proxies_pcap(tg_proxies *p, const char *path, long long max_mb, tg_err *err)
{
    if (max_mb < 0 || max_mb > TG_PROXY_LOG_MAX_MB)
        return tg_err_fset(err, TG_E_USAGE, "pcap_max_mb",
                           "the PCAP cap must be from 1 to %d MiB (0: 1024), not %lld",
                           TG_PROXY_LOG_MAX_MB, max_mb);
    long long max_bytes = max_mb > 0 ? max_mb * 1024 * 1024 : TG_PROXY_PCAP_MAX_DEFAULT;
    if (strcmp(path, "-") == 0) {
        int fd = dup(1);
        if (fd < 0)
            return tg_err_set(err, TG_E_IO, "cannot use standard output: %s", strerror(errno));
        return tg_pcap_fd(fd, &p->pcap, err);
    }
    return tg_pcap_open(path, (uint64_t)max_bytes, &p->pcap, err);
}

static void svc_tick(void *self)
{
    tg_proxies *svc = self;
    pcap_tick(svc);
    if (++svc->ticks < TICKS_PER_POLL) return;
    svc->ticks = 0;
    long long v = tg_keyring_version(svc->watch);
    if (v != svc->version) {
        svc->version = v;
        reload(svc, "store changed");
    }
    if (svc->nslots > 0 || svc->nstats > 0) stats_write(svc);
    long long now = (long long)time(NULL);
    for (size_t i = 0; i < svc->nslots; i++) /* slots and srv change on this thread only */
        if (svc->slots[i]->cur->server) spxy_expiry(svc->slots[i]->cur, now);
    for (size_t i = 0; i < svc->nsrv; i++)
        spxy_expiry(svc->srv[i], now);
    intakes_say(svc);
}

static void svc_hup(void *self)
{
    reload(self, "SIGHUP");
}

static void svc_stop(void *self)
{
    tg_proxies *svc = self;
    for (size_t j = 0; j < svc->nslots; j++)
        tg_listener_close(svc->slots[j]->l);
    free(svc->slots);
    svc->slots = NULL;
    svc->nslots = 0;
    intakes_sync(svc, 0);
    servers_set(svc, NULL, 0);
    if (svc->nstats > 0) stats_write(svc);
    for (int i = 0; svc->pw && i < svc->npw; i++) {
        pworker *pw = &svc->pw[i];
        tg_connq_clear(&pw->setup);
        tg_connq_clear(&pw->open);
        if (pw->dns) evdns_base_free(pw->dns, 0);
        SSL_CTX_free(pw->probe);
    }
    free(svc->pw);
    svc->pw = NULL;
    svc->npw = 0;
    tg_keyring_close(svc->watch);
    svc->watch = NULL;
}

int tg_proxies_new(const char *home, int quiet, tg_proxies **out, tg_err *err)
{
    *out = NULL;
    tg_proxies *svc = calloc(1, sizeof(*svc));
    if (svc != NULL) {
        pthread_mutex_init(&svc->stats_lock, NULL);
        pthread_mutex_init(&svc->log_lock, NULL);
        pthread_mutex_init(&svc->srv_lock, NULL);
    }
    if (svc == NULL || (svc->home = strdup(home)) == NULL ||
        (svc->stats = calloc(TG_PROXY_STATS_MAX, sizeof(*svc->stats))) == NULL ||
        (svc->cache = mintcache_new(TG_PROXY_MINT_CACHE)) == NULL) {
        tg_proxies_free(svc);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    svc->quiet = quiet;
    *out = svc;
    return 0;
}

/* serve's state file: the proxies listening now (slots change on thread 0 only). */
static void svc_listeners(void *self,
                          void (*add)(void *ctx, const char *kind, const char *name,
                                      const char *addr),
                          void *ctx)
{
    tg_proxies *svc = self;
    for (size_t i = 0; i < svc->nslots; i++) {
        const slot *s = svc->slots[i];
        add(ctx,
            s->server        ? "server proxy"
            : s->transparent ? "proxy (transparent)"
                             : "proxy",
            s->name, s->listen);
    }
    for (size_t i = 0; i < svc->nintakes; i++)
        add(ctx, "intercept", "transparent server proxies", svc->intakes[i]->addr);
}

int tg_proxies_intercept(tg_proxies *p, const char *const *addrs, size_t n, tg_err *err)
{
    if (n > TG_PROXY_INTERCEPT_MAX)
        return tg_err_fset(err, TG_E_USAGE, "intercept", "at most %d intercept addresses, not %zu",
                           TG_PROXY_INTERCEPT_MAX, n);
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        if (evutil_parse_sockaddr_port(addrs[i], (struct sockaddr *)&ss, &len) != 0 ||
            strlen(addrs[i]) >= sizeof(((intake *)0)->addr) || strrchr(addrs[i], ':') == NULL)
            return tg_err_fset(err, TG_E_INVALID, "intercept",
                               "--intercept takes ADDRESS:PORT (an IPv6 address in brackets), "
                               "not '%s'",
                               addrs[i]);
    }
    p->intercept = calloc(n + 1, sizeof(char *));
    if (p->intercept == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++)
        if ((p->intercept[p->nintercept++] = strdup(addrs[i])) == NULL)
            return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    return 0;
}

tg_service tg_proxies_service(tg_proxies *p)
{
    return (tg_service){.name = "client proxies",
                        .start = svc_start,
                        .tick = svc_tick,
                        .hup = svc_hup,
                        .stop = svc_stop,
                        .listeners = svc_listeners,
                        .self = p};
}

void tg_proxies_free(tg_proxies *p)
{
    if (p == NULL) return;
    mintcache_free(p->cache);
    catmap_unref(p->cats);
    tg_pcap_close(p->pcap);
    free(p->content_dir);
    if (p->sslog) fclose(p->sslog);
    if (p->keylog) fclose(p->keylog);
    for (size_t i = 0; p->stats && i < p->nstats; i++) {
        tg_spki_free(p->stats[i].spki_ec);
        tg_spki_free(p->stats[i].spki_rsa);
        tg_key_free(p->stats[i].leaf_ec);
        tg_key_free(p->stats[i].leaf_rsa);
        failopen_free(p->stats[i].fo);
    }
    free(p->stats);
    free(p->home);
    for (size_t i = 0; i < p->nintercept; i++)
        free(p->intercept[i]);
    free(p->intercept);
    pthread_mutex_destroy(&p->srv_lock);
    pthread_mutex_destroy(&p->stats_lock);
    pthread_mutex_destroy(&p->log_lock);
    free(p);
}
