/*
 * store.h — the face of src/store: persistence of keys, certificates, requests and
 * references in one SQLite database (WAL), with private keys sealed (AES-256-GCM).
 *
 * The store knows bytes and the metadata it is handed; it knows nothing of X.509.
 * Writes happen between tg_store_begin and tg_store_commit; every keyring operation
 * is exactly one such transaction. Layout: docs/store.md.
 */
#ifndef TG_STORE_H
#define TG_STORE_H

#include "../base/base.h"

#include <stdint.h>

typedef struct tg_store tg_store;

/* Opens (creating when missing) the store in directory home: store.db, master.key. */
int tg_store_open(const char *home, tg_store **out, tg_err *err);
/* The same for a store that must exist: nothing is created (no directory, no store.db);
 * without one, TG_E_NOTFOUND with the field "home". */
int tg_store_open_existing(const char *home, tg_store **out, tg_err *err);
void tg_store_close(tg_store *st);
int tg_store_begin(tg_store *st, tg_err *err);
int tg_store_commit(tg_store *st, tg_err *err);
void tg_store_rollback(tg_store *st);
/* Settings (small text values): "initialised", … */
int tg_store_setting_get(tg_store *st, const char *k, char *buf, size_t bufsize, tg_err *err);
int tg_store_setting_set(tg_store *st, const char *k, const char *v, tg_err *err);
/* Deletes every object (K12), users and their tokens included; the schema and the audit
 * log stay (a reset is itself a change to account for). After the commit the WAL is
 * truncated. */
int tg_store_wipe(tg_store *st, tg_err *err);
/* In a transaction: a new store id, data key and master key (factory reset). The new
 * master key replaces master.key when the transaction commits and is removed if it rolls
 * back; the old ones are no longer written anywhere. */
int tg_store_rekey(tg_store *st, tg_err *err);
const char *tg_store_path(const tg_store *st);

/* ---- keys (sealed) ---- */
typedef struct tg_store_key {
    int64_t id;
    unsigned char spki_sha256[32];
    char descr[32];
    int exportable;
} tg_store_key;
/* Seals priv (PKCS#8 DER) and inserts it; id is set. */
int tg_store_key_add(tg_store *st, tg_store_key *k, const unsigned char *priv, size_t privlen,
                     tg_err *err);
int tg_store_key_get(tg_store *st, int64_t id, tg_store_key *out, tg_err *err);
int tg_store_key_find(tg_store *st, const unsigned char spki_sha256[32], tg_store_key *out,
                      tg_err *err);
/* Unseals the key: *priv is a secret for the caller to tg_free_secret. Fails with
 * TG_E_STORE when the row was tampered with. */
int tg_store_key_unseal(tg_store *st, int64_t id, unsigned char **priv, size_t *len, tg_err *err);
/* Seals priv again into row id (same uid and public key): the repair of a key row whose
 * sealed blob no longer opens, from the key imported again. */
int tg_store_key_reseal(tg_store *st, int64_t id, const unsigned char *priv, size_t privlen,
                        tg_err *err);
/* Marks the key non-exportable (K8: never the reverse). */
int tg_store_key_forbid_export(tg_store *st, int64_t id, tg_err *err);
/* Deletes the key if no certificate or request uses it any more. */
int tg_store_key_gc(tg_store *st, int64_t id, tg_err *err);

/* ---- certificates ---- */
typedef struct tg_store_cert {
    int64_t id;
    char *name;
    char status[24]; /* chain status (C2), computed by the keyring */
    unsigned char *der;
    size_t derlen;
    char sha256[65];
    unsigned char spki_sha256[32];
    int64_t key_id, predecessor_id, request_id; /* 0 = none */
    char *subject, *subject_cn, *issuer, *issuer_cn, *serial, *key_desc, *sigalg;
    char *san_list;    /* the keyring's JSON list of SANs; NULL: not yet filled (see db.c) */
    char *chain_ids;   /* the built chain as the keyring stores it (see db.c); NULL: not yet */
    char key_type[16]; /* "RSA", "EC", … */
    int key_bits;
    long long not_before, not_after, created;
    int is_ca, self_signed, protected_;
} tg_store_cert;
void tg_store_cert_clear(tg_store_cert *c);
/* Inserts; fails with TG_E_CONFLICT on a duplicate name or fingerprint. */
int tg_store_cert_add(tg_store *st, tg_store_cert *c, tg_err *err);
int tg_store_cert_get(tg_store *st, int64_t id, tg_store_cert *out, tg_err *err);
int tg_store_cert_by_name(tg_store *st, const char *name, tg_store_cert *out, tg_err *err);
int tg_store_cert_by_sha256(tg_store *st, const char *sha256, tg_store_cert *out, tg_err *err);
int tg_store_name_taken(tg_store *st, const char *name);
/* The newest (latest notAfter) certificate with this public key, if any. */
int tg_store_cert_latest_for_spki(tg_store *st, const unsigned char spki[32], tg_store_cert *out,
                                  tg_err *err);
int tg_store_cert_successor(tg_store *st, int64_t id, tg_store_cert *out, tg_err *err);
int tg_store_cert_set_key(tg_store *st, int64_t id, int64_t key_id, tg_err *err);
int tg_store_cert_rename(tg_store *st, int64_t id, const char *name, tg_err *err);
int tg_store_cert_delete(tg_store *st, int64_t id, tg_err *err);
/* Calls fn for every certificate (only_ca > 0: only CA certificates; only_ca < 0: only
 * those that are not CAs; only those with notAfter < before when before > 0) in name
 * order, DER omitted; stops when fn returns non-zero. */
typedef int (*tg_store_cert_fn)(const tg_store_cert *c, void *arg);
int tg_store_cert_each(tg_store *st, int only_ca, long long before, tg_store_cert_fn fn, void *arg,
                       tg_err *err);
/* The certificates table as a list shows it: only_ca and before as above, query a
 * page's search (NULL: none), in name order or soonest notAfter first (by_expiry: the
 * expiry check's order, given by the database so that a face can stream it);
 * *unfiltered (may be NULL) counts the rows before the search. */
int tg_store_cert_list(tg_store *st, int only_ca, long long before, const char *query,
                       int by_expiry, tg_store_cert_fn fn, void *arg, long long *unfiltered,
                       tg_err *err);
/* One page of the certificates table, for a face that must not hold every row at once
 * (the API, the console: 100,000 certificates are not one answer). only_ca and before
 * as above; after: only names sorting after it (keyset paging, NULL: from the start);
 * query: names, common names or SAN values containing it, ASCII letters without regard
 * to case (NULL: every row); at most limit rows, in name order. *total counts the rows
 * the filters select on every page. */
typedef struct tg_store_page {
    int only_ca;
    long long before;
    const char *after, *query;
    int limit;
} tg_store_page;
int tg_store_cert_page(tg_store *st, const tg_store_page *p, tg_store_cert_fn fn, void *arg,
                       long long *total, tg_err *err);
/* Every certificate with its DER, in insertion order (for recomputing chain status). */
int tg_store_cert_each_with_der(tg_store *st, tg_store_cert_fn fn, void *arg, tg_err *err);
/* Certificates whose subject is the given DN (candidates for issuers), DER included. */
int tg_store_cert_each_subject(tg_store *st, const char *subject, tg_store_cert_fn fn, void *arg,
                               tg_err *err);
/* The ids of every certificate with this public key, newest first (*ids freed by the
 * caller). */
int tg_store_cert_ids_for_spki(tg_store *st, const unsigned char spki[32], int64_t **ids, size_t *n,
                               tg_err *err);

/* Certificates that can be served (a key is held), with what the name index needs,
 * strings borrowed for the duration of the call. */
typedef struct tg_store_servable {
    int64_t id;
    const char *san_list, *cn, *key_type;
    long long not_before, not_after;
} tg_store_servable;
typedef int (*tg_store_servable_fn)(const tg_store_servable *s, void *arg);
int tg_store_servable_each(tg_store *st, tg_store_servable_fn fn, void *arg, tg_err *err);
/* Servable certificates whose not_after is before `before`, soonest first (name borrowed). */
typedef int (*tg_store_expiring_fn)(int64_t id, const char *name, long long not_after, void *arg);
int tg_store_servable_expiring(tg_store *st, long long before, tg_store_expiring_fn fn, void *arg,
                               tg_err *err);
/* Every certificate counted by (chain status, servable, validity at now: 0 valid, 1 not yet
 * valid, 2 expired): fn once per group. */
typedef int (*tg_store_tally_fn)(const char *status, int servable, int validity, long long n,
                                 void *arg);
int tg_store_cert_tally(tg_store *st, long long now, tg_store_tally_fn fn, void *arg, tg_err *err);
/* Changes whenever another connection commits (PRAGMA data_version). */
long long tg_store_data_version(tg_store *st);

/* ---- requests ---- */
typedef struct tg_store_req {
    int64_t id;
    char *name;
    int64_t key_id, cert_id;                   /* cert_id 0 = pending */
    char *pem, *subject, *san_list, *key_desc; /* san_list: as for certificates */
    int signing;
    long long created;
} tg_store_req;
void tg_store_req_clear(tg_store_req *r);
int tg_store_req_add(tg_store *st, tg_store_req *r, tg_err *err);
int tg_store_req_get(tg_store *st, int64_t id, tg_store_req *out, tg_err *err);
int tg_store_req_by_name(tg_store *st, const char *name, tg_store_req *out, tg_err *err);
int tg_store_req_pending_for_key(tg_store *st, int64_t key_id, tg_store_req *out, tg_err *err);
int tg_store_req_set_cert(tg_store *st, int64_t id, int64_t cert_id, tg_err *err);
int tg_store_req_delete(tg_store *st, int64_t id, tg_err *err);
typedef int (*tg_store_req_fn)(const tg_store_req *r, void *arg);
int tg_store_req_each(tg_store *st, tg_store_req_fn fn, void *arg, tg_err *err);

/* ---- references: who uses a certificate by role ("default certificate"; proxies have
 * their own columns, below) ---- */
int tg_store_ref_set(tg_store *st, const char *holder, int64_t cert_id, tg_err *err);
/* cert_id of holder, or 0 */
int64_t tg_store_ref_get(tg_store *st, const char *holder);
/* The first holder that references cert_id (into buf), or 0 when none does. */
int tg_store_ref_holder(tg_store *st, int64_t cert_id, char *buf, size_t bufsize);
int tg_store_ref_move(tg_store *st, int64_t from, int64_t to, tg_err *err);
/* Records a certificate's chain status and its built chain (ids as db.c describes). */
int tg_store_cert_set_status(tg_store *st, int64_t id, const char *status, const char *chain_ids,
                             tg_err *err);
/* Whether some certificate's chain_ids is still NULL (rows from before schema 4). */
int tg_store_chain_unfilled(tg_store *st);
/* Whether id is a member of some certificate's stored chain (1 as well when unsure). */
int tg_store_cert_in_chains(tg_store *st, int64_t id);

/* What serve needs of one certificate, read in one query: name, DER, key row, and the DER
 * of the members of its stored chain that still exist, in order (it stops at the first
 * that does not: a shorter chain, never another certificate's). */
#define TG_STORE_CHAIN_MAX 8
typedef struct tg_store_member {
    int64_t id; /* as in chain_ids: > 0 certs.id, < 0 a default CA */
    unsigned char *der;
    size_t derlen;
} tg_store_member;
typedef struct tg_store_served {
    char *name;
    int64_t key_id;
    unsigned char *der;
    size_t derlen;
    tg_store_member chain[TG_STORE_CHAIN_MAX];
    size_t nchain;
} tg_store_served;
int tg_store_served_get(tg_store *st, int64_t id, tg_store_served *out, tg_err *err);
void tg_store_served_clear(tg_store_served *r);

/* ---- rows from before schema 3: facts the keyring fills from the DER or the CSR ---- */
/* Ids of certificates (requests when requests=1) whose san_list is still NULL. */
int tg_store_unfilled(tg_store *st, int requests, int64_t **ids, size_t *n, tg_err *err);
int tg_store_cert_set_facts(tg_store *st, int64_t id, const char *san_list, const char *key_type,
                            int key_bits, tg_err *err);
int tg_store_req_set_sans(tg_store *st, int64_t id, const char *san_list, tg_err *err);

/* ---- trust stores (C4) ---- */
typedef struct tg_store_ts {
    int64_t id;
    char *name, *description;
    int include_defaults;
    long long created;
} tg_store_ts;
void tg_store_ts_clear(tg_store_ts *t);
int tg_store_ts_add(tg_store *st, tg_store_ts *t, tg_err *err);
int tg_store_ts_by_name(tg_store *st, const char *name, tg_store_ts *out, tg_err *err);
int tg_store_ts_delete(tg_store *st, int64_t id, tg_err *err);
typedef int (*tg_store_ts_fn)(const tg_store_ts *t, void *arg);
int tg_store_ts_each(tg_store *st, tg_store_ts_fn fn, void *arg, tg_err *err);
/* Adds (idempotently) or removes one CA certificate of a trust store. */
int tg_store_ts_add_ca(tg_store *st, int64_t ts, int64_t cert_id, tg_err *err);
int tg_store_ts_remove_ca(tg_store *st, int64_t ts, int64_t cert_id, tg_err *err);
/* The trust store's CA certificates (DER included), in name order. */
int tg_store_ts_cas_each(tg_store *st, int64_t ts, tg_store_cert_fn fn, void *arg, tg_err *err);
/* The first trust store holding cert_id (into buf), or 0 when none does. */
int tg_store_ts_holding(tg_store *st, int64_t cert_id, char *buf, size_t bufsize);

/* ---- inspection proxies (issue 9): references as columns, the rest as the keyring's JSON ---- */
typedef struct tg_store_proxy {
    int64_t id;
    char *name;
    char kind[8];                           /* "client" or "server" */
    int64_t signing_cert_id, truststore_id; /* 0 = none */
    int64_t policy_id;                      /* a decryption policy; 0 = none */
    char *signing_name, *truststore_name;   /* read only: their names now (NULL: none) */
    char *policy_name;                      /* read only, like them */
    char *config;                           /* the keyring's JSON text, kept as it is */
    long long created, updated;
} tg_store_proxy;
void tg_store_proxy_clear(tg_store_proxy *p);
/* Inserts (created and updated: now; id set); TG_E_CONFLICT on a duplicate name. */
int tg_store_proxy_add(tg_store *st, tg_store_proxy *p, tg_err *err);
/* Writes row p->id's references (policy included) and config; updated: now. */
int tg_store_proxy_update(tg_store *st, tg_store_proxy *p, tg_err *err);
int tg_store_proxy_by_name(tg_store *st, const char *name, tg_store_proxy *out, tg_err *err);
int tg_store_proxy_delete(tg_store *st, int64_t id, tg_err *err);
/* Every proxy (of kind, or all when kind is NULL) in name order; stops when fn returns
 * non-zero. */
typedef int (*tg_store_proxy_fn)(const tg_store_proxy *p, void *arg);
int tg_store_proxy_each(tg_store *st, const char *kind, tg_store_proxy_fn fn, void *arg,
                        tg_err *err);
/* The first proxy (by name) whose signing certificate is cert_id, or whose trust store is
 * ts_id; TG_E_NOTFOUND when none is. */
int tg_store_proxy_by_cert(tg_store *st, int64_t cert_id, tg_store_proxy *out, tg_err *err);
int tg_store_proxy_by_truststore(tg_store *st, int64_t ts_id, tg_store_proxy *out, tg_err *err);
/* The first proxy (by name) whose decryption policy is policy_id; TG_E_NOTFOUND if none. */
int tg_store_proxy_by_policy(tg_store *st, int64_t policy_id, tg_store_proxy *out, tg_err *err);
/* Points every proxy that signs with certificate from at certificate to (K5, K7). */
int tg_store_proxy_move_signing(tg_store *st, int64_t from, int64_t to, tg_err *err);
/* A server proxy's certificates (schema 11), in the order given. set replaces the list
 * whole; get hands over *ids (malloc'd, *n may be 0). */
int tg_store_proxy_certs_set(tg_store *st, int64_t proxy_id, const int64_t *ids, size_t n,
                             tg_err *err);
int tg_store_proxy_certs_get(tg_store *st, int64_t proxy_id, int64_t **ids, size_t *n, tg_err *err);
/* The first server proxy (by name) holding certificate cert_id; TG_E_NOTFOUND if none. */
int tg_store_proxy_by_server_cert(tg_store *st, int64_t cert_id, tg_store_proxy *out, tg_err *err);
/* Moves every server proxy's reference from certificate from to certificate to (K5, K7);
 * a proxy that holds both keeps the new one at its own place (the old one's row goes). */
int tg_store_proxy_certs_move(tg_store *st, int64_t from, int64_t to, tg_err *err);

/* ---- decryption policies (issue 9, item 5): a row each, their four lists as child rows
 * (policies.c) ---- */
typedef struct tg_store_policy {
    int64_t id;
    char *name, *description;
    int no_defaults; /* 1: the default never-decrypt list is not part of it */
    long long created, updated;
} tg_store_policy;
void tg_store_policy_clear(tg_store_policy *p);
/* Inserts (created and updated: now; id set); TG_E_CONFLICT on a duplicate name. */
int tg_store_policy_add(tg_store *st, tg_store_policy *p, tg_err *err);
/* Writes row p->id's description and no_defaults; updated: now. */
int tg_store_policy_update(tg_store *st, tg_store_policy *p, tg_err *err);
int tg_store_policy_by_name(tg_store *st, const char *name, tg_store_policy *out, tg_err *err);
int tg_store_policy_get(tg_store *st, int64_t id, tg_store_policy *out, tg_err *err);
/* Deletes the policy and its lists (refused by the foreign key while a proxy uses it). */
int tg_store_policy_delete(tg_store *st, int64_t id, tg_err *err);
typedef int (*tg_store_policy_fn)(const tg_store_policy *p, void *arg);
/* Every policy in name order; stops when fn returns non-zero. */
int tg_store_policy_each(tg_store *st, tg_store_policy_fn fn, void *arg, tg_err *err);
/* The lists: list is "never_domains", "never_categories", "never_sources" or
 * "always_sources" (the schema refuses others). Adding a value the list holds already
 * changes nothing (*added, if non-NULL, says whether it was new); removing one it does
 * not hold is TG_E_NOTFOUND without a sentence. */
int tg_store_policy_entry_add(tg_store *st, int64_t policy, const char *list, const char *value,
                              int *added, tg_err *err);
int tg_store_policy_entry_remove(tg_store *st, int64_t policy, const char *list, const char *value,
                                 tg_err *err);
int tg_store_policy_entries_clear(tg_store *st, int64_t policy, tg_err *err);
int tg_store_policy_entry_count(tg_store *st, int64_t policy, const char *list, long long *n,
                                tg_err *err);
/* fn gets each value (borrowed for the call); 0 goes on, a positive value stops, a
 * negative one stops and is returned (its sentence is fn's to leave, through arg). */
typedef int (*tg_store_text_fn)(const char *value, void *arg);
/* A list's values in byte order. */
int tg_store_policy_entries_each(tg_store *st, int64_t policy, const char *list,
                                 tg_store_text_fn fn, void *arg, tg_err *err);
/* The first value that lists a and b of the policy both hold (into buf), or 0 if none. */
int tg_store_policy_entry_shared(tg_store *st, int64_t policy, const char *a, const char *b,
                                 char *buf, size_t bufsize);

/* ---- the default never-decrypt domains (the keyring seeds and replaces them) ---- */
int tg_store_defdomains_clear(tg_store *st, tg_err *err);
/* Adds one (a domain held already changes nothing). */
int tg_store_defdomains_add(tg_store *st, const char *domain, tg_err *err);
long long tg_store_defdomains_count(tg_store *st);
/* In byte order; fn as for tg_store_policy_entries_each. */
int tg_store_defdomains_each(tg_store *st, tg_store_text_fn fn, void *arg, tg_err *err);

/* ---- the domain-to-category map: one category per domain (a host name or "*.name") ---- */
/* Inserts, or replaces the category of a domain mapped already. */
int tg_store_category_put(tg_store *st, const char *domain, const char *category, tg_err *err);
/* The category of exactly this domain into buf; TG_E_NOTFOUND (no sentence) if unmapped. */
int tg_store_category_get(tg_store *st, const char *domain, char *buf, size_t bufsize, tg_err *err);
int tg_store_categories_clear(tg_store *st, long long *removed, tg_err *err);
long long tg_store_categories_count(tg_store *st);
/* fn gets (domain, category), borrowed for the call, in no particular order; its result
 * as for tg_store_text_fn. */
typedef int (*tg_store_pair_fn)(const char *a, const char *b, void *arg);
int tg_store_categories_each(tg_store *st, tg_store_pair_fn fn, void *arg, tg_err *err);
/* How many domains each category has, in category order. */
typedef int (*tg_store_count_fn)(const char *name, long long n, void *arg);
int tg_store_category_counts(tg_store *st, tg_store_count_fn fn, void *arg, tg_err *err);

/* ---- the default CA package: the system's public roots, loaded as one unit ---- */
/* id: the default CA's row (stored chains refer to it as -id; it changes when the package
 * is loaded again, which recomputes every chain) */
typedef int (*tg_store_blob_fn)(int64_t id, const unsigned char *der, size_t len, void *arg);
int tg_store_defcas_clear(tg_store *st, tg_err *err);
int tg_store_defcas_add(tg_store *st, const char *sha256, const char *subject,
                        const unsigned char *der, size_t len, tg_err *err);
long long tg_store_defcas_count(tg_store *st);
/* All of them, or (subject non-NULL) those with this subject DN. */
int tg_store_defcas_each(tg_store *st, const char *subject, tg_store_blob_fn fn, void *arg,
                         tg_err *err);

/* ---- the appliance's users, their API tokens and the audit log (users.c) ---- */
typedef struct tg_store_user {
    int64_t id;
    char *name;
    char role[24];  /* the keyring's canonical role name */
    char *password; /* the keyring's hash string (never a password) */
    int must_change, disabled;
    long long created, changed;
    long long ntokens; /* read only: how many tokens the user has */
    int64_t group_id;  /* read only (tg_store_user_set_group): 0 for none */
    char *group;       /* read only: the group's name, NULL for none */
} tg_store_user;
void tg_store_user_clear(tg_store_user *u);
/* Inserts (created and changed: now; id set); TG_E_CONFLICT on a name taken (names are
 * unique without regard to ASCII case). */
int tg_store_user_add(tg_store *st, tg_store_user *u, tg_err *err);
/* Writes row u->id's role, password, must_change and disabled; changed: now. */
int tg_store_user_update(tg_store *st, tg_store_user *u, tg_err *err);
/* By name, without regard to ASCII case; TG_E_NOTFOUND (no sentence) when none. */
int tg_store_user_by_name(tg_store *st, const char *name, tg_store_user *out, tg_err *err);
int tg_store_user_get(tg_store *st, int64_t id, tg_store_user *out, tg_err *err);
/* Deletes the user and its tokens. */
int tg_store_user_delete(tg_store *st, int64_t id, tg_err *err);
typedef int (*tg_store_user_fn)(const tg_store_user *u, void *arg);
/* Every user in name order; stops when fn returns non-zero. */
int tg_store_user_each(tg_store *st, tg_store_user_fn fn, void *arg, tg_err *err);
/* How many users there are (role NULL), or enabled users of this role. */
long long tg_store_user_count(tg_store *st, const char *role);
/* Puts user id in group gid (0: in none). */
int tg_store_user_set_group(tg_store *st, int64_t id, int64_t gid, tg_err *err);

/* ---- user groups (schema 8): what a group denies, by kind ("proxy", "policy") and name */
typedef struct tg_store_group {
    int64_t id;
    char *name;
    long long created;
} tg_store_group;
void tg_store_group_clear(tg_store_group *g);
/* Inserts (created: now; id set); TG_E_CONFLICT when the name is taken. */
int tg_store_group_add(tg_store *st, tg_store_group *g, tg_err *err);
/* TG_E_NOTFOUND (no sentence) when none. */
int tg_store_group_by_name(tg_store *st, const char *name, tg_store_group *out, tg_err *err);
int tg_store_group_get(tg_store *st, int64_t id, tg_store_group *out, tg_err *err);
/* Deletes the group and its denials; its users are left in none. */
int tg_store_group_delete(tg_store *st, int64_t id, tg_err *err);
typedef int (*tg_store_group_fn)(const tg_store_group *g, void *arg);
int tg_store_group_each(tg_store *st, tg_store_group_fn fn, void *arg, tg_err *err);
/* deny 1: adds the denial (no change when there); 0: removes it (none when absent). */
int tg_store_group_deny(tg_store *st, int64_t gid, const char *kind, const char *name, int deny,
                        tg_err *err);
/* 1 when group gid denies kind/name, 0 when not, a TG_E_… code (negated) on failure. */
int tg_store_group_denies(tg_store *st, int64_t gid, const char *kind, const char *name,
                          tg_err *err);
/* The group's denials by kind and name: fn(kind, name, arg). */
int tg_store_group_denied_each(tg_store *st, int64_t gid, tg_store_pair_fn fn, void *arg,
                               tg_err *err);
/* The names of the group's users, in name order: fn(name, NULL, arg). */
int tg_store_group_users_each(tg_store *st, int64_t gid, tg_store_pair_fn fn, void *arg,
                              tg_err *err);

typedef struct tg_store_token {
    int64_t id, user_id;
    unsigned char sha256[32]; /* of the token's text: the text is never stored */
    char *label;
    long long created, last_used, expires; /* 0 = never used / never expires */
} tg_store_token;
void tg_store_token_clear(tg_store_token *t);
/* Inserts (created: now; id set). */
int tg_store_token_add(tg_store *st, tg_store_token *t, tg_err *err);
/* The token whose SHA-256 is hash; TG_E_NOTFOUND (no sentence) when none. */
int tg_store_token_by_hash(tg_store *st, const unsigned char hash[32], tg_store_token *out,
                           tg_err *err);
int tg_store_token_touch(tg_store *st, int64_t id, long long when, tg_err *err);
/* Deletes token id of user_id; TG_E_NOTFOUND (no sentence) when the user has no such token. */
int tg_store_token_delete(tg_store *st, int64_t user_id, int64_t id, tg_err *err);
typedef int (*tg_store_token_fn)(const tg_store_token *t, void *arg);
/* A user's tokens by id; stops when fn returns non-zero. */
int tg_store_token_each(tg_store *st, int64_t user_id, tg_store_token_fn fn, void *arg,
                        tg_err *err);
long long tg_store_token_count(tg_store *st, int64_t user_id);

/* One audit row; strings are the caller's (bounded and cleaned by the keyring). */
typedef struct tg_store_audit {
    int64_t id;
    long long time;
    const char *actor, *source, *action, *object, *outcome;
    const char *detail; /* JSON text, or NULL */
} tg_store_audit;
/* Appends a row (id set) and deletes the rows older than the newest keep. */
int tg_store_audit_add(tg_store *st, tg_store_audit *a, long long keep, tg_err *err);
/* Rows with time >= since, newest first, skipping offset, at most limit; fn gets each
 * (strings borrowed for the call) and stops the walk when it returns non-zero. */
typedef int (*tg_store_audit_fn)(const tg_store_audit *a, void *arg);
int tg_store_audit_each(tg_store *st, long long since, long long limit, long long offset,
                        tg_store_audit_fn fn, void *arg, tg_err *err);
long long tg_store_audit_count(tg_store *st);

/* ---- enrollment (issue 11; enroll.c) ---- */
/* This appliance's identity settings (one row; a factory reset keeps it). */
typedef struct tg_store_identity_conf {
    char *server; /* the enrollment server's URL */
    char *ca_pem; /* anchors for its TLS certificate (PEM), or NULL: the system's */
    char *serial; /* the device id to ask for, overriding the hardware's, or NULL */
    long long changed;
} tg_store_identity_conf;
int tg_store_identity_conf_get(tg_store *st, tg_store_identity_conf *out, tg_err *err);
int tg_store_identity_conf_set(tg_store *st, const tg_store_identity_conf *c, tg_err *err);
void tg_store_identity_conf_clear(tg_store_identity_conf *c);
/* Small secrets sealed with the data key and bound to their name k (at most 64 bytes);
 * v NULL deletes. get: *v is a secret for the caller to tg_free_secret (len + 1 bytes). */
int tg_store_sealed_set(tg_store *st, const char *k, const unsigned char *v, size_t len,
                        tg_err *err);
int tg_store_sealed_get(tg_store *st, const char *k, unsigned char **v, size_t *len, tg_err *err);
/* The enrollment CA's one-time bootstrap secrets (as SHA-256). spend: TG_E_NOTFOUND for
 * one that is unknown, spent or expired; else it is spent now, by used_by. */
typedef struct tg_store_est_secret {
    int64_t id;
    const char *label, *used_by;      /* borrowed for the call */
    long long created, expires, used; /* used: 0 while unspent */
} tg_store_est_secret;
int tg_store_est_secret_add(tg_store *st, const unsigned char sha256[32], const char *label,
                            long long expires, int64_t *id, tg_err *err);
int tg_store_est_secret_spend(tg_store *st, const unsigned char sha256[32], long long now,
                              const char *used_by, tg_err *err);
int tg_store_est_secret_each(tg_store *st, int (*fn)(const tg_store_est_secret *e, void *arg),
                             void *arg, tg_err *err);
/* The enrollment CA's requests and what became of them. */
typedef struct tg_store_est_device {
    int64_t id;
    char *device;   /* the subject CN asked for (the device id) */
    char state[12]; /* pending | issued | rejected | revoked */
    unsigned char csr_sha256[32];
    unsigned char *csr; /* DER */
    size_t csrlen;
    unsigned char *cert; /* DER, once issued */
    size_t certlen;
    char *serial; /* the issued certificate's serial (upper-case hex) */
    long long not_after, requested, decided;
    char *source; /* "IP" of the requester */
    char *reason; /* why it was rejected or revoked */
} tg_store_est_device;
void tg_store_est_device_clear(tg_store_est_device *d);
int tg_store_est_device_add(tg_store *st, tg_store_est_device *d, tg_err *err);
/* Writes state, cert, serial, not_after, decided and reason of row d->id. */
int tg_store_est_device_update(tg_store *st, const tg_store_est_device *d, tg_err *err);
int tg_store_est_device_get(tg_store *st, int64_t id, tg_store_est_device *out, tg_err *err);
/* The newest row with this CSR, or with this issued serial. */
int tg_store_est_device_by_csr(tg_store *st, const unsigned char sha256[32],
                               tg_store_est_device *out, tg_err *err);
int tg_store_est_device_by_serial(tg_store *st, const char *serial, tg_store_est_device *out,
                                  tg_err *err);
int tg_store_est_device_each(tg_store *st, int (*fn)(const tg_store_est_device *d, void *arg),
                             void *arg, tg_err *err);
/* ---- ACME (schema 9): accounts and certificates as (name, reference, the keyring's JSON
 * document); ref_id is an account's key row, or a certificate's account row ---- */
enum { TG_STORE_ACME_ACCOUNTS, TG_STORE_ACME_CERTS };
typedef struct tg_store_acme {
    int64_t id;
    char *name;
    int64_t ref_id;
    char *doc;
    long long created, updated;
} tg_store_acme;
void tg_store_acme_clear(tg_store_acme *a);
/* Inserts (created, updated: now; id set); TG_E_CONFLICT on a duplicate name. */
int tg_store_acme_add(tg_store *st, int table, tg_store_acme *a, tg_err *err);
int tg_store_acme_update(tg_store *st, int table, int64_t id, const char *doc, tg_err *err);
/* TG_E_NOTFOUND (no sentence) when none. */
int tg_store_acme_by_name(tg_store *st, int table, const char *name, tg_store_acme *out,
                          tg_err *err);
int tg_store_acme_get(tg_store *st, int table, int64_t id, tg_store_acme *out, tg_err *err);
int tg_store_acme_delete(tg_store *st, int table, int64_t id, tg_err *err);
typedef int (*tg_store_acme_fn)(const tg_store_acme *a, void *arg);
/* In name order; stops when fn returns non-zero (a negative value is returned). */
int tg_store_acme_each(tg_store *st, int table, tg_store_acme_fn fn, void *arg, tg_err *err);
/* How many certificates use the account (1 as well when unsure). */
long long tg_store_acme_account_uses(tg_store *st, int64_t account_id);
/* A pending challenge: the key authorization (http-01, dns-01) or the tls-alpn-01
 * certificate (DER) with its sealed key row. */
typedef struct tg_store_chal {
    char *token, *domain;
    char type[16];
    char *keyauth;
    unsigned char *der;
    size_t derlen;
    int64_t key_id;
    long long created;
} tg_store_chal;
void tg_store_chal_clear(tg_store_chal *c);
/* Inserts, or replaces the row of the same token. */
int tg_store_chal_add(tg_store *st, const tg_store_chal *c, tg_err *err);
/* TG_E_NOTFOUND (no sentence) when none. */
int tg_store_chal_by_token(tg_store *st, const char *token, tg_store_chal *out, tg_err *err);
/* The newest challenge of this type for the domain. */
int tg_store_chal_by_domain(tg_store *st, const char *domain, const char *type, tg_store_chal *out,
                            tg_err *err);
int tg_store_chal_delete(tg_store *st, const char *token, tg_err *err);
/* Removes up to 32 challenges written before `before` (left by an order that was killed),
 * their keys with them; a later call takes the rest. */
int tg_store_chal_purge(tg_store *st, long long before, tg_err *err);

/* ---- sealing (exposed for tests) ---- */
#define TG_SEAL_OVERHEAD (1 + 12 + 16)
int tg_seal(const unsigned char key[32], const unsigned char *aad, size_t aadlen,
            const unsigned char *pt, size_t ptlen, unsigned char **out, size_t *outlen,
            tg_err *err);
int tg_unseal(const unsigned char key[32], const unsigned char *aad, size_t aadlen,
              const unsigned char *in, size_t inlen, unsigned char **pt, size_t *ptlen,
              tg_err *err);

#endif
