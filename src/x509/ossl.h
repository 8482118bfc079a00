/*
 * ossl.h — the OpenSSL objects behind tg_cert and tg_key, for src/tls only: the TLS
 * layer hands them to libssl. Everyone else stays with x509.h.
 */
#ifndef TG_X509_OSSL_H
#define TG_X509_OSSL_H

#include "x509.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Borrowed pointers: valid while the tg_cert / tg_key lives (up-ref to keep them). */
X509 *tg_cert_x509(const tg_cert *cert);
EVP_PKEY *tg_key_pkey(const tg_key *key);

/* A tg_cert holding a new reference to x (NULL when out of memory); x stays the caller's. */
tg_cert *tg_cert_adopt(X509 *x);
/* A tg_key holding a new reference to pkey. */
tg_key *tg_key_adopt(EVP_PKEY *pkey);

#endif
