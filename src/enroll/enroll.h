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

#endif
