/*
 * keyring.h — the face of src/keyring: the operations of SPEC K, C and F as transactions,
 * and the configuration of inspection proxies and their decryption policies (issue 9).
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
#include <limits.h>

typedef struct tg_keyring tg_keyring;

#define TG_DEFAULT_CERT_NAME "appliance default"
#define TG_NAME_MAX          128
#define TG_DAYS_MAX          36500
#define TG_DAYS_DEFAULT      365
#define TG_DAYS_NONE         INT_MIN /* a number of days not given */
#define TG_PASSPHRASE_MIN    8

/* Opens the store in home and initialises it on first use (K1). */
int tg_keyring_open(const char *home, tg_keyring **out, tg_err *err);
/* Opens a store that exists (issue 14, item 4: only init and serve make one); without
 * one, TG_E_NOTFOUND and nothing is created. */
int tg_keyring_open_existing(const char *home, tg_keyring **out, tg_err *err);
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
    int days;            /* validity, 1..TG_DAYS_MAX, when days_set */
    int days_set;        /* 0: TG_DAYS_DEFAULT (a caller that zeroes the struct gets it) */
    int no_export;       /* the key never leaves the store (default: exportable) */
    int signing;         /* a signing certificate (I1): cert create makes a self-signed CA with
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
    const tg_input *inputs; /* the files' bytes, in the order given */
    size_t ninputs;
    const char *name;    /* friendly name for the (single) end-entity certificate */
    const tg_input *key; /* a separate private key (the CLI's --key), or NULL */
    const tg_passsrc *pass;
    int no_export; /* keys imported now never leave the store (default: exportable) */
    int ca_only;   /* tlsgate ca import: every certificate must be a CA */
    /* A self-signed CA certificate that names servers (DNS or IP SANs: what `openssl req
     * -x509` makes by default) is filed as a server certificate, not as a CA: listed with
     * the certificates, named by the leaf rule, never an issuer or trust anchor here.
     * Without it such a certificate is filed as a CA, with a warning that says so. */
    int as_server;
    /* Called (when set) as the work goes on: phase "reading" counts inputs decoded,
     * "storing" certificates stored; done of total. For a face's progress display only. */
    void (*progress)(void *arg, const char *phase, size_t done, size_t total);
    void *progress_arg;
} tg_import;
/* K4, K5. *out: {"new", "already_present", "imported":[{name, kind, private_key, request,
 * predecessor}], "skipped":[…]} (docs/json.md); nothing new is no failure ("new": 0). */
int tg_keyring_cert_import(tg_keyring *kr, const tg_import *imp, json_t **out, tg_err *err);
/* K7: FILE (with --key) takes NAME's place and references; the old one becomes NAME_REPLACED. */
int tg_keyring_cert_replace(tg_keyring *kr, const char *name, const tg_import *imp, json_t **out,
                            tg_err *err);

/* K9: the certificates table (cert list, ca list): an array of rows in name order, or,
 * with expiring_days >= 0, those that expire within that many days, soonest first. */
typedef enum {
    TG_LIST_CERTS, /* the certificates that are not CAs (cert list) */
    TG_LIST_CAS,   /* CA certificates only (ca list) */
    TG_LIST_ALL    /* both */
} tg_list_kind;
typedef struct tg_list {
    tg_list_kind kind;
    int expiring_days;  /* -1: every row */
    const char *filter; /* NULL or "": every row; else those whose name, common name or a SAN
                         * value contains it (ASCII case ignored; at most TG_QUERY_MAX bytes) */
} tg_list;
/* *total (may be NULL): the rows kind and expiring_days select before the filter. */
int tg_keyring_cert_list(tg_keyring *kr, const tg_list *q, json_t **out, size_t *total,
                         tg_err *err);
/* The same rows, in the same order, handed to emit one at a time (borrowed: emit keeps a
 * reference if it wants one) and never held together: a list of 100,000 in constant
 * memory. emit returns non-zero to stop (no error is recorded then). */
int tg_keyring_cert_list_each(tg_keyring *kr, const tg_list *q, int (*emit)(json_t *row, void *arg),
                              void *arg, size_t *total, tg_err *err);
/* One page of the certificates table (or of the CA certificates: ca set), for faces that
 * page: {"items": [rows as cert list], "total": N, "next": name (absent on the last
 * page)}; the next page starts after "next". limit 1..TG_PAGE_MAX (0: TG_PAGE_DEFAULT);
 * query: names, common names or SAN values containing it (ASCII case ignored). */
#define TG_PAGE_DEFAULT 100
#define TG_PAGE_MAX     1000
#define TG_QUERY_MAX    256
typedef struct tg_page {
    int ca;
    int expiring_set; /* only rows that expire within expiring_days */
    int expiring_days;
    const char *after, *query;
    int limit;
} tg_page;
int tg_keyring_cert_page(tg_keyring *kr, const tg_page *pg, json_t **out, tg_err *err);
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
/* Whether an export with these settings carries a private key: a face keeps such bytes
 * from everyone but the operator (the CLI: a 0600 file, never standard output). */
int tg_export_has_key(const tg_export *exp);
/* F3, K8: the bytes of the export file (caller frees with tg_free_secret: it may hold a key). */
int tg_keyring_cert_export(tg_keyring *kr, const char *name, const tg_export *exp,
                           unsigned char **out, size_t *outlen, tg_err *err);

/* C3: CA certificates on their own: each call refuses a name that is not a CA ("no CA
 * certificate is named") in the same step as it acts. */
int tg_keyring_ca_export(tg_keyring *kr, const char *name, const tg_export *exp,
                         unsigned char **out, size_t *outlen, tg_err *err);
int tg_keyring_ca_delete(tg_keyring *kr, const char *name, tg_err *err);
int tg_keyring_ca_import(tg_keyring *kr, const tg_import *imp, json_t **out, tg_err *err);
int tg_keyring_ca_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err);
int tg_keyring_ca_check(tg_keyring *kr, const char *name, tg_err *err);
int tg_keyring_ca_replace(tg_keyring *kr, const char *name, const tg_import *imp, json_t **out,
                          tg_err *err);
/* K10: same key and subject, new validity; both copies kept, the new one the successor.
 * days has no default (TG_DAYS_NONE: "needs the new validity"); newname NULL: "NAME until
 * YYYY-MM-DD". */
int tg_keyring_ca_reissue(tg_keyring *kr, const char *name, int days, const char *newname,
                          json_t **out, tg_err *err);

/* K10, planned ahead (rollover.c): a self-signed CA whose key is held is reissued by serve
 * (same key, subject and extensions; the original's validity length, at most TG_DAYS_MAX)
 * when it is within the lead time of its expiry and half its validity has passed, unless a
 * copy of it (same subject and key) or a successor already ends later. The lead time is the
 * setting TG_ROLLOVER_LEAD_KEY; 0 turns automatic rollover off. */
#define TG_ROLLOVER_LEAD_KEY     "ca_rollover_lead_days"
#define TG_ROLLOVER_LEAD_DEFAULT 365
#define TG_ROLLOVER_FOLLOW_DAYS  30 /* a proxy on a copy this close to expiry moves on */
/* The lead time in days (TG_ROLLOVER_LEAD_DEFAULT when never set). */
int tg_keyring_rollover_lead(tg_keyring *kr, int *days, tg_err *err);
/* Sets it: 0..TG_DAYS_MAX (TG_E_INVALID otherwise, nothing changed). *out (may be NULL):
 * {"ca_rollover_lead_days": N}. */
int tg_keyring_rollover_lead_set(tg_keyring *kr, int days, json_t **out, tg_err *err);
/* The warning thresholds of a CA's expiry, in days, widest first. */
#define TG_ROLLOVER_WARN_DAYS                                                                      \
    {                                                                                              \
        365, 180, 90, 30                                                                           \
    }
/* Every CA certificate's dates at now, soonest expiry first (docs/json.md "ca
 * rollover-plan"): [{"name", "issued_to", "private_key", "self_signed", "not_before",
 * "not_after", "days_left", "expired", "warning" (365/180/90/30: the tightest threshold it
 * is within, 0: none), "successor" (string?), "rollover" ("automatic", "done", "manual",
 * "off"), "rollover_due" (notAfter minus the lead time, not before half the validity),
 * "due" (automatic, and due at now)}]. */
int tg_keyring_rollover_plan(tg_keyring *kr, long long now, json_t **out, tg_err *err);
/* Does the rollovers due at now, each in one transaction with its audit row (actor
 * "serve", action "ca.rollover"): the reissue; and moves the proxies still on a copy that
 * ends within TG_ROLLOVER_FOLLOW_DAYS to its newest copy (its successor), in one transaction
 * with its audit row too. Running it twice does nothing the second
 * time. *out: {"lead_days", "reissued": [{"name", "successor", "not_after",
 * "not_after_unix", "proxies_moved"}], "moved": [{"name", "successor", "proxies_moved"}],
 * "failed": [{"name", "error"}]}; a CA that fails is named there and the others go on. */
int tg_keyring_rollover_run(tg_keyring *kr, long long now, json_t **out, tg_err *err);

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
/* The same for a certificate by name (NULL: the default certificate), as a listener of
 * the appliance's own (the admin API) loads its identity. */
int tg_keyring_serve_named(tg_keyring *kr, const char *name, tg_served *out, tg_err *err);
/* A number that changes when another process changes the store. */
long long tg_keyring_version(tg_keyring *kr);

/* ---- what an operator watches (observe.c; SPEC M4, K9) ---- */
/* A servable certificate (key held) that expires soon. */
typedef struct tg_expiring {
    int64_t id;
    const char *name; /* borrowed for the call */
    long long not_after;
    int is_default;
} tg_expiring;
/* Every servable certificate whose validity ends before `before` (Unix seconds), soonest
 * first; fn returns non-zero to stop. */
int tg_keyring_expiring_each(tg_keyring *kr, long long before,
                             int (*fn)(const tg_expiring *e, void *arg), void *arg, tg_err *err);
/* The certificates counted: {"total", "by_status": {CHAIN_STATUS: N} ("unknown" when not
 * computed), "servable": {"valid", "not_yet_valid", "expired"} (key held; validity at
 * now), "earliest_expiry" / "earliest_expiry_unix" / "earliest_expiry_name" (the soonest
 * not_after among servable certificates, or null)}. */
int tg_keyring_cert_tally(tg_keyring *kr, long long now, json_t **out, tg_err *err);
/* serve's state file in the store's directory: written (atomically) by serve at start and
 * when its listeners change, removed at a clean exit. */
#define TG_SERVE_STATE_FILE "serve-state.json"
int tg_keyring_serve_state_write(tg_keyring *kr, json_t *state, tg_err *err);
void tg_keyring_serve_state_clear(tg_keyring *kr);
/* {"running": true, ...what serve wrote...}, or {"running": false} without a file, or
 * {"running": false, "stale_pid", "stale_written"} when the process that wrote it is gone. */
int tg_keyring_serve_state(tg_keyring *kr, json_t **out, tg_err *err);
/* The configuration as one document (config show; docs/json.md "config show"). */
int tg_keyring_config(tg_keyring *kr, json_t **out, tg_err *err);

/* ---- inspection proxies (issue 9): configuration, and the view the engine runs on ---- */
#define TG_PROXY_NAME_MAX    128  /* letters, digits, '_', '-', ' ' (not at either end) */
#define TG_PROXY_DESC_MAX    512  /* characters of printable UTF-8 */
#define TG_PORTS_MAX         256  /* items (ports or ranges) in one port list */
#define TG_PORTS_TEXT_MAX    4096 /* bytes of a port list, given or canonical */
#define TG_LISTEN_MAX        96   /* bytes of a canonical "ADDR:PORT" */
#define TG_KEY_BITS_LOW      512  /* min_key_bits: 0 (off) or LOW..HIGH */
#define TG_KEY_BITS_HIGH     16384
#define TG_MAX_CONNS_MAX     1000000 /* max_conns: 0 (no limit) or 1..MAX */
#define TG_FAIL_OPEN_LOW     10      /* fail_open_secs: 0 (off) or LOW..HIGH */
#define TG_FAIL_OPEN_HIGH    86400
#define TG_UNTRUSTED_CA_NAME "untrusted-signing-ca"
#define TG_PROXY_CA_COPIES   4    /* rollover copies of a signing CA handed to the engine */
#define TG_SRV_CERTS_MAX     1000 /* certificates of one server proxy (chosen by SNI) */
#define TG_SRV_DEST_MAX      256  /* destination networks of one server proxy */
#define TG_SRV_EXCEPT_MAX    1000 /* source exception networks of one server proxy */

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

/* A list of texts as given (an option repeated, a JSON array). */
typedef struct tg_textlist {
    const char *const *v;
    size_t n;
} tg_textlist;
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
    const char *policy;     /* a decryption policy's name; default none */
    int no_policy;          /* back to none */
    const char *no_sni;     /* a ClientHello without SNI: decrypt (default) | bypass | block */
    const char *ech;        /* one with Encrypted ClientHello: decrypt | bypass (default) | block */
    const char *non_tls;    /* not TLS on a detection port: bypass (default) | block */
    int block_invalid, block_expired, http2_downgrade, tcp_reset, log; /* TG_UNSET, 0, 1 */
    int keylog; /* TG_UNSET, 0, 1: TLS secrets of decrypted flows to tls-keys.log */
    int min_key_bits_set, max_conns_set, fail_open_set;
    long min_key_bits, max_conns;
    long fail_open; /* seconds: 0 (off) or TG_FAIL_OPEN_LOW..TG_FAIL_OPEN_HIGH */
    /* A server proxy's own (issue 12): certificates by name, destination and source
     * exception networks (CIDR). certs/dest/source_except: create's lists, or on set the
     * new list whole (v NULL: not given); add_…/remove_…: set's changes, applied after. */
    tg_textlist certs, add_certs, remove_certs;
    tg_textlist dest, add_dest, remove_dest;
    tg_textlist source_except, add_source_except, remove_source_except;
    const char *upstream; /* explicit mode: the real server, ADDR:PORT */
    int no_truststore;    /* set: no trust store (the real server is not verified) */
} tg_proxy_opts;
/* Nothing given: every string NULL, every switch TG_UNSET, no number set. */
void tg_proxy_opts_init(tg_proxy_opts *o);
/* kind: "client" or "server"; each refuses the other's settings. Every write is one
 * transaction; *out is the proxy's document (as show). A server proxy's document lists
 * its certificates with their names, SANs and key state ("ok", "missing", "broken"). */
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
    /* The proxy's decryption policy, NULL when it has none: {"name", "never_domains",
     * "never_categories", "never_sources", "always_sources"}, each list an array of
     * canonical strings in byte order; never_domains is the policy's own merged with the
     * default never-decrypt list unless the policy leaves it out (no_defaults). */
    json_t *policy;
    /* Other stored certificates with the signing CA's subject and key (the copies of a
     * `ca reissue` rollover, K10), newest first; at most TG_PROXY_CA_COPIES. */
    tg_cert **copies;
    size_t ncopies;
    /* A server proxy's (issue 12; the fields above but conf, anchors and nanchors are
     * empty): its certificates in its order, each as serve loads it (certificate, key,
     * stored chain), for the engine to choose from by SNI as serve does; those whose key
     * is missing or broken are left out and listed in unusable: [{"name", "key"}]. The
     * anchors are the trust store's, none when the real servers are not verified. */
    tg_served *certs;
    size_t ncerts;
    json_t *unusable;
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

/* ---- decryption policies (issue 9, item 5): which flows a client proxy leaves alone ---- */
#define TG_POLICY_DOMAINS_MAX    10000 /* never-decrypt domains of a policy, or the default list */
#define TG_POLICY_CATEGORIES_MAX 100   /* never-decrypt categories of a policy */
#define TG_POLICY_SOURCES_MAX    1000  /* source networks of a policy, never and always together */
#define TG_DOMAIN_MAX            253   /* characters of a domain ("*." included) */
#define TG_CATEGORY_MAX          64    /* characters of a category: [a-z0-9-] */
#define TG_CIDR_TEXT_MAX         50    /* bytes of a canonical network, NUL included */
#define TG_CATEGORY_LINES_MAX    1000000 /* lines of a category file, and mappings stored */
#define TG_CATEGORY_FILE_MAX     (64u * 1024u * 1024u) /* bytes of a category file */

/* A domain of a policy or of the category map: an exact host name ("bank.example") or
 * "*.name" (every name below name, at any depth, but not name itself), lower-cased into
 * out (TG_DOMAIN_MAX + 1 bytes suffice) and checked with tg_dns_name_valid; "*." needs
 * two labels after it, an IPv4 address and a final dot are refused. TG_E_INVALID. */
int tg_domain_parse(const char *s, char *out, size_t outsize, tg_err *err);
/* Whether host (lower-case, as a ClientHello's SNI after lower-casing) is covered by a
 * parsed domain: equal to it, or below a "*." one. */
int tg_domain_matches(const char *pattern, const char *host);
/* A category: 1-64 letters, digits or hyphens, lower-cased into out (65 bytes suffice). */
int tg_category_parse(const char *s, char *out, size_t outsize, tg_err *err);
/* A source network: an IPv4 or IPv6 address with an optional prefix length (none: the one
 * address), host bits zero (else TG_E_INVALID, naming the network meant). */
typedef struct tg_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix;
} tg_cidr;
int tg_cidr_parse(const char *s, tg_cidr *out, tg_err *err);
/* The canonical text ("10.0.0.0/8", "2001:db8::/32") into buf (TG_CIDR_TEXT_MAX). */
void tg_cidr_format(const tg_cidr *c, char *buf, size_t size);
/* Whether the address (4 or 16 bytes of family) is inside the network. */
int tg_cidr_contains(const tg_cidr *c, int family, const unsigned char *addr);

/* The four lists of a policy, named in documents and files as TG_POLICY_LIST_NAMES. */
enum {
    TG_NEVER_DOMAINS,
    TG_NEVER_CATEGORIES,
    TG_NEVER_SOURCES,
    TG_ALWAYS_SOURCES,
    TG_POLICY_LISTS
};
#define TG_POLICY_LIST_NAMES                                                                       \
    {                                                                                              \
        "never_domains", "never_categories", "never_sources", "always_sources"                     \
    }
/* A policy's settings as given: NULL and TG_UNSET are not given. */
typedef struct tg_policy_opts {
    const char *description;
    int no_defaults;                     /* TG_UNSET, 0 (include the default list), 1 */
    tg_textlist add[TG_POLICY_LISTS];    /* create: the lists; set: values to add */
    tg_textlist remove[TG_POLICY_LISTS]; /* set only: values to remove (each must be there) */
} tg_policy_opts;
/* Names follow the proxy rule (TG_PROXY_NAME_MAX) and are unique among policies and
 * proxies together. Every write is one transaction; *out is the policy's document (as
 * show): {"name", "description", "no_defaults", "never_domains", "never_categories",
 * "never_sources", "always_sources", "used_by": [proxy names], "created",
 * "created_unix", "updated", "updated_unix"}. */
int tg_keyring_policy_create(tg_keyring *kr, const char *name, const tg_policy_opts *o,
                             json_t **out, tg_err *err);
/* Removals first, then additions; the limits and the never/always check on the result. */
int tg_keyring_policy_set(tg_keyring *kr, const char *name, const tg_policy_opts *o, json_t **out,
                          tg_err *err);
int tg_keyring_policy_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err);
/* Rows: {"name", "description", "no_defaults", "never_domain_count",
 * "never_category_count", "never_source_count", "always_source_count", "used_by",
 * "created", "updated"}. */
int tg_keyring_policy_list(tg_keyring *kr, json_t **out, tg_err *err);
/* Refused (TG_E_CONFLICT, naming it) while a proxy uses the policy. */
int tg_keyring_policy_delete(tg_keyring *kr, const char *name, tg_err *err);
/* The policy as a JSON file (a new string, newline-terminated): {"tlsgate_policy": 1,
 * "name", "description", "no_defaults", and the four lists}. */
int tg_keyring_policy_export(tg_keyring *kr, const char *name, char **out, size_t *outlen,
                             tg_err *err);
/* Takes back what export wrote (a policy show --json document too): every field checked
 * as on create; name overrides the file's; an existing policy of that name is refused
 * unless replace, which replaces its settings and lists and keeps the proxies on it. */
int tg_keyring_policy_import(tg_keyring *kr, const char *data, size_t len, const char *name,
                             int replace, json_t **out, tg_err *err);

/* The default never-decrypt list: domains known to pin certificates or carry regulated
 * traffic, built into the program (defaults.c), stored on first use, and replaceable.
 * {"source": "built-in" | "imported", "domain_count", "domains": [...]} */
int tg_keyring_defaults_show(tg_keyring *kr, json_t **out, tg_err *err);
/* As a text file, one domain a line after '#' comments (a new string). */
int tg_keyring_defaults_export(tg_keyring *kr, char **out, size_t *outlen, tg_err *err);
/* Replaces the stored list with a file of that form (one domain a line, '#' comments,
 * at most TG_POLICY_DOMAINS_MAX domains; a refusal names the line), in one transaction. */
int tg_keyring_defaults_import(tg_keyring *kr, const char *data, size_t len, json_t **out,
                               tg_err *err);
/* Back to the built-in list. */
int tg_keyring_defaults_reset(tg_keyring *kr, json_t **out, tg_err *err);

/* The domain-to-category map (categories.c): one category per domain. An import reads
 * lines "DOMAIN CATEGORY" ('#' comments, blank lines; a domain given twice: the last line
 * wins), at most TG_CATEGORY_LINES_MAX lines and TG_CATEGORY_FILE_MAX bytes, all in one
 * transaction, a refusal naming the line; it adds to the stored map, or replaces it with
 * replace; the map never holds more than TG_CATEGORY_LINES_MAX domains.
 * *out: {"lines", "mappings", "domain_count", "replaced"} */
int tg_keyring_categories_import(tg_keyring *kr, const char *data, size_t len, int replace,
                                 json_t **out, tg_err *err);
/* [{"category", "domains": N}] in category order. */
int tg_keyring_categories_list(tg_keyring *kr, json_t **out, tg_err *err);
/* Which category a host name (or "*." domain) falls in: its own mapping first, then the
 * nearest "*." parent's. {"name", "category": string or null, "matched": the mapping's
 * domain or null} */
int tg_keyring_category_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err);
/* Empties the map. {"removed": N} */
int tg_keyring_categories_clear(tg_keyring *kr, json_t **out, tg_err *err);
/* Every mapping, for the engine to build its own lookup (the map may hold 1,000,000, so it
 * is streamed rather than built as one document): fn gets (domain, category), borrowed
 * for the call, in no particular order; 0 goes on, non-zero stops, and a negative value is
 * returned as the call's result (fn leaves its sentence through arg). */
int tg_keyring_categories_each(tg_keyring *kr,
                               int (*fn)(void *arg, const char *domain, const char *category),
                               void *arg, tg_err *err);
/* A number that changes whenever the map changes (0: never filled, or emptied by a
 * factory reset), so that an engine reloads 1,000,000 mappings only when they moved. */
long long tg_keyring_categories_stamp(tg_keyring *kr);

/* ---- users, roles, tokens and the audit log (issue 10, M3; users.c, audit.c) ----
 * The keyring keeps the rules (names, password length and hashing, the last
 * Administrator, token expiry); a face decides who may call what with tg_role_allows on
 * the principal that tg_keyring_login or tg_keyring_token_check gave it, and records what
 * it did with tg_keyring_audit_add. Passwords arrive as bytes a face has read (never from
 * a command line); no secret is ever part of a document, an audit row or a sentence. */
#define TG_USER_NAME_MAX   64  /* bytes of printable UTF-8, no ':' (README "Users and audit") */
#define TG_PASSWORD_MIN    12  /* characters (UTF-8), or bytes when it is not UTF-8 */
#define TG_TOKEN_LABEL_MAX 64  /* bytes of printable UTF-8 */
#define TG_TOKENS_MAX      100 /* tokens of one user */
#define TG_TOKEN_TOUCH     60  /* seconds: last_used is written at most this often */
#define TG_FIRST_ADMIN     "admin"
typedef enum {
    TG_ROLE_ADMIN,      /* "Administrator" */
    TG_ROLE_CERTS,      /* "Certificate manager" */
    TG_ROLE_INSPECTION, /* "Inspection manager" */
    TG_ROLE_AUDITOR,    /* "Auditor" */
    TG_ROLES
} tg_role;
typedef enum {
    TG_CAP_READ,       /* read the configuration and objects: every role */
    TG_CAP_CERTS,      /* certificates, requests, CA certificates, trust stores */
    TG_CAP_INSPECTION, /* proxies, policies, categories */
    TG_CAP_USERS,      /* other users and their tokens, factory reset */
    TG_CAP_AUDIT       /* reading the audit log */
} tg_cap;
/* A role name without regard to case; ' ', '-' and '_' between its words are alike
 * ("certificate-manager"). TG_E_INVALID (field "role") naming the four otherwise. */
int tg_role_parse(const char *s, tg_role *out, tg_err *err);
/* The canonical name ("Certificate manager"); NULL for a value out of range. */
const char *tg_role_name(tg_role r);
/* Whether role r may do what cap stands for (README, "Users and audit": the table). */
int tg_role_allows(tg_role r, tg_cap cap);

/* Who a face acts for, as login or a token says. */
typedef struct tg_principal {
    char name[TG_USER_NAME_MAX + 1];
    tg_role role;
    int must_change;  /* the password is a one-time one: the face asks for a new one first */
    int64_t token_id; /* the token it came by, 0 for a password */
    int64_t group_id; /* the user's group (tg_keyring_may_change), 0 for none */
} tg_principal;

/* A user: name as TG_USER_NAME_MAX says, unique without regard to ASCII case; password of
 * TG_PASSWORD_MIN characters or more (at most TG_PASS_MAX - 1 bytes), hashed with scrypt.
 * *out (may be NULL) is the user's document as in list. */
int tg_keyring_user_add(tg_keyring *kr, const char *name, tg_role role, const unsigned char *pw,
                        size_t pwlen, json_t **out, tg_err *err);
/* Sets a new password and clears must_change. */
int tg_keyring_user_passwd(tg_keyring *kr, const char *name, const unsigned char *pw, size_t pwlen,
                           tg_err *err);
/* The last enabled Administrator can be neither deleted, demoted nor disabled
 * (TG_E_CONFLICT saying so). */
int tg_keyring_user_delete(tg_keyring *kr, const char *name, tg_err *err);
int tg_keyring_user_set_role(tg_keyring *kr, const char *name, tg_role role, json_t **out,
                             tg_err *err);
/* A disabled user can neither log in nor use a token; it keeps its tokens. */
int tg_keyring_user_set_disabled(tg_keyring *kr, const char *name, int disabled, json_t **out,
                                 tg_err *err);
/* [{"name", "role", "group", "must_change", "disabled", "token_count", "created",
 * "created_unix", "changed", "changed_unix"}] in name order ("group": null for none);
 * show: one of them. */
int tg_keyring_user_list(tg_keyring *kr, json_t **out, tg_err *err);
int tg_keyring_user_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err);
/* The first administrator: when no user exists, creates TG_FIRST_ADMIN (Administrator,
 * must_change) with a random one-time password, handed over once in *password (the
 * caller's to tg_free_secret; NULL when users exist already, and nothing is done). */
int tg_keyring_first_admin(tg_keyring *kr, char **password, tg_err *err);
/* Password login: TG_E_PASSWORD "wrong user name or password" alike for an unknown user,
 * a disabled one and a wrong password, after the same work. */
int tg_keyring_login(tg_keyring *kr, const char *user, const unsigned char *pw, size_t pwlen,
                     tg_principal *who, tg_err *err);

/* The user as it is now, for a face that keeps a session by name (the console): its
 * role and must_change from the store, TG_E_PASSWORD ("the session has ended") when it
 * was deleted or disabled meanwhile. */
int tg_keyring_principal(tg_keyring *kr, const char *name, tg_principal *who, tg_err *err);

/* A new API token for user: its text once in *token (the caller's to tg_free_secret), only
 * its SHA-256 stored; days 0: it never expires, else 1..TG_DAYS_MAX. *out (may be NULL):
 * the token's row as in token list. */
int tg_keyring_token_create(tg_keyring *kr, const char *user, const char *label, int days,
                            char **token, json_t **out, tg_err *err);
/* A presented token: TG_E_PASSWORD "the token is not valid" alike for one that is unknown,
 * revoked, expired or whose user is disabled. last_used is written at most once a
 * TG_TOKEN_TOUCH seconds. */
int tg_keyring_token_check(tg_keyring *kr, const char *token, tg_principal *who, tg_err *err);
/* [{"id", "label", "created", "created_unix", "last_used", "last_used_unix", "expires",
 * "expires_unix", "expired"}] ("last_used"/"expires" null: never), never the token. */
int tg_keyring_token_list(tg_keyring *kr, const char *user, json_t **out, tg_err *err);
int tg_keyring_token_revoke(tg_keyring *kr, const char *user, int64_t id, tg_err *err);

/* User groups (README "Users and audit", "Groups"): a group limits which proxies and
 * policies its users may change. As in the reference, a group allows everything but what
 * it denies, objects made later included; a denial names its object by kind ("proxy",
 * "policy") and name, so it may name one not made yet and outlives a deletion. A user is
 * in one group or none (none: unlimited). Group names are checked as friendly names and
 * unique without regard to ASCII case. The document: {"name", "created", "created_unix",
 * "denied": {"proxies": [...], "policies": [...]}, "users": [...]} (names in order). */
int tg_keyring_group_create(tg_keyring *kr, const char *name, json_t **out, tg_err *err);
/* Its users are left in no group. */
int tg_keyring_group_delete(tg_keyring *kr, const char *name, tg_err *err);
int tg_keyring_group_list(tg_keyring *kr, json_t **out, tg_err *err);
int tg_keyring_group_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err);
/* deny 1: the group's users may no longer change kind/name; 0: they may again. Either is
 * a no-op when already so. *out (may be NULL): the group's document. */
int tg_keyring_group_deny(tg_keyring *kr, const char *group, const char *kind, const char *name,
                          int deny, json_t **out, tg_err *err);
/* Puts user in group (NULL: in none); *out (may be NULL): the user's document. */
int tg_keyring_user_set_group(tg_keyring *kr, const char *user, const char *group, json_t **out,
                              tg_err *err);
/* 0 when who may change the object kind/name as far as its group goes (roles are the
 * face's tg_role_allows), else TG_E_CONFLICT (field "name") "the group G of user U may not
 * change the proxy 'X'". */
int tg_keyring_may_change(tg_keyring *kr, const tg_principal *who, const char *kind,
                          const char *name, tg_err *err);

/* The audit log: who did what to which object, from where, and how it ended. */
#define TG_AUDIT_KEEP       100000 /* rows kept; older ones are deleted as new ones come */
#define TG_AUDIT_DETAIL_MAX 4096   /* bytes of a row's detail JSON (more: {"truncated": N}) */
#define TG_AUDIT_TEXT_MAX   256    /* bytes of actor, source, action, object each */
typedef struct tg_audit_entry {
    long long time;       /* unix seconds; 0: now */
    const char *actor;    /* a user's name, or "cli:LOGIN" */
    const char *source;   /* "cli", "api 127.0.0.1" */
    const char *action;   /* "cert.create", "user.add" */
    const char *object;   /* what it was done to (a name), or NULL */
    int outcome;          /* 0 or the TG_E_… code it failed with */
    const json_t *detail; /* NULL, or a JSON value without secrets (borrowed) */
} tg_audit_entry;
/* Appends one row in a transaction of its own; text is cleaned (controls become U+FFFD)
 * and cut to TG_AUDIT_TEXT_MAX bytes. */
int tg_keyring_audit_add(tg_keyring *kr, const tg_audit_entry *e, tg_err *err);
typedef struct tg_audit_filter {
    long long since;  /* unix seconds: rows at or after; 0: all */
    long long limit;  /* 1..TG_AUDIT_KEEP; 0: 100 */
    long long offset; /* rows to skip (newest first) */
} tg_audit_filter;
/* [{"id", "time", "time_unix", "actor", "source", "action", "object", "outcome",
 * "detail"}] newest first ("outcome": tg_outcome_name of the code). */
int tg_keyring_audit_list(tg_keyring *kr, const tg_audit_filter *f, json_t **out, tg_err *err);
/* A time as RFC 3339 ("2025-01-31T12:00:00Z", an offset "+01:00", or a date alone) or unix
 * seconds into *out; TG_E_INVALID naming field otherwise. */
int tg_keyring_time_parse(const char *s, const char *field, long long *out, tg_err *err);
/* The word for an outcome: "ok", "usage", "invalid", "not found", "conflict", "password",
 * "store", "io", "internal". */
const char *tg_outcome_name(int rc);

/* Friendly names: 1-128 bytes of printable UTF-8, no leading or trailing space. */
int tg_keyring_name_check(const char *name, tg_err *err);

/* ---- enrollment (issue 11; identity.c, enrollca.c) ----
 * The appliance's identity (E1–E3): a key made here and a certificate whose CN is the
 * device id, kept as the certificate TG_IDENTITY_NAME, never exported; and tlsgate as
 * the enrollment CA of a fleet (E4): its CA, one-time bootstrap secrets, and every
 * request received with what became of it. The protocol (EST) is src/enroll's. */
#define TG_IDENTITY_NAME          "appliance-key"
#define TG_IDENTITY_STATE_FILE    "identity-state.json"
#define TG_URL_MAX                2048 /* bytes of an enrollment or ACME URL */
#define TG_DEVICE_ID_MAX          64   /* bytes of a device id (the identity's CN) */
#define TG_BOOTSTRAP_SECRET_MAX   256  /* bytes of a bootstrap secret */
#define TG_ENROLL_CA_NAME         "enrollment-ca"
#define TG_DEVICE_DAYS_DEFAULT    1825 /* five years (E4) */
#define TG_ENROLL_CA_DAYS_DEFAULT 3650
#define TG_SECRET_DAYS_DEFAULT    7  /* a bootstrap secret is good for a week, once */
#define TG_ENROLL_RETRY_AFTER     60 /* seconds a device waits on a pending approval */
#define TG_ENROLL_RETRY_AFTER_MAX 3600
#define TG_ENROLL_DEVICES_MAX     100000 /* requests kept by the enrollment CA */

typedef struct tg_identity_conf {
    const char *server;          /* https:// URL of the EST server (its /.well-known/est) */
    const char *ca_pem;          /* anchors for its TLS certificate, PEM; NULL: the system's */
    const char *serial;          /* device id override; NULL: the hardware's */
    const unsigned char *secret; /* one-time bootstrap secret; NULL: none */
    size_t secretlen;
} tg_identity_conf;
/* Saves the settings (and the secret, sealed) in one transaction. */
int tg_keyring_identity_configure(tg_keyring *kr, const tg_identity_conf *c, tg_err *err);
typedef struct tg_identity_settings {
    char *server, *ca_pem, *serial;
    unsigned char *secret; /* NULL: none; wiped by clear */
    size_t secretlen;
    long long changed;
} tg_identity_settings;
/* TG_E_NOTFOUND (with a sentence) when none are configured. */
int tg_keyring_identity_settings(tg_keyring *kr, tg_identity_settings *out, tg_err *err);
void tg_identity_settings_clear(tg_identity_settings *s);
/* The bootstrap secret is spent: it is removed. */
int tg_keyring_identity_forget_secret(tg_keyring *kr, tg_err *err);
/* The request to send (PKCS#10 DER, caller frees): the pending one when its CN is
 * device_id and fresh is 0, else a new key (EC P-256, never exportable) and request. */
int tg_keyring_identity_request(tg_keyring *kr, const char *device_id, int fresh,
                                unsigned char **csr_der, size_t *len, tg_err *err);
/* Installs an issued certificate for the pending request's key (the CA certificates in
 * chain are stored too), replacing the identity, in one transaction. *out (may be NULL):
 * as show. */
int tg_keyring_identity_install(tg_keyring *kr, tg_cert *leaf, tg_cert *const *chain, size_t nchain,
                                json_t **out, tg_err *err);
/* {"certificate": bool, "device_id", "subject", "issuer", "serial", "sha256", "status",
 * "not_before", "not_after", "renew_at" (two thirds of the lifetime), "pending_request":
 * subject or null} */
int tg_keyring_identity_show(tg_keyring *kr, json_t **out, tg_err *err);
/* The latest attempt's state, a JSON file beside the store written by whoever tried
 * (serve's enrollment thread or the CLI); NULL when there is none. */
int tg_keyring_identity_state_write(tg_keyring *kr, json_t *state, tg_err *err);
json_t *tg_keyring_identity_state(tg_keyring *kr);

/* The enrollment CA. init makes its CA (TG_ENROLL_CA_NAME, a self-signed signing CA
 * with a non-exportable key) and settings; a second init is TG_E_CONFLICT. */
typedef struct tg_enrollca_opts {
    const char *cn;       /* NULL: "tlsgate enrollment CA" */
    const char *keyspec;  /* NULL: ec:p384 */
    int days;             /* the CA's; 0: TG_ENROLL_CA_DAYS_DEFAULT */
    int device_days;      /* devices'; 0: TG_DEVICE_DAYS_DEFAULT (set: keep when 0) */
    const char *approval; /* "secret" (bootstrap secrets only) or "manual" (else a
                           * request waits for an approval); NULL: secret (set: keep) */
    int retry_after;      /* seconds a pending device is told to wait, 1..MAX; 0: keep */
} tg_enrollca_opts;
/* The Retry-After a pending request is answered with (seconds). */
int tg_keyring_enrollca_retry_after(tg_keyring *kr);
int tg_keyring_enrollca_init(tg_keyring *kr, const tg_enrollca_opts *o, json_t **out, tg_err *err);
int tg_keyring_enrollca_set(tg_keyring *kr, const tg_enrollca_opts *o, json_t **out, tg_err *err);
/* {"ca", "subject", "sha256", "not_after", "device_days", "approval", "retry_after",
 * "devices": [...], "secrets": [...]} */
int tg_keyring_enrollca_show(tg_keyring *kr, json_t **out, tg_err *err);
/* A new one-time bootstrap secret (text in *secret, the caller's to tg_free_secret; only
 * its SHA-256 kept), good for days (0: TG_SECRET_DAYS_DEFAULT; at most 365). */
int tg_keyring_enrollca_secret(tg_keyring *kr, const char *label, int days, char **secret,
                               json_t **out, tg_err *err);
/* [{"id", "device", "state", "serial", "not_after", "requested", "decided", "source",
 * "reason"}] */
int tg_keyring_enrollca_list(tg_keyring *kr, json_t **out, tg_err *err);
/* Issues a pending request (by id); TG_E_CONFLICT when it is not pending. */
int tg_keyring_enrollca_approve(tg_keyring *kr, int64_t id, const char *actor, json_t **out,
                                tg_err *err);
/* Rejects a pending request, or revokes every issued certificate of a device: what is an
 * id, a device id or a certificate serial. A revoked certificate may not re-enroll. */
int tg_keyring_enrollca_revoke(tg_keyring *kr, const char *what, const char *reason,
                               const char *actor, json_t **out, tg_err *err);
/* The CA certificates a device should trust (/cacerts), as a PKCS#7 (DER). */
int tg_keyring_enrollca_cacerts(tg_keyring *kr, unsigned char **p7, size_t *len, tg_err *err);
/* One EST request: issue now (0, *cert the DER), pending (TG_ENROLL_PENDING), or refused:
 * TG_E_PASSWORD (no valid authorisation), TG_E_INVALID (a bad request), TG_E_CONFLICT
 * (rejected, revoked, or a re-enrollment for another device). Audited either way. */
#define TG_ENROLL_PENDING 1
typedef struct tg_est_auth {
    const unsigned char *secret; /* HTTP basic password: a bootstrap secret, or NULL */
    size_t secretlen;
    const tg_cert *client; /* the TLS client certificate, or NULL */
    int reenroll;          /* /simplereenroll: the client certificate is required */
    const char *source;    /* the peer's address, for the record */
} tg_est_auth;
int tg_keyring_enrollca_enroll(tg_keyring *kr, const unsigned char *csr, size_t csrlen,
                               const tg_est_auth *a, unsigned char **cert, size_t *certlen,
                               tg_err *err);

#include "verify.h"

/* ---- ACME (issue 11, E5): what src/enroll's client keeps (acme.c) ----
 * Accounts and certificates are documents (docs/json.md, "ACME"); the keyring keeps
 * them whole and adds name, account and times when it shows them. */
#define TG_ACME_DOC_MAX         65536 /* bytes of one stored document */
#define TG_ACME_CHALLENGE_STALE 3600  /* seconds after which a challenge left behind goes */
/* The name rule of ACME accounts (account 1) and of certificates ACME keeps (0). */
int tg_keyring_acme_name_check(int account, const char *name, tg_err *err);
/* A new account: key (EC P-256, sealed, never exportable) and doc {directory,
 * directory_ca, url, email, eab_kid, ...}. TG_E_CONFLICT when the name is taken. */
int tg_keyring_acme_account_add(tg_keyring *kr, const char *name, const tg_key *key,
                                const json_t *doc, tg_err *err);
int tg_keyring_acme_account_update(tg_keyring *kr, const char *name, const json_t *doc,
                                   tg_err *err);
/* The document (with name, times and how many certificates use it); the key too, unsealed,
 * when key is non-NULL. */
int tg_keyring_acme_account_get(tg_keyring *kr, const char *name, json_t **doc, tg_key **key,
                                tg_err *err);
int tg_keyring_acme_account_list(tg_keyring *kr, json_t **out, tg_err *err);
/* Refused while certificates use the account. */
int tg_keyring_acme_account_delete(tg_keyring *kr, const char *name, tg_err *err);
/* Stores the ACME state of certificate name (create: refused when ACME keeps it already;
 * else inserted or replaced) under account. */
int tg_keyring_acme_cert_put(tg_keyring *kr, const char *name, const char *account,
                             const json_t *doc, int create, tg_err *err);
/* Sets the members of changes in NAME's stored document, read and written in one
 * transaction: a job that learnt one thing (serve's ARI look) does not write back a copy
 * read before another process changed the rest (a renewal's failure count). */
int tg_keyring_acme_cert_merge(tg_keyring *kr, const char *name, const json_t *changes,
                               tg_err *err);
/* The stored document (times as unix seconds, 0: none) with name and account added. */
int tg_keyring_acme_cert_get(tg_keyring *kr, const char *name, json_t **doc, tg_err *err);
/* The document the faces show (acme show; docs/json.md "ACME"). */
int tg_keyring_acme_cert_show(tg_keyring *kr, const char *name, json_t **doc, tg_err *err);
int tg_keyring_acme_cert_list(tg_keyring *kr, json_t **out, tg_err *err);
/* ACME stops keeping name (the certificate itself stays in the keyring). */
int tg_keyring_acme_cert_delete(tg_keyring *kr, const char *name, tg_err *err);
/* The keyring's certificate called name now (TG_E_NOTFOUND when none). */
int tg_keyring_acme_current(tg_keyring *kr, const char *name, tg_cert **out, tg_err *err);
/* A new key (EC P-256, never exportable) and request for domains (CN the first), kept as
 * the request "NAME acme-order" until tg_keyring_acme_install; *pem: the CSR. */
int tg_keyring_acme_csr(tg_keyring *kr, const char *name, const char *const *domains, size_t n,
                        char **pem, tg_err *err);
void tg_keyring_acme_csr_discard(tg_keyring *kr, const char *name);
/* The issued chain (PEM) enters the keyring as name: imported, or put in name's place
 * (K7) when name exists; *out as for import. */
int tg_keyring_acme_install(tg_keyring *kr, const char *name, const char *chain_pem, size_t len,
                            json_t **out, tg_err *err);
/* A pending challenge for serve: type "http-01" / "dns-01" (the key authorization kept) or
 * "tls-alpn-01" (a validation certificate and key made and sealed for domain). */
int tg_keyring_acme_challenge_add(tg_keyring *kr, const char *type, const char *token,
                                  const char *domain, const char *keyauth, tg_err *err);
int tg_keyring_acme_challenge_remove(tg_keyring *kr, const char *token, tg_err *err);
/* serve: the key authorization of an http-01 token into buf (TG_E_NOTFOUND: none). */
int tg_keyring_acme_http_answer(tg_keyring *kr, const char *token, char *buf, size_t size);
/* serve: the tls-alpn-01 certificate and key for domain (TG_E_NOTFOUND: none pending). */
int tg_keyring_acme_alpn_get(tg_keyring *kr, const char *domain, tg_cert **cert, tg_key **key,
                             tg_err *err);

#endif
