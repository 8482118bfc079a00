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
    atomic_ullong cleartext; /* server proxies: plain text on a TLS server's port, dropped */
    int server;              /* the counters of a server proxy */
    atomic_int over_max;     /* inside an over-max episode (logged once per crossing) */
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
/* to gets new references to from's leaf, key and chain: 0, or -1 (to left empty). */
int forged_copy(const forged *from, forged *to);

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
/* A list of canonical networks (a JSON array of strings) parsed; the caller frees *out. */
int cidr_list(json_t *list, tg_cidr **out, size_t *n, tg_err *err);
/* 1 when addr falls in one of the networks (which: that network as text); an IPv4-mapped
 * IPv6 address is taken as the IPv4 address it maps. */
int cidr_find(const tg_cidr *v, size_t n, const struct sockaddr_storage *addr, char *which,
              size_t size);
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

/* The TLS 1.2 suites a proxy offers where --ciphers does not say: ECDHE with AES-GCM,
 * ChaCha20 or AES-CBC (no RSA key exchange, CCM, 3DES, RC4 or export suites); towards a
 * client proxy's clients the CBC suites are left out (PROXY_CIPHERS_CLIENTS). */
#define PROXY_CIPHERS         "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:!AESCCM:!aNULL:!DSS"
#define PROXY_CIPHERS_CLIENTS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"

/* ---- conf.c: one proxy as it runs (a client proxy; sproxy.c: a server proxy's part) ---- */
typedef struct tg_proxies tg_proxies;
/* One certificate a server proxy shows, loaded: the leaf, its key and stored chain. */
typedef struct scert {
    forged f; /* not forged: the protected server's own (the same holder of references) */
    char name[136];
    long long not_after;
    int expired_said; /* the error "expired, still served" is logged once per build */
} scert;
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
    /* a server proxy (issue 12): the fields above but signers, policy and CA copies, and */
    int server;
    tg_cidr *dest, *except; /* --dest (transparent), --source-except */
    size_t ndest, nexcept;
    struct sockaddr_storage upstream; /* explicit mode: the real server */
    socklen_t upstreamlen;
    int verify;    /* the real server's certificate is verified against anchors */
    tg_index *idx; /* its certificates by name, as serve chooses (ids: position + 1) */
    scert *certs;  /* in the proxy's order; the first is the one without a match */
    size_t ncerts;
    long long next_expiry; /* spxy_expiry looks again from then (0: at once) */
} pxy;
/* st: the proxy's counters and leaf keys (stats_for). */
int pxy_build(tg_proxies *svc, tg_proxy_rt *rt, tg_cert *uca, tg_key *ukey, pstats *st,
              catmap *cats, pxy **out, tg_err *err);
/* The parts both kinds share: name, versions, ciphers, switches, the two contexts. */
int pxy_common(tg_proxies *svc, tg_proxy_rt *rt, pstats *st, const char *client_ciphers,
               const char *upstream_ciphers, pxy **out, tg_err *err);
/* sproxy.c: a server proxy's build (rt's certificates are taken over). */
int spxy_build(tg_proxies *svc, tg_proxy_rt *rt, pstats *st, pxy **out, tg_err *err);
/* The certificate for a ClientHello (sni may be empty), by serve's rules; *how: TG_PICK_*. */
const scert *spxy_pick(const pxy *p, const char *sni, int ecdsa_ok, int *how);
/* 1 when a transparent server proxy protects dst (its networks and ports). */
int spxy_protects(const pxy *p, const struct sockaddr_storage *dst);
/* Logs, once per build, each certificate that has expired and is still served. */
void spxy_expiry(pxy *p, long long now);
void pxy_ref(pxy *p);
void pxy_unref(pxy *p);
int pxy_port_on(const pxy *p, unsigned port);

/* ---- flow.c: one intercepted connection ---- */
/* The ClientHello callback of a pxy's client context and of a worker's probe context. */
int flow_hello_cb(SSL *ssl, int *alert, void *arg);
int flow_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                 const unsigned char *in, unsigned int inlen, void *arg);
void flow_accept(tg_worker *w, int fd, const struct sockaddr *peer, int peerlen, void *arg);
/* A flow to the intercept address (transparent server proxies): its original destination
 * chooses the proxy; one that no proxy protects is closed and counted. */
typedef struct intake {
    tg_proxies *svc;
    char addr[96];
    tg_listener *l;
    atomic_ullong unmatched, direct, said; /* said: unmatched+direct when last logged */
} intake;
void flow_intake(tg_worker *w, int fd, const struct sockaddr *peer, int peerlen, void *arg);
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
    /* server proxies: transparent ones by destination (flows look them up; swapped on
     * reload under srv_lock), and the intercept addresses their flows are redirected to */
    pthread_mutex_t srv_lock;
    pxy **srv;
    size_t nsrv;
    char **intercept;
    size_t nintercept;
    struct intake **intakes; /* one per intercept address, open while a proxy needs it */
    size_t nintakes;
};
/* A transparent server proxy protecting dst, referenced (pxy_unref), or NULL. */
pxy *server_for(tg_proxies *svc, const struct sockaddr_storage *dst);
#define TG_PROXY_STATS_MAX 1024
pworker *pworker_of(tg_proxies *svc, tg_worker *w);
pstats *stats_for(tg_proxies *svc, const char *name);
void stats_write(tg_proxies *svc);
/* One JSON line in the SSL log (takes the reference of line). */
void sslog_write(tg_proxies *svc, json_t *line);
/* The TLS key log (--keylog): one NSS key log line. */
void keylog_write(tg_proxies *svc, const char *line);

#endif
