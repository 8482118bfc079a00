/*
 * verify.h — certification path validation with the Web PKI's rules (SPEC C5), part of the
 * x509 face (x509.h includes it). No OpenSSL types: certificates go in as tg_cert handles.
 *
 * Every trust anchor may end a path (partial chains, as browsers and Go do); candidates
 * only help to build one, in any order, decoys included. The rules are listed in
 * README.md, "tlsgate verify".
 */
#ifndef TG_X509_VERIFY_H
#define TG_X509_VERIFY_H

#include "x509.h"

typedef enum {
    TG_PURPOSE_SERVER = 0, /* a TLS server's certificate: serverAuth, names in the SAN */
    TG_PURPOSE_CLIENT = 1  /* a TLS client's certificate: clientAuth */
} tg_purpose;

/* Longest path considered, leaf and trust anchor included. */
#define TG_VERIFY_MAX_CERTS 10

typedef struct tg_verify_req {
    const tg_cert *leaf;
    tg_cert *const *anchors; /* trust anchors: every one may end a path */
    size_t nanchors;
    tg_cert *const *candidates; /* untrusted certificates for path building */
    size_t ncandidates;
    const char *host; /* DNS name or IP address the leaf must carry, or NULL */
    long long at;     /* validation time (seconds since 1970) when at_set, else now */
    int at_set;
    tg_purpose purpose;
} tg_verify_req;

/* One certificate of the chain, for display: names as RFC 2253 text in printable UTF-8. */
typedef struct tg_verify_link {
    char *subject, *issuer;
    long long not_after; /* seconds since 1970 */
} tg_verify_link;

typedef struct tg_verify_result {
    int valid;               /* 1: a path satisfies every rule */
    char reason[TG_ERR_MAX]; /* one sentence: why valid, or the first rule broken */
    tg_cert **chain;         /* the path found (leaf first), or the best partial one */
    tg_verify_link *links;   /* chain[i] described */
    size_t nchain;
    int anchored; /* chain ends at one of the trust anchors */
} tg_verify_result;

/* Builds and checks certification paths for req->leaf. Returns 0 with a verdict in *out
 * (valid or not), or a negative TG_E… code when no verdict could be reached (bad request,
 * out of memory). tg_verify_result_clear frees *out. */
int tg_verify(const tg_verify_req *req, tg_verify_result *out, tg_err *err);
void tg_verify_result_clear(tg_verify_result *r);

#endif
