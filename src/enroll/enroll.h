/*
 * enroll.h — the face of src/enroll: the appliance's certificates kept valid without a
 * person (issue 11; SPEC E1–E5, K9, K10). Its identity certificate over EST (RFC 7030),
 * as a client and as the enrollment CA of a fleet; web certificates over ACME (RFC 8555)
 * with renewal information (RFC 9773); CA rollovers planned ahead.
 *
 * It stands above tls and keyring (and beside proxy): the rules and the stored state
 * are the keyring's; what lives here is the protocols, the HTTP they travel over
 * (libcurl) and the schedule. Inside serve it runs as a tg_service with a thread of its
 * own: its work waits on the network, and no handshake may wait for it.
 */
#ifndef TG_ENROLL_H
#define TG_ENROLL_H

#include "../base/base.h"
#include "../keyring/keyring.h"
#include "../tls/tls.h"

#include <jansson.h>

/* ---- the enrollment thread serve runs (service.c) ---- */
typedef struct tg_enroll tg_enroll;
typedef struct tg_enroll_opts {
    const char *home;
    int quiet;
    const char *http; /* serve --http ADDR:PORT: the ACME http-01 listener, or NULL */
} tg_enroll_opts;
int tg_enroll_new(const tg_enroll_opts *o, tg_enroll **out, tg_err *err);
/* Runs every job at start, then each when it asked to run again or when the store
 * changed; stops at serve's stop. */
tg_service tg_enroll_service(tg_enroll *e);
void tg_enroll_free(tg_enroll *e);

/* ---- the enrollment CA's EST server (estd.c; `enroll-ca serve`) ---- */
/* Serves RFC 7030 under /.well-known/est/ on listen (ADDR:PORT) with the certificate
 * cert (NULL: the default certificate) until SIGTERM or SIGINT; ready (may be NULL) is
 * called once it listens. */
int tg_enroll_estd_run(tg_keyring *kr, const char *listen, const char *cert, int quiet,
                       void (*ready)(const char *listen, void *arg), void *arg, tg_err *err);

/* ---- the appliance's identity (identity.c) ---- */
/* One enrollment attempt now with the stored settings (as serve's thread makes them);
 * force: even while the identity is valid (a renewal on demand). *state (may be NULL):
 * the state document (identity show's "attempt"). */
int tg_enroll_identity_now(tg_keyring *kr, int force, json_t **state, tg_err *err);
/* {"settings": {...}, "identity": keyring's identity document, "attempt": the state file
 * or null} */
int tg_enroll_identity_show(tg_keyring *kr, json_t **out, tg_err *err);
/* ---- ACME (acme.c; RFC 8555, RFC 9773) ---- */
#define TG_ACME_DOMAINS_MAX 100
typedef struct tg_acme_account_opts {
    const char *name;         /* NULL: "default" */
    const char *directory;    /* the directory URL */
    const char *directory_ca; /* PEM anchors for the directory's TLS, or NULL: the system's */
    const char *email;        /* contact, or NULL */
    const char *eab_kid;      /* external account binding (both or neither) */
    const unsigned char *eab_hmac;
    size_t eab_hmac_len;
} tg_acme_account_opts;
/* Makes an EC P-256 key, registers it (terms agreed) and stores the account. *out: the
 * account's document (acme account show). */
int tg_acme_account_create(tg_keyring *kr, const tg_acme_account_opts *o, json_t **out,
                           tg_err *err);
/* Decodes an EAB HMAC key as CAs hand it out (base64url) into a secret for
 * tg_free_secret. */
int tg_acme_eab_key(const char *text, unsigned char **key, size_t *len, tg_err *err);
typedef struct tg_acme_order_opts {
    const char *name;    /* the certificate's name in the keyring */
    const char *account; /* NULL: "default" */
    const char *const *domains;
    size_t ndomains;
    const char *challenge;       /* "http-01" (NULL), "tls-alpn-01", "dns-01" */
    const char *const *dns_hook; /* dns-01: argv of the hook command */
    size_t ndns_hook;
    const char *profile; /* or NULL */
} tg_acme_order_opts;
/* Records the certificate for ACME and orders it now (synchronously): challenges are
 * published to the store for a running serve (http-01, tls-alpn-01) or to the hook
 * (dns-01). *out: the ACME document of the certificate (acme show). */
int tg_acme_order(tg_keyring *kr, const tg_acme_order_opts *o, json_t **out, tg_err *err);
/* Orders NAME again now (with "replaces" when the CA offers ARI). */
int tg_acme_renew(tg_keyring *kr, const char *name, json_t **out, tg_err *err);

#endif
