/*
 * keyring.h — the face of src/keyring: the operations of SPEC K, C and F as transactions,
 * and the configuration of inspection proxies (issue 9).
 *
 * This is the only place where X.509 objects (src/x509) meet the store (src/store).
 * Every operation that writes is one store transaction: it happens whole or not at all.
 * Read operations return jansson values (the same documents the CLI prints with --json
 * and the API will serve), so that no face holds a rule the other lacks.
 */
#ifndef TG_KEYRING_H
#define TG_KEYRING_H

#include "../base/base.h"
#include "../x509/x509.h"

#include <jansson.h>

typedef struct tg_keyring tg_keyring;

#define TG_DEFAULT_CERT_NAME "appliance default"
#define TG_NAME_MAX          128
#define TG_DAYS_MAX          36500
#define TG_DAYS_DEFAULT      365
#define TG_PASSPHRASE_MIN    8

/* Opens the store in home and initialises it on first use (K1). */
int tg_keyring_open(const char *home, tg_keyring **out, tg_err *err);
void tg_keyring_close(tg_keyring *kr);
/* {"home", "store", "created": bool, "default": name} */
int tg_keyring_init(tg_keyring *kr, json_t **out, tg_err *err);
int tg_keyring_factory_reset(tg_keyring *kr, tg_err *err);

typedef struct tg_newcert {
    const char *name;
    tg_subject subject;
    const char *const *sans;
    size_t nsans;
    const char *keyspec; /* NULL: rsa:2048 */
    int days;            /* validity, 1..TG_DAYS_MAX (TG_DAYS_DEFAULT when not asked) */
    int exportable;
    int signing; /* a signing certificate (I1): cert create makes a self-signed CA with
                  * pathlen 0, named by the CA rule (C3); a request asks for a CA */
} tg_newcert;

/* K2. *out is the new certificate's document (as cert show). */
int tg_keyring_cert_create(tg_keyring *kr, const tg_newcert *spec, json_t **out, tg_err *err);
/* K3. *out is the request's document, PEM included. */
int tg_keyring_request_create(tg_keyring *kr, const tg_newcert *spec, json_t **out, tg_err *err);
int tg_keyring_request_list(tg_keyring *kr, json_t **out, tg_err *err);
int tg_keyring_request_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err);
int tg_keyring_request_delete(tg_keyring *kr, const char *name, tg_err *err);

typedef struct tg_import {
    const char *const *files;
    size_t nfiles;
    const char *name;    /* friendly name for the (single) end-entity certificate */
    const char *keyfile; /* --key */
    const tg_passsrc *pass;
    int exportable; /* for keys imported now */
    int ca_only;    /* tlsgate ca import: every certificate must be a CA */
} tg_import;
/* K4, K5. *out: {"imported":[{name, kind, private_key, request, predecessor}], "skipped":[…]} */
int tg_keyring_cert_import(tg_keyring *kr, const tg_import *imp, json_t **out, tg_err *err);
/* K7: FILE (with --key) takes NAME's place and references; the old one becomes NAME_REPLACED. */
int tg_keyring_cert_replace(tg_keyring *kr, const char *name, const tg_import *imp, json_t **out,
                            tg_err *err);

/* K9: every certificate, or those expiring within days (>= 0). Array of rows. */
int tg_keyring_cert_list(tg_keyring *kr, int expiring_days, json_t **out, tg_err *err);
int tg_keyring_cert_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err);
int tg_keyring_cert_default(tg_keyring *kr, const char *name, tg_err *err);
int tg_keyring_cert_delete(tg_keyring *kr, const char *name, tg_err *err);

typedef enum { TG_FMT_PEM, TG_FMT_DER, TG_FMT_P7B, TG_FMT_P8, TG_FMT_PKCS1, TG_FMT_P12 } tg_format;
typedef struct tg_export {
    tg_format format;
    int with_key;       /* p12: include the private key */
    int with_chain;     /* pem, p7b, p12: include the issuers found in the store */
    int support_bundle; /* certificate + chain as PEM and PKCS#7, never a key */
    int no_passphrase;  /* p8, pkcs1: the operator asked for an unencrypted key */
    tg_p12_profile profile;
    int profile_set; /* the caller named a profile: only p12 takes one */
    const tg_passsrc *pass;
} tg_export;
/* Parses a --format or --p12-profile name. */
int tg_export_format_parse(const char *s, tg_format *out, tg_err *err);
int tg_export_profile_parse(const char *s, tg_p12_profile *out, tg_err *err);
/* F3, K8: the bytes of the export file (caller frees with tg_free_secret: it may hold a key). */
int tg_keyring_cert_export(tg_keyring *kr, const char *name, const tg_export *exp,
                           unsigned char **out, size_t *outlen, tg_err *err);

/* C3: CA certificates on their own. Export goes through tg_keyring_cert_export after
 * tg_keyring_ca_check; deletion through tg_keyring_cert_delete (both refuse what is in use). */
int tg_keyring_ca_import(tg_keyring *kr, const tg_import *imp, json_t **out, tg_err *err);
int tg_keyring_ca_list(tg_keyring *kr, json_t **out, tg_err *err);
int tg_keyring_ca_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err);
int tg_keyring_ca_check(tg_keyring *kr, const char *name, tg_err *err);
int tg_keyring_ca_replace(tg_keyring *kr, const char *name, const tg_import *imp, json_t **out,
                          tg_err *err);
/* K10: same key and subject, new validity; both copies kept, the new one the successor.
 * newname NULL: "NAME until YYYY-MM-DD". */
int tg_keyring_ca_reissue(tg_keyring *kr, const char *name, int days, const char *newname,
                          json_t **out, tg_err *err);

/* C4: trust stores. */
#define TG_TRUSTSTORE_NAME_MAX 64
#define TG_TRUSTSTORE_DESC_MAX 512
int tg_keyring_ts_create(tg_keyring *kr, const char *name, const char *description,
                         int include_defaults, json_t **out, tg_err *err);
/* Adds (add=1) or removes CA certificates, by name. */
int tg_keyring_ts_change(tg_keyring *kr, const char *name, const char *const *cas, size_t n,
                         int add, json_t **out, tg_err *err);
int tg_keyring_ts_list(tg_keyring *kr, json_t **out, tg_err *err);
int tg_keyring_ts_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err);
int tg_keyring_ts_delete(tg_keyring *kr, const char *name, tg_err *err);
/* (Re)loads the default CA package from the system bundle ($TLSGATE_CA_BUNDLE, else
 * /etc/ssl/certs/ca-certificates.crt). */
int tg_keyring_ts_update_defaults(tg_keyring *kr, json_t **out, tg_err *err);
/* The trust anchors of a trust store (its CAs, plus the default package if included). */
int tg_keyring_ts_anchors(tg_keyring *kr, const char *name, tg_cert ***anchors, size_t *n,
                          tg_err *err);

/* C2: recomputes every certificate's chain status. {"changed": N} */
int tg_keyring_refresh(tg_keyring *kr, json_t **out, tg_err *err);

/* ---- serving (S1–S3): what the TLS front end needs, without TLS ---- */
typedef struct tg_servable {
    int64_t id;
    const tg_san *sans; /* the certificate's SANs, in order (borrowed) */
    size_t nsans;
    const char *cn;
    int ecdsa; /* 1: EC key, 0: RSA (or other) */
    long long not_before, not_after;
} tg_servable;
/* Every certificate whose key is held; *default_id is the default certificate. */
int tg_keyring_servables(tg_keyring *kr, int (*fn)(const tg_servable *s, void *arg), void *arg,
                         int64_t *default_id, tg_err *err);
/* One served certificate: itself (parsed), its key (unsealed), its name, and its chain as
 * stored when its status was computed — the certificates to send after it (no root),
 * nearest first, each as an id and DER, left to the caller to parse: the same id is the
 * same certificate until the store changes, so a server parses each one once. */
#define TG_SERVED_CHAIN_MAX 8
typedef struct tg_served_link {
    int64_t id;
    unsigned char *der;
    size_t derlen;
} tg_served_link;
typedef struct tg_served {
    tg_cert *cert;
    tg_served_link chain[TG_SERVED_CHAIN_MAX];
    size_t nchain;
    tg_key *key;
    char *name;
} tg_served;
/* One query and one unseal: no issuer search, no signature check (a member deleted
 * meanwhile shortens the chain). */
int tg_keyring_serve_load(tg_keyring *kr, int64_t id, tg_served *out, tg_err *err);
void tg_served_clear(tg_served *s);
/* A number that changes when another process changes the store. */
long long tg_keyring_version(tg_keyring *kr);

/* ---- inspection proxies (issue 9): configuration, and the view the engine runs on ---- */
#define TG_PROXY_NAME_MAX    128  /* letters, digits, '_', '-', ' ' (not at either end) */
#define TG_PROXY_DESC_MAX    512  /* characters of printable UTF-8 */
#define TG_PORTS_MAX         256  /* items (ports or ranges) in one port list */
#define TG_PORTS_TEXT_MAX    4096 /* bytes of a port list, given or canonical */
#define TG_LISTEN_MAX        96   /* bytes of a canonical "ADDR:PORT" */
#define TG_KEY_BITS_LOW      512  /* min_key_bits: 0 (off) or LOW..HIGH */
#define TG_KEY_BITS_HIGH     16384
#define TG_MAX_CONNS_MAX     1000000 /* max_conns: 0 (no limit) or 1..MAX */
#define TG_UNTRUSTED_CA_NAME "untrusted-signing-ca"

/* A port list in canonical form: ranges sorted by their low end, overlapping and
 * adjacent ones merged, lo <= hi (a single port is lo == hi). */
typedef struct tg_port_range {
    unsigned lo, hi;
} tg_port_range;
typedef struct tg_portlist {
    tg_port_range v[TG_PORTS_MAX];
    size_t n;
} tg_portlist;
/* Parses "443,8443,10000-10100": ports 1..65535, ranges LOW-HIGH with LOW <= HIGH,
 * spaces around items allowed, at most TG_PORTS_MAX items; TG_E_INVALID otherwise. */
int tg_ports_parse(const char *s, tg_portlist *out, tg_err *err);
/* The canonical text ("443,8443,10000-10100") into buf (TG_PORTS_TEXT_MAX is enough). */
void tg_ports_format(const tg_portlist *l, char *buf, size_t size);
/* The lowest port both lists hold, or 0 when they have none in common. */
unsigned tg_ports_overlap(const tg_portlist *a, const tg_portlist *b);
/* Parses "ADDR:PORT" (IPv4, or [IPv6] in brackets; numeric only, port 1..65535) with
 * getaddrinfo and writes its canonical form ("192.0.2.1:3128", "[2001:db8::1]:3128"). */
int tg_listen_parse(const char *s, char *out, size_t outsize, tg_err *err);

/* A proxy's settings as given. NULL strings, TG_UNSET switches and numbers whose _set is
 * 0 are not given: create takes their defaults, set leaves them as they are. */
#define TG_UNSET (-1)
typedef struct tg_proxy_opts {
    const char *description;
    const char *signing;    /* a certificate's name: a CA whose key is in the store */
    const char *truststore; /* a trust store's name */
    const char *listen;     /* ADDR:PORT */
    const char *mode;       /* explicit (default) | transparent */
    const char *ports;      /* a port list; default: the service's port */
    const char *service;    /* https (default) | imaps | pop3s | smtps | other */
    const char *protocols;  /* from 1.0,1.1,1.2,1.3, contiguous; default "1.2,1.3" */
    const char *ciphers;    /* an OpenSSL TLS 1.2 cipher list; default none */
    int no_ciphers;         /* back to none (the library's defaults, as the engine filters) */
    const char *over_max;   /* bypass (default) | block */
    int block_invalid, block_expired, http2_downgrade, tcp_reset, log; /* TG_UNSET, 0, 1 */
    int min_key_bits_set, max_conns_set;
    long min_key_bits, max_conns;
} tg_proxy_opts;
/* kind: "client" (server proxies are not configurable yet). Every write is one
 * transaction; *out is the proxy's document (as show). */
int tg_keyring_proxy_create(tg_keyring *kr, const char *kind, const char *name,
                            const tg_proxy_opts *o, json_t **out, tg_err *err);
/* Changes only the settings given, with the rules of create (overlaps with the other
 * proxies, never with itself). */
int tg_keyring_proxy_set(tg_keyring *kr, const char *kind, const char *name, const tg_proxy_opts *o,
                         json_t **out, tg_err *err);
int tg_keyring_proxy_list(tg_keyring *kr, const char *kind, json_t **out, tg_err *err);
int tg_keyring_proxy_show(tg_keyring *kr, const char *kind, const char *name, json_t **out,
                          tg_err *err);
int tg_keyring_proxy_delete(tg_keyring *kr, const char *kind, const char *name, tg_err *err);

/* What the engine runs a proxy with. */
typedef struct tg_proxy_rt {
    json_t *conf;        /* the proxy's document, as show --json gives it */
    tg_cert *signing;    /* the signing CA certificate */
    tg_key *signing_key; /* its private key, unsealed */
    tg_cert **chain;     /* the signing CA's stored chain above it */
    size_t nchain;       /* (certs.chain_ids, nearest first), may be 0 */
    tg_cert **anchors;   /* the trust store's anchors (tg_keyring_ts_anchors; */
    size_t nanchors;     /* 0 when the trust store is empty) */
} tg_proxy_rt;
/* Every proxy of kind, in name order (*n may be 0); all or nothing: a proxy that cannot
 * be loaded fails the call, naming it. */
int tg_keyring_proxies_load(tg_keyring *kr, const char *kind, tg_proxy_rt **out, size_t *n,
                            tg_err *err);
void tg_proxy_rt_free(tg_proxy_rt *v, size_t n);
/* The installation's untrusted CA (SPEC I3: what the proxy signs with for an upstream
 * that fails validation, so that the client sees the failure): the stored signing
 * certificate TG_UNTRUSTED_CA_NAME (EC P-256, 3650 days, key not exportable), made in one
 * transaction on the first call and returned by later ones. TG_E_CONFLICT when another
 * certificate already has that name. The caller frees both. */
int tg_keyring_untrusted_ca(tg_keyring *kr, tg_cert **cert, tg_key **key, tg_err *err);

/* Friendly names: 1-128 bytes of printable UTF-8, no leading or trailing space. */
int tg_keyring_name_check(const char *name, tg_err *err);

#include "verify.h"

#endif
