/*
 * csr.c — certificate requests received from others (an enrollment CA's), as opposed to
 * the ones this appliance makes (cert.c, tg_csr_create).
 *
 * A request read here has proved that its sender holds the key: tg_csr_from_der verifies
 * its self-signature before anyone sees it. The bytes are bounded (TG_CSR_DER_MAX) and
 * must be the whole DER (nothing after it).
 */
#include "x509_int.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

struct tg_csr {
    X509_REQ *req;
};

int tg_csr_from_der(const unsigned char *der, size_t len, tg_csr **out, tg_err *err)
{
    *out = NULL;
    if (len == 0 || len > TG_CSR_DER_MAX)
        return tg_err_set(err, TG_E_INVALID,
                          "the certificate request is %s (at most %d bytes of DER)",
                          len == 0 ? "empty" : "too long", TG_CSR_DER_MAX);
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    if (req == NULL || p != der + len) {
        X509_REQ_free(req);
        return tg_ossl_err(err, TG_E_INVALID, "the certificate request is not a PKCS#10 request");
    }
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (pub == NULL || X509_REQ_verify(req, pub) != 1) {
        X509_REQ_free(req);
        return tg_ossl_err(err, TG_E_INVALID,
                           "the certificate request's signature does not verify with its own "
                           "key (make a new request)");
    }
    tg_csr *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        X509_REQ_free(req);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    c->req = req;
    *out = c;
    return 0;
}

int tg_csr_pem_to_der(const char *pem, unsigned char **der, size_t *len, tg_err *err)
{
    *der = NULL;
    *len = 0;
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    unsigned char *b = NULL;
    int n = req ? i2d_X509_REQ(req, &b) : -1;
    X509_REQ_free(req);
    if (n <= 0) return tg_ossl_err(err, TG_E_INVALID, "the request cannot be read");
    *der = malloc((size_t)n);
    if (*der == NULL) {
        OPENSSL_free(b);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    memcpy(*der, b, (size_t)n);
    OPENSSL_free(b);
    *len = (size_t)n;
    return 0;
}

void tg_csr_free(tg_csr *csr)
{
    if (csr == NULL) return;
    X509_REQ_free(csr->req);
    free(csr);
}

char *tg_csr_cn(const tg_csr *csr)
{
    char *cn = tg_x509_name_cn(X509_REQ_get_subject_name(csr->req));
    if (cn != NULL && (cn[0] == '\0' || tg_text_check(cn, NULL, NULL) != 0)) {
        free(cn);
        return NULL;
    }
    return cn;
}

char *tg_csr_subject_text(const tg_csr *csr)
{
    return tg_x509_name_text(X509_REQ_get_subject_name(csr->req));
}

int tg_csr_pubkey(const tg_csr *csr, tg_key **out, tg_err *err)
{
    *out = NULL;
    EVP_PKEY *pub = X509_REQ_get0_pubkey(csr->req);
    if (pub == NULL) return tg_ossl_err(err, TG_E_INVALID, "the request holds no public key");
    EVP_PKEY_up_ref(pub);
    *out = tg_key_wrap(pub); /* it drops the reference when it fails */
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}
