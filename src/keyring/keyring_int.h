/*
 * keyring_int.h — shared by the files of src/keyring only.
 */
#ifndef TG_KEYRING_INT_H
#define TG_KEYRING_INT_H

#include "keyring.h"
#include "../store/store.h"

#include <stdint.h>

struct tg_keyring {
    tg_store *st;
    char *home;
    int created; /* this open initialised the store */
};

#define TG_REF_DEFAULT "default certificate"

/* Fills a store row from a certificate (metadata, DER, fingerprints). Caller sets the
 * name, kind and links, then tg_store_cert_add; tg_store_cert_clear frees. */
int kr_cert_row(const tg_cert *cert, tg_store_cert *row, tg_err *err);
/* Seals key into the store (or finds it there already); *id is its row. A key found
 * there is made non-exportable when exportable is 0 (the stricter flag wins); *tightened
 * (may be NULL) says whether that happened. */
int kr_key_put(tg_keyring *kr, const tg_key *key, int exportable, int64_t *id, int *tightened,
               tg_err *err);
/* kr_key_put for a key whose strength was checked and whose SubjectPublicKeyInfo hash
 * and PKCS#8 DER are already at hand (a bulk import makes them on its decoding threads). */
int kr_key_put_encoded(tg_keyring *kr, const tg_key *key, const unsigned char spki[32],
                       const unsigned char *der, size_t len, int exportable, int64_t *id,
                       int *tightened, tg_err *err);
/* Makes the stored key non-exportable unless it is already; *tightened says if it was. */
int kr_key_forbid_export(tg_keyring *kr, int64_t key_id, int *tightened, tg_err *err);
int kr_key_load(tg_keyring *kr, int64_t key_id, tg_key **out, tg_err *err);
/* A free certificate name made from base (a CN, file name or alias; cleaned with
 * kr_name_derive): base, or "base-N" within TG_NAME_MAX bytes, found in O(log n) store
 * lookups (*probes, if non-NULL, gets how many). */
int kr_unique_name(tg_keyring *kr, const char *base, char *out, size_t outsize, size_t *probes,
                   tg_err *err);
/* A friendly name made from text we did not choose (a CN, a file name): invalid bytes and
 * controls become U+FFFD, invisible characters are dropped, outer spaces trimmed, cut on
 * a character boundary to outsize-1 (at most TG_NAME_MAX) bytes; "certificate" if empty. */
const char *kr_name_derive(const char *base, char *out, size_t outsize);
/* The SAN list as stored: JSON [[type, value], ...] (new string). */
char *kr_sans_encode(const tg_sanlist *l);
/* The stored form back into a list (a NULL or damaged column gives an empty list and -1). */
int kr_sans_decode(const char *json, tg_sanlist *out);
/* Whether a stored SAN list names a server (a DNS host name or an IP address); the first
 * such SAN as "DNS:name" / "IP:addr" in first (when given). */
int kr_sans_name_server(const char *json, char *first, size_t size);
/* The document form: [{"type", "value"}, ...]; *bad_hosts counts dNSNames that are not
 * host names (kept, but never served). */
json_t *kr_sans_doc(const char *json, size_t *bad_hosts);
/* Fills san_list and the key facts of rows from before schema 3, and the stored chains
 * of rows from before schema 4 (one transaction). */
int kr_fill_old_rows(tg_keyring *kr, tg_err *err);
/* A JSON string of s; bytes that are not UTF-8 (rows from before names were checked)
 * become U+FFFD instead of failing the document. */
json_t *kr_json_text(const char *s);
/* Optional text: kr_json_text(s), or null when s is NULL or empty (docs/json.md). */
json_t *kr_json_opt(const char *s);
/* Sets a timestamp in doc as docs/json.md has it: name as RFC 3339 UTC and name_unix as
 * seconds since the epoch. 0, or -1 when out of memory. */
int kr_json_time(json_t *doc, const char *name, long long t);
/* Why text is not printable UTF-8 (a phrase after "the X ..."), or NULL when it is. */
const char *kr_text_problem(const char *s, char *buf, size_t bufsize);
/* C3: letters, digits, hyphen, underscore, space; "ca" and "rollover-plan" are reserved. */
int kr_ca_name_check(const char *name, tg_err *err);
/* A CA name made from base (a CN): other characters become '-'. Returns out. */
const char *kr_ca_name_from(const char *base, char *out, size_t size);
int kr_cert_get(tg_keyring *kr, const char *name, tg_store_cert *out, tg_err *err);
/* The same, for a CA certificate only (anything else is "no CA certificate is named"). */
int kr_ca_get(tg_keyring *kr, const char *name, tg_store_cert *out, tg_err *err);
/* The certificate's document for show / create. */
json_t *kr_cert_doc(tg_keyring *kr, const tg_store_cert *c);
/* The row for the certificates table. */
json_t *kr_cert_list_row(const tg_store_cert *c, int64_t default_id, long long now);
/* Issuer chain of c found in the store (not including c), nearest first; ids (NULL, or
 * room for TG_STORE_CHAIN_MAX) gets each member's id as chain.c describes. Searches
 * issuers and checks signatures: never on serve's path (kr_chain_builds counts calls). */
int kr_chain(tg_keyring *kr, const tg_cert *leaf, tg_cert ***chain, size_t *n, int64_t *ids,
             tg_err *err);
void kr_chain_free(tg_cert **chain, size_t n);
extern size_t kr_chain_builds; /* for tests: how many chains were built (not thread-safe) */
/* C2: the chain status of one certificate (see chain.c) into status, and (chain_ids not
 * NULL) the chain as it is stored, a new string. */
int kr_chain_status(tg_keyring *kr, const tg_cert *cert, int64_t key_id,
                    const unsigned char spki[32], char *status, size_t size, char **chain_ids,
                    tg_err *err);
/* Recomputes every certificate's status and stored chain inside the caller's transaction;
 * *changed (may be NULL) counts the statuses that changed. */
int kr_refresh_tx(tg_keyring *kr, size_t *changed, tg_err *err);
/* The built chain as [{subject, type, not_after, not_after_unix, sha256}], the
 * certificate first. */
json_t *kr_chain_doc(tg_keyring *kr, const tg_store_cert *c);
/* Validates spec, makes key and self-signed certificate, stores both (inside a
 * transaction the caller opened). protect marks the factory default (K1). */
int kr_create_tx(tg_keyring *kr, const tg_newcert *spec, int protect, int64_t *id, tg_err *err);
/* A trust store by name (TG_E_NOTFOUND with a sentence naming it). */
int kr_ts_get(tg_keyring *kr, const char *name, tg_store_ts *t, tg_err *err);
/* The trust anchors of a trust store (tg_keyring_ts_anchors); an empty one is refused
 * unless allow_empty. */
int kr_ts_anchors(tg_keyring *kr, const char *name, int allow_empty, tg_cert ***anchors, size_t *n,
                  tg_err *err);
/* The proxy's document (show --json) from its row (TG_E_STORE when its stored
 * configuration is damaged). unseal: a server proxy's keys are opened to judge them
 * (show); else judged from the stored rows alone (lists, the engine's load, which opens
 * each key itself). */
int kr_proxy_doc(tg_keyring *kr, const tg_store_proxy *p, int unseal, json_t **out, tg_err *err);
/* Certificate to took certificate from's place (K5 renewal, K7 replacement): the proxies
 * that sign with from sign with to if it can sign (a CA whose key is held); if it
 * cannot, strict refuses (TG_E_CONFLICT, naming the proxy) and otherwise they stay. The
 * server proxies that show from show to if it is not a CA (else strict refuses too). */
int kr_proxy_follow(tg_keyring *kr, int64_t from, int64_t to, int strict, tg_err *err);
/* proxy_server.c: a server proxy's networks and certificates (issue 12). */
typedef struct kr_cidrs {
    tg_cidr *v; /* sorted, each once */
    size_t n, cap;
} kr_cidrs;
void kr_cidrs_clear(kr_cidrs *l);
/* whole (v non-NULL) replaces the list, then remove (each must be there: TG_E_NOTFOUND),
 * then add; at most max entries; what names the list in sentences ("destinations"). */
int kr_cidrs_edit(kr_cidrs *l, const tg_textlist *whole, const tg_textlist *add,
                  const tg_textlist *remove, size_t max, const char *what, tg_err *err);
json_t *kr_cidrs_json(const kr_cidrs *l);
/* Whether a network of a overlaps one of b; the first pair's text into out. */
int kr_cidrs_overlap(const kr_cidrs *a, const kr_cidrs *b, char *out, size_t size);
/* Writes p's certificate rows from o (create: o->certs; set: only when o changes them),
 * each an existing non-CA certificate, 1..TG_SRV_CERTS_MAX after duplicates are dropped. */
int kr_srv_certs_write(tg_keyring *kr, const tg_store_proxy *p, const tg_proxy_opts *o, int create,
                       tg_err *err);
/* [{"name", "cn", "sans", "key"}] in the proxy's order (unseal: as kr_proxy_doc). */
int kr_srv_certs_doc(tg_keyring *kr, int64_t proxy_id, int unseal, json_t **out, tg_err *err);
/* "ok", "missing" (no key row) or "broken" (the row does not match the certificate's
 * public key, or its sealed blob does not open). */
const char *kr_key_state(tg_keyring *kr, const tg_store_cert *c);
/* The same from the rows alone (no unseal): for a caller that unseals the key next. */
const char *kr_key_row_state(tg_keyring *kr, const tg_store_cert *c);
/* The name rule of proxies and policies (letters, digits, '_', '-', ' ' not at either end,
 * at most TG_PROXY_NAME_MAX); what ("proxy", "policy") names the kind in the sentence. */
int kr_conf_name_check(const char *what, const char *name, tg_err *err);
/* A description: printable UTF-8, at most TG_PROXY_DESC_MAX characters. */
int kr_description_check(const char *d, tg_err *err);
/* Walks a list file line by line: '#' starts a comment, blank lines are skipped, a '\r'
 * before the '\n' is dropped; fn gets the number of each other line (from 1) and its
 * fields (split at spaces and tabs; at most KR_LINE_FIELDS, so a line with one field too
 * many shows it). Refuses (TG_E_INVALID, naming the line or the file by what) more than
 * max_lines lines, counted before fn sees any, a NUL byte, or a line over 4096 bytes. fn
 * returns 0 to go on, or an error that stops the walk. */
#define KR_LINE_FIELDS 3
typedef int (*kr_line_fn)(size_t line, char **fields, int n, void *arg, tg_err *err);
int kr_lines_each(const char *text, size_t len, size_t max_lines, const char *what, kr_line_fn fn,
                  void *arg, tg_err *err);
/* Replaces the stored default never-decrypt list with the built-in one (inside the
 * caller's transaction). */
int kr_defaults_seed_tx(tg_keyring *kr, tg_err *err);
/* Seeds the default list on the first open of a store, and again when this program's
 * built-in list is a newer revision than the one stored (never over an imported list). */
int kr_defaults_ensure(tg_keyring *kr, tg_err *err);
/* The stored default list as a JSON array of strings, in byte order. */
int kr_defaults_array(tg_keyring *kr, json_t **out, tg_err *err);
/* The runtime view of policy id (tg_proxy_rt.policy), with defaults (kr_defaults_array)
 * merged into never_domains unless the policy leaves them out. */
int kr_policy_rt(tg_keyring *kr, int64_t id, json_t *defaults, json_t **out, tg_err *err);
/* K10: the reissue of old (a self-signed CA whose key is held; old->der needed) for days,
 * named newname or "NAME until YYYY-MM-DD", stored as old's successor, inside the caller's
 * transaction; *row (cleared by the caller) is the new certificate's row. */
int kr_ca_reissue_tx(tg_keyring *kr, const tg_store_cert *old, int days, const char *newname,
                     tg_store_cert *row, tg_err *err);
/* tg_keyring_audit_add inside the caller's transaction. */
int kr_audit_add_tx(tg_keyring *kr, const tg_audit_entry *e, tg_err *err);
/* Ends a write: commit when rc is 0, else roll back. Returns rc or the commit's error. */
int kr_finish(tg_keyring *kr, int rc, tg_err *err);
/* TG_IDENTITY_NAME given by an operator: TG_E_INVALID (field "name") (identity.c). */
int kr_name_reserved(const char *name, tg_err *err);

#endif
