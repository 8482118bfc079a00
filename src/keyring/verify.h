/*
 * verify.h — `tlsgate verify` as a keyring operation (SPEC C5): reads and decodes the files,
 * runs the verifier of src/x509 and returns the verdict as a document. Part of the keyring
 * face (keyring.h includes it).
 */
#ifndef TG_KEYRING_VERIFY_H
#define TG_KEYRING_VERIFY_H

#include "keyring.h"

typedef struct tg_verify_opts {
    const tg_input *leaf;   /* its first certificate is verified; any others are candidates */
    const tg_input *chains; /* candidates for path building, any order */
    size_t nchains;
    const tg_input *cas; /* every certificate in them is a trust anchor */
    size_t ncas;
    const char *truststore; /* --truststore NAME: its CAs (and default package) are anchors */
    const char *host;       /* DNS name or IP address, or NULL */
    const char *at;         /* validation time as tg_time_parse reads it; NULL: now */
    const char *purpose;    /* "server" (NULL) or "client" */
} tg_verify_opts;

/* *out: {"verdict": "valid"|"invalid", "reason": sentence, "chain": [{"subject", "issuer",
 * "not_after", "trust_anchor"}…]} with the leaf first. Returns 0 whenever a verdict was
 * reached, valid or not; a negative code when an input cannot be decoded. kr may be
 * NULL when no trust store is named. */
int tg_keyring_verify(tg_keyring *kr, const tg_verify_opts *o, json_t **out, tg_err *err);

#endif
