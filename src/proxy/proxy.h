/*
 * proxy.h — the face of src/proxy: TLS inspection (SPEC I1–I8).
 *
 * Client proxies are kept in the store (`tlsgate proxy client …`) and run by `serve` on
 * its workers, as a tg_service: explicit (HTTP CONNECT) or transparent (iptables
 * REDIRECT or TPROXY) listeners; for each flow the upstream handshake completes and the
 * upstream chain is validated (x509's verifier, the proxy's trust store, never our own
 * signing CAs) before a leaf is forged for the client; the decrypted bytes are spliced
 * between the two TLS connections. Changes in the store are picked up while serving;
 * open flows keep the configuration they started with.
 *
 * Limits (README, "Client proxies"):
 *   - setup: a deadline of TG_PROXY_SETUP_SECS from accept to both handshakes done
 *     (CONNECT head, ClientHello, upstream connect and handshake, client handshake);
 *   - CONNECT head at most TG_PROXY_HEAD_MAX bytes; ClientHello at most
 *     TG_PROXY_HELLO_MAX bytes;
 *   - piped flows: TG_PROXY_IDLE_SECS of inactivity; at most TG_PIPE_HIGH bytes queued
 *     per direction;
 *   - forged leaves cached: TG_PROXY_MINT_CACHE, least recently used dropped;
 *   - connections share serve's descriptor budget (two descriptors each).
 */
#ifndef TG_PROXY_H
#define TG_PROXY_H

#include "../base/base.h"
#include "../tls/tls.h"
#include "pcap.h"

#include <jansson.h>

#define TG_PROXY_SETUP_SECS 20
#define TG_PROXY_HEAD_MAX   8192
#define TG_PROXY_HELLO_MAX  (16384 + 5)
#define TG_PROXY_IDLE_SECS  300
#define TG_PROXY_MINT_CACHE 10000
#define TG_PROXY_LOG_MAX    (64L * 1024 * 1024) /* the SSL log rotates to .1 beyond this */
#define TG_PROXY_STATS_FILE "proxy-stats.json"  /* in the store's directory */
#define TG_PROXY_SSL_LOG    "ssl-log.jsonl"     /* in the store's directory */
#define TG_PROXY_KEYLOG     "tls-keys.log"      /* --keylog: NSS key log, same place */

typedef struct tg_proxies tg_proxies;

/* The client proxies of the store in `home`, to run inside serve (quiet: no log lines). */
int tg_proxies_new(const char *home, int quiet, tg_proxies **out, tg_err *err);
tg_service tg_proxies_service(tg_proxies *p);
/* Where transparent server proxies' flows are redirected to (iptables REDIRECT
 * --to-ports, or TPROXY): ADDR:PORT each, at most TG_PROXY_INTERCEPT_MAX; without a
 * call, TG_PROXY_INTERCEPT_DEFAULT. Listened on only while such a proxy exists. Before
 * start. */
#define TG_PROXY_INTERCEPT_DEFAULT "0.0.0.0:8444"
#define TG_PROXY_INTERCEPT_MAX     8
int tg_proxies_intercept(tg_proxies *p, const char *const *addrs, size_t n, tg_err *err);
/* The decrypted flows of every proxy as a PCAP (pcap.h) into path ("-": standard
 * output, a stream for `tshark -r -`, not capped), at most max_mb MiB (0: the default).
 * Before start. */
#define TG_PROXY_PCAP_MAX_DEFAULT (1024LL * 1024 * 1024)
#define TG_PROXY_LOG_MAX_MB       1048576 /* the largest cap of the PCAP and content log */
int tg_proxies_pcap(tg_proxies *p, const char *path, long long max_mb, tg_err *err);
/* The cleartext of every decrypted flow as a file of its own in dir (content.c), at most
 * max_mb MiB in all (0: the default) and TG_PROXY_CONTENT_FLOW_MAX per flow. */
#define TG_PROXY_CONTENT_MAX_DEFAULT (1024LL * 1024 * 1024)
#define TG_PROXY_CONTENT_FLOW_MAX    (64LL * 1024 * 1024)
int tg_proxies_content_log(tg_proxies *p, const char *dir, long long max_mb, tg_err *err);
void tg_proxies_free(tg_proxies *p);

/* `tlsgate proxy stats`: the counters the running serve last wrote (NAME or NULL for
 * all); TG_E_NOTFOUND when serve has never run a proxy. */
int tg_proxy_stats_read(const char *home, const char *name, json_t **out, tg_err *err);

#endif
