/*
 * proxy_int.h — shared by the files of src/proxy only.
 */
#ifndef TG_PROXY_INT_H
#define TG_PROXY_INT_H

#include "proxy.h"
#include "../keyring/keyring.h"
#include "../x509/ossl.h"

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct failopen failopen;

/* ---- stats.c: counters per proxy name (kept across reloads), the stats file ---- */
struct pstats {
    char name[136];
    atomic_int active;
    atomic_ullong conns, decrypted, not_decrypted, bypassed, blocked;
    atomic_ullong cache_hits, cache_misses, mints, mint_us;
    atomic_ullong client_failures, upstream_failures, invalid_upstream;
    atomic_int over_max; /* inside an over-max episode (logged once per crossing) */
    /* the proxy's leaf keys, made when it first runs and kept across its rebuilds */
    tg_key *leaf_ec, *leaf_rsa;
    tg_spki *spki_ec, *spki_rsa;
    failopen *fo; /* --fail-open: kept across rebuilds too */
};

/* ---- mint.c: signers and the cache of forged leaves ---- */
typedef struct pstats pstats;
typedef struct signer {
    tg_cert *ca;
    tg_key *key;
    STACK_OF(X509) * chain; /* sent after a forged leaf: the CA, then its own chain */
    const pstats *keys;     /* the proxy's leaf keys (borrowed) */
    unsigned char id[32];   /* SHA-256 of the CA certificate's DER (the mint cache's key) */
} signer;
/* Takes ca and key; keys must outlive the signer. */
int signer_new(tg_cert *ca, tg_key *key, tg_cert **chain, size_t nchain, const pstats *keys,
               signer **out, tg_err *err);
void signer_free(signer *s);

typedef struct mintcache mintcache;
typedef struct forged {
    X509 *leaf;
    EVP_PKEY *key;
    STACK_OF(X509) * chain;
    unsigned char sha256[32]; /* of the forged leaf */
} forged;
mintcache *mintcache_new(size_t capacity);
void mintcache_free(mintcache *c);
/* The leaf for upstream (its DER's SHA-256 in up_sha) under s: from the cache or minted;
 * *hit says which. rsa: the client takes no ECDSA. forged_clear releases. */
int mint_get(mintcache *c, const signer *s, X509 *upstream, const unsigned char up_sha[32], int rsa,
             forged *out, int *hit, long long *mint_us, tg_err *err);
void forged_clear(forged *f);

/* ---- failopen.c: hosts whose clients rejected the forged certificate ---- */
enum { ACT_DECRYPT, ACT_BYPASS, ACT_BLOCK };
#define FAILOPEN_MAX 10000 /* hosts remembered per proxy; the oldest dropped beyond */
typedef struct failopen failopen;
failopen *failopen_new(void);
void failopen_free(failopen *fo);
/* Remembers host until now + secs; 1 when it was not remembered already. */
int failopen_add(failopen *fo, const char *host, int secs);
/* 1 while host is remembered. */
int failopen_has(failopen *fo, const char *host);

/* ---- policy.c: decryption policies as flows consult them ---- */
typedef struct catmap catmap;
typedef struct policy policy;
int catmap_load(tg_keyring *kr, long long stamp, catmap **out, tg_err *err);
long long catmap_stamp(const catmap *m); /* -1 for NULL */
void catmap_ref(catmap *m);
void catmap_unref(catmap *m);
/* doc: the runtime view's policy (NULL: no policy, *out NULL too); cats is referenced
 * when the policy names categories. */
int policy_build(json_t *doc, catmap *cats, policy **out, tg_err *err);
void policy_free(policy *p);
const char *policy_name(const policy *p);
enum { POLICY_NONE, POLICY_NEVER, POLICY_ALWAYS };
/* What the client's address says (why: the sentence for the log). */
int policy_source(const policy *p, const struct sockaddr_storage *peer, char *why, size_t size);
/* 1 when host falls under a never-decrypt domain or category. */
int policy_host(const policy *p, const char *host, char *why, size_t size);

/* ---- verdict.c: upstream verdicts remembered ---- */
typedef struct verdicts verdicts;
verdicts *verdicts_new(void);
void verdicts_free(verdicts *v);
/* The key of a chain (as the upstream sent it) checked for host. */
int verdict_key(STACK_OF(X509) * chain, const char *host, unsigned char key[32]);
/* 1 and *valid, why when a verdict is remembered. */
int verdict_get(verdicts *v, const unsigned char key[32], int *valid, char *why, size_t size);
void verdict_put(verdicts *v, const unsigned char key[32], int valid, const char *why,
                 long long leaf_not_after);

/* ---- upsess.c: upstream TLS sessions for resumption ---- */
#define UPSESS_KEY_MAX 560 /* "SNI|host|port" */
typedef struct upsess upsess;
upsess *upsess_new(void);
void upsess_free(upsess *u);
/* A session for key, new reference (TLS 1.3 tickets are taken out), or NULL. */
SSL_SESSION *upsess_get(upsess *u, const char *key);
/* Keeps s (takes the reference) for key. */
void upsess_put(upsess *u, const char *key, SSL_SESSION *s);
/* The upstream context's new-session callback (conf.c sets it, flow.c keys it). */
int flow_new_session(SSL *ssl, SSL_SESSION *sess);

/* ---- conf.c: one client proxy as it runs ---- */
typedef struct tg_proxies tg_proxies;
typedef struct pxy {
    atomic_int refs;
    tg_proxies *svc;
    char name[136];
    char listen[96];
    json_t *conf;
    int transparent;
    uint8_t ports[8192]; /* detection ports, one bit each */
    int block_invalid, block_expired, min_key_bits, http2_downgrade, tcp_reset, log;
    int max_conns, over_block;
    int no_sni, ech, non_tls; /* ACT_DECRYPT, ACT_BYPASS or ACT_BLOCK (non_tls: no decrypt) */
    int fail_open_secs;       /* 0: off */
    int keylog;
    SSL_CTX *cctx, *uctx; /* towards clients (forged leaves), towards upstreams */
    tg_cert **anchors;    /* the trust store, our own signing CAs left out */
    size_t nanchors;
    signer *sign, *untrusted;
    policy *pol; /* NULL: none */
    verdicts *verdicts;
    STACK_OF(X509) * ca_copies; /* the signing CA's rollover copies, for the CA page */
    upsess *sessions;           /* upstream sessions, for resumption */
    pstats *st;
    tg_listener *l;
} pxy;
/* st: the proxy's counters and leaf keys (stats_for). */
int pxy_build(tg_proxies *svc, tg_proxy_rt *rt, tg_cert *uca, tg_key *ukey, pstats *st,
              catmap *cats, pxy **out, tg_err *err);
void pxy_ref(pxy *p);
void pxy_unref(pxy *p);
int pxy_port_on(const pxy *p, unsigned port);

/* ---- flow.c: one intercepted connection ---- */
/* The ClientHello callback of a pxy's client context and of a worker's probe context. */
int flow_hello_cb(SSL *ssl, int *alert, void *arg);
int flow_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                 const unsigned char *in, unsigned int inlen, void *arg);
void flow_accept(tg_worker *w, int fd, const struct sockaddr *peer, int peerlen, void *arg);
int flows_evict(tg_worker *w, void *arg);
void flow_setup_late(tg_qlink *l, void *arg); /* the expire callback of `setup` */
void flows_close_all(tg_worker *w, void *arg);

/* ---- capage.c: the signing CA for clients to install ---- */
#define TG_PROXY_CA_HOST "tlsgate.ca" /* http://tlsgate.ca/ through an explicit proxy */
/* Answers a plain-HTTP GET for target (len bytes) on fd: 1 when answered, 0 not ours. */
int capage_answer(const pxy *px, int fd, const char *target, size_t len);

/* ---- content.c: the content log ---- */
/* A new flow's file (-1: none: no content log, or its limit reached). */
int content_open(tg_proxies *svc, const char *target, long long t0_ms,
                 const struct timespec *start);
/* One record; *written counts the flow's bytes (-1 once it stopped). */
void content_write(tg_proxies *svc, int fd, long long *written, long long ms, int from_client,
                   const void *data, size_t len);

/* ---- service.c ---- */
typedef struct pworker {
    tg_proxies *svc;
    tg_worker *w;
    tg_connq setup, open; /* flows before both handshakes (deadline), and piped */
    struct evdns_base *dns;
    SSL_CTX *probe; /* reads a peeked ClientHello (flow.c) */
} pworker;
struct tg_proxies {
    char *home;
    int quiet;
    tg_workers *ws;
    pworker *pw;
    int npw;
    tg_keyring *watch;
    long long version;
    struct slot **slots; /* one per running proxy (service.c) */
    size_t nslots;
    mintcache *cache;
    catmap *cats;  /* the category map, reloaded when the store's changed */
    pstats *stats; /* TG_PROXY_STATS_MAX entries, never moved */
    size_t nstats;
    pthread_mutex_t stats_lock;
    int ticks;
    tg_pcap *pcap;         /* decrypted flows, or NULL */
    uint64_t pcap_dropped; /* last seen, for the log */
    FILE *sslog, *keylog;
    char *content_dir; /* --content-log, or NULL */
    long long content_max;
    atomic_llong content_bytes;
    atomic_ullong content_seq;
    atomic_int content_full;
    long sslog_size;
    pthread_mutex_t log_lock;
};
#define TG_PROXY_STATS_MAX 1024
pworker *pworker_of(tg_proxies *svc, tg_worker *w);
pstats *stats_for(tg_proxies *svc, const char *name);
void stats_write(tg_proxies *svc);
/* One JSON line in the SSL log (takes the reference of line). */
void sslog_write(tg_proxies *svc, json_t *line);
/* The TLS key log (--keylog): one NSS key log line. */
void keylog_write(tg_proxies *svc, const char *line);

#endif
