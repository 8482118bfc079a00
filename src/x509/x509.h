/*
 * x509.h — the face of src/x509: PKI primitives over OpenSSL 3 (EVP and provider APIs).
 *
 * Keys, subject names and their rules, certificate requests, self-signed certificates,
 * descriptions, file decoding, PKCS#12, and the check of TLS settings before they are
 * stored. Nothing here knows about the store: objects go in and out as opaque handles,
 * DER bytes or plain C structs. Private key bytes that leave this module (tg_key_to_der)
 * are the caller's to wipe.
 */
#ifndef TG_X509_H
#define TG_X509_H

#include "../base/base.h"

typedef struct tg_key tg_key;   /* a private key (later possibly a token-held one, K13) */
typedef struct tg_cert tg_cert; /* one X.509 certificate */

/* ---- keys ---------------------------------------------------------------------- */
typedef struct tg_keyspec {
    int rsa;           /* 1: RSA, 0: EC */
    int bits;          /* RSA modulus size */
    const char *group; /* EC group: "P-256" or "P-384" */
} tg_keyspec;

/* Parses "rsa:2048|rsa:3072|rsa:4096|ec:p256|ec:p384" (NULL gives rsa:2048). */
int tg_keyspec_parse(const char *s, tg_keyspec *out, tg_err *err);
int tg_key_generate(const tg_keyspec *spec, tg_key **out, tg_err *err);
void tg_key_free(tg_key *key);
/* Unencrypted PKCS#8 DER of the private key: the caller wipes and frees it (tg_free_secret). */
int tg_key_to_der(const tg_key *key, unsigned char **der, size_t *len, tg_err *err);
int tg_key_from_der(const unsigned char *der, size_t len, tg_key **out, tg_err *err);
/* Frees this thread's cached key decoder (done by itself when a thread exits, and for
 * the main thread at exit). */
void tg_x509_thread_done(void);
/* SHA-256 of the DER SubjectPublicKeyInfo: how certificates, requests and keys find each other. */
int tg_key_spki_sha256(const tg_key *key, unsigned char out[32], tg_err *err);
/* "RSA 2048", "EC P-256" */
void tg_key_describe(const tg_key *key, char *buf, size_t bufsize);
/* Refuses keys an appliance must not use (RSA below 2048). */
int tg_key_check_strength(const tg_key *key, tg_err *err);

/* ---- names ----------------------------------------------------------------------- */
typedef struct tg_subject {
    const char *country, *state, *locality, *org, *unit, *cn, *email;
} tg_subject;

/* A list of owned strings, for SANs ("DNS:name", "IP:addr", "email:addr"). */
typedef struct tg_strlist {
    char **v;
    size_t n;
} tg_strlist;
int tg_strlist_add(tg_strlist *l, const char *s);
void tg_strlist_free(tg_strlist *l);
/* "a, b, c" (new string) */
char *tg_strlist_join(const tg_strlist *l, const char *sep);

/* Subject alternative names as they travel: a list of (type, value), never a joined
 * string. Values are printable UTF-8 (see tg_cert_info); IP values in text form. */
typedef enum {
    TG_SAN_DNS,
    TG_SAN_IP,
    TG_SAN_EMAIL,
    TG_SAN_URI,
    TG_SAN_DIRNAME,
    TG_SAN_OTHER
} tg_san_type;
typedef struct tg_san {
    tg_san_type type;
    char *value;
} tg_san;
typedef struct tg_sanlist {
    tg_san *v;
    size_t n, cap;
} tg_sanlist;
/* Appends a copy of value (len bytes); grows geometrically. */
int tg_sanlist_add(tg_sanlist *l, tg_san_type type, const char *value, size_t len);
void tg_sanlist_free(tg_sanlist *l);
/* "DNS", "IP", "email", "URI", "DirName", "othername" — and back (0, or -1 when unknown). */
const char *tg_san_type_name(tg_san_type t);
int tg_san_type_parse(const char *s, tg_san_type *t);
/* The list form of tg_sans_build's output (entries "TYPE:value" made by
 * tg_san_normalize: split at the first ':', which no type contains). */
int tg_sanlist_from_built(const tg_strlist *built, tg_sanlist *out, tg_err *err);
/* A dNSName the SNI index may use: LDH labels, "*." only as the whole leftmost label. */
int tg_san_host_name(const char *value);
/* The most SANs a certificate may carry to be imported (README, "Rules"). */
#define TG_SANS_IMPORT_MAX 10000

int tg_subject_check(const tg_subject *subj, tg_err *err);
/* The subject as RFC 2253 text (new string), as certificates from it will show it. */
char *tg_subject_text(const tg_subject *subj);
/* Validates one SAN ("DNS:…", "IP:…", "email:…"; a bare value is a DNS name or an IP
 * address) and writes its canonical form (lower-case DNS, canonical IP) into out. */
int tg_san_normalize(const char *in, char *out, size_t outsize, tg_err *err);
/* The SAN list for a new certificate or request: the CN first when it is a DNS name or
 * an IP address, then the given ones, canonical and without duplicates. */
int tg_sans_build(const tg_subject *subj, const char *const *sans, size_t n, tg_strlist *out,
                  tg_err *err);
/* Is s a valid DNS name (wildcard allowed only as the whole leftmost label)? */
int tg_dns_name_valid(const char *s, int allow_wildcard);

/* ---- certificates and requests -------------------------------------------------- */
/* is_ca: a signing certificate (a root that signs leaves only): basicConstraints
 * CA:TRUE, pathlen:0 (critical), keyUsage keyCertSign, cRLSign, digitalSignature
 * (critical), SKI, AKI = SKI, no EKU (CA/B BR 7.1.2.1). Else a server/client leaf. */
int tg_cert_selfsign(const tg_key *key, const tg_subject *subj, const tg_strlist *sans, int days,
                     int is_ca, tg_cert **out, tg_err *err);
/* A PKCS#10 request in PEM (new NUL-terminated string). signing=1 asks for a CA. */
int tg_csr_create(const tg_key *key, const tg_subject *subj, const tg_strlist *sans, int signing,
                  char **pem, tg_err *err);

int tg_cert_from_der(const unsigned char *der, size_t len, tg_cert **out, tg_err *err);
int tg_cert_to_der(const tg_cert *cert, unsigned char **der, size_t *len, tg_err *err);
int tg_cert_to_pem(const tg_cert *cert, char **pem, size_t *len, tg_err *err);
void tg_cert_free(tg_cert *cert);
int tg_cert_spki_sha256(const tg_cert *cert, unsigned char out[32], tg_err *err);
int tg_cert_matches_key(const tg_cert *cert, const tg_key *key);
/* 1 when parent's subject is child's issuer and parent's key verifies child's signature. */
int tg_cert_issued_by(const tg_cert *child, const tg_cert *parent);

/* Cheap accessors for path building: issuer DN (RFC 2253, new string), self-signature,
 * validity (Unix times). */
char *tg_cert_issuer_text(const tg_cert *cert);
int tg_cert_self_signed(const tg_cert *cert);
int tg_cert_is_ca(const tg_cert *cert);
/* How many GeneralNames its subjectAltName holds (0 without one). */
size_t tg_cert_san_count(const tg_cert *cert);
int tg_cert_equal(const tg_cert *a, const tg_cert *b);
void tg_cert_validity(const tg_cert *cert, long long *not_before, long long *not_after);
/* RFC 8737: the tls-alpn-01 validation certificate for domain (self-signed, a week),
 * with the critical acmeIdentifier extension holding digest (SHA-256 of the key
 * authorization). */
int tg_cert_acme_alpn(const tg_key *key, const char *domain, const unsigned char digest[32],
                      tg_cert **out, tg_err *err);
/* K10: the same certificate (subject, key, extensions) with a new serial and validity,
 * signed again by key. */
int tg_cert_reissue(const tg_cert *old, const tg_key *key, int days, tg_cert **out, tg_err *err);

/* ---- issuing: leaves signed by a CA (SPEC I1) ------------------------------------ */
/* A leaf's public key prepared once for many certificates: the costly encoding of the
 * key (≈150-200 µs in OpenSSL 3.0) is paid here, not per certificate (issue.c). */
typedef struct tg_spki tg_spki;
int tg_spki_new(const tg_key *key, tg_spki **out, tg_err *err);
void tg_spki_free(tg_spki *spki);

typedef struct tg_issue_req {
    /* The subject, at most one of: fields (checked as tg_subject_check does), the subject
     * of another certificate (the upstream server's, copied as it is), or a CN alone.
     * None: an empty subject, and the SANs are marked critical (RFC 5280 4.2.1.6). */
    const tg_subject *subject;
    const tg_cert *subject_from;
    const char *cn;
    const tg_sanlist *sans;          /* DNS, IP or email entries, printable ASCII; may be NULL */
    long long not_before, not_after; /* Unix times; clipped inside the CA's validity */
    /* The new certificate's public key: exactly one of these. */
    const tg_key *key;
    const tg_spki *spki;
    int client_auth; /* EKU clientAuth as well as serverAuth (a device's identity) */
} tg_issue_req;
/* A leaf signed by ca with ca_key (which must be ca's key; ca must be a CA): random
 * 127-bit serial, issuer = ca's subject, AKI = ca's SKI, its own SKI, basicConstraints
 * CA:FALSE critical, keyUsage digitalSignature (+ keyEncipherment for RSA) critical,
 * EKU serverAuth; SHA-256, or SHA-384 for a P-384 CA key. */
int tg_cert_issue(const tg_cert *ca, const tg_key *ca_key, const tg_issue_req *req, tg_cert **out,
                  tg_err *err);

/* ---- requests received (an enrollment CA's; csr.c) ------------------------------ */
typedef struct tg_csr tg_csr;
#define TG_CSR_DER_MAX 16384 /* bytes of a request we read */
/* A PKCS#10 request from DER: parsed, and its self-signature verified (the requester
 * holds the key); TG_E_INVALID with a sentence otherwise. */
int tg_csr_from_der(const unsigned char *der, size_t len, tg_csr **out, tg_err *err);
/* PEM (one CERTIFICATE REQUEST) to DER; *der is the caller's to free. */
int tg_csr_pem_to_der(const char *pem, unsigned char **der, size_t *len, tg_err *err);
void tg_csr_free(tg_csr *csr);
/* Its subject's CN (new string; NULL without one, or when it is not printable UTF-8) and
 * whole subject as RFC 2253 text (new string). */
char *tg_csr_cn(const tg_csr *csr);
char *tg_csr_subject_text(const tg_csr *csr);
/* Its public key, as a key holding only the public half (for tg_issue_req.key). */
int tg_csr_pubkey(const tg_csr *csr, tg_key **out, tg_err *err);

typedef struct tg_certinfo {
    char *subject, *subject_cn, *issuer, *issuer_cn; /* DN as RFC 2253 UTF-8; CN or "" */
    char *serial;                                    /* upper-case hex */
    tg_sanlist sans;                                 /* every GeneralName, in order */
    char *sigalg;
    char key_desc[32]; /* for display only: "RSA 2048", "EC P-256" */
    char key_type[16]; /* "RSA", "EC", "ED25519", … */
    int key_bits;      /* RSA modulus / EC field size */
    char sha256[65];   /* fingerprint of the DER, upper-case hex */
    long long not_before, not_after;
    int is_ca, self_signed;
} tg_certinfo;
int tg_cert_info(const tg_cert *cert, tg_certinfo *out, tg_err *err);
/* The SANs of a PEM certificate request (for stores written before SANs were kept as
 * lists). */
int tg_csr_sans(const char *pem, tg_sanlist *out, tg_err *err);
void tg_certinfo_clear(tg_certinfo *info);

/* ---- files ------------------------------------------------------------------------ */
typedef struct tg_bundle {
    tg_cert **certs;
    char **aliases; /* per certificate: its PKCS#12 friendly name (alias), or NULL */
    size_t ncerts;
    tg_key **keys;
    size_t nkeys;
} tg_bundle;
/* Decodes a file's bytes: PEM (any number of certificates and keys, text around them),
 * DER certificate, DER key (PKCS#8 plain or encrypted, traditional), or PKCS#12.
 * pass is asked only when the content is encrypted. what names the file in errors. */
int tg_bundle_decode(const unsigned char *data, size_t len, const char *what,
                     const tg_passsrc *pass, tg_bundle *out, tg_err *err);
void tg_bundle_clear(tg_bundle *b);

/* The password-hashing budget of one file (README, "Limits"; kdfcost.c): PBKDF2 and
 * PKCS#12 iterations plus scrypt N*r*p, added up over every encrypted part, and the
 * memory of one scrypt derivation (128*r*(N+p) bytes). */
#define TG_KDF_WORK_MAX 4000000LL
#define TG_KDF_MEM_MAX  (32LL * 1024 * 1024)
/* Adds up the work of every encrypted part in sight without deriving anything; 0 when
 * the file is within the budget (*work, if non-NULL, is what it counted), else
 * TG_E_INVALID and a sentence naming the limit. tg_bundle_decode calls it first, and
 * charges every derivation it makes against the same budget as it goes. */
int tg_bundle_kdf_check(const unsigned char *data, size_t len, const char *what, long long *work,
                        tg_err *err);

/* PKCS#12 profiles: modern (AES-256-CBC, PBKDF2-HMAC-SHA256, SHA-256 MAC), and two for
 * clients that reject it as a "wrong password" (Windows Server 2016, old macOS, Java 8):
 * 3DES everywhere with a SHA-1 MAC, or RC2-40 certificates with a 3DES key. */
typedef enum { TG_P12_MODERN, TG_P12_LEGACY_DES, TG_P12_LEGACY_RC2 } tg_p12_profile;
/* key may be NULL (certificates only). */
int tg_p12_create(const tg_cert *cert, const tg_key *key, tg_cert *const *chain, size_t nchain,
                  const char *friendly, const char *pass, tg_p12_profile profile,
                  unsigned char **out, size_t *outlen, tg_err *err);
/* The private key alone as PEM: PKCS#8, or the traditional PKCS#1 (RSA) / SEC1 (EC) form.
 * Encrypted (AES-256-CBC; PBKDF2 for PKCS#8) when pass is non-NULL. *pem is a secret. */
int tg_key_export_pem(const tg_key *key, int traditional, const char *pass, char **pem, size_t *len,
                      tg_err *err);
/* A degenerate PKCS#7 SignedData holding the certificates, as DER or PEM. */
int tg_p7_create(tg_cert *const *certs, size_t n, int pem, unsigned char **out, size_t *outlen,
                 tg_err *err);

/* ---- TLS settings ---------------------------------------------------------------- */
#define TG_TLS_CIPHERS_MAX 1024
/* Whether list is an OpenSSL cipher list (SSL_CTX_set_cipher_list: TLS 1.2 and below)
 * that selects at least one cipher: printable ASCII without spaces, at most
 * TG_TLS_CIPHERS_MAX bytes. TG_E_INVALID with a sentence otherwise. */
int tg_tls_ciphers_check(const char *list, tg_err *err);

/* ---- the appliance users' passwords and tokens (passwd.c) --------------------------- */
/* scrypt cost of new hashes: N·r·128 bytes = 32 MiB of memory, ~0.1 s of CPU. */
#define TG_PWHASH_N   32768u
#define TG_PWHASH_R   8u
#define TG_PWHASH_P   1u
#define TG_PWHASH_MAX 128 /* bytes of a stored hash, NUL included */
/* A new hash of pw: "scrypt$N$r$p$SALT$HASH" (16-byte random salt, 32-byte hash, both
 * standard base64) into out. */
int tg_pwhash(const unsigned char *pw, size_t len, char *out, size_t outsize, tg_err *err);
/* 0 when pw matches stored; TG_E_PASSWORD (no sentence) when it does not, or when stored is
 * NULL (then after the same work on a dummy, so that an unknown user takes as long as a
 * wrong password); TG_E_STORE when stored is damaged or asks for more than 64 MiB. */
int tg_pwhash_verify(const char *stored, const unsigned char *pw, size_t len, tg_err *err);
/* The cost parameters of a stored hash (0), or -1 when it is not one. */
int tg_pwhash_params(const char *stored, unsigned long long *n, unsigned *r, unsigned *p);
/* A bearer token: "tg_" and 32 random bytes in base64url (43 characters); only its SHA-256
 * (hash) is ever stored. out is the caller's to wipe. */
#define TG_TOKEN_PREFIX "tg_"
#define TG_TOKEN_LEN    46
int tg_token_new(char out[TG_TOKEN_LEN + 1], unsigned char hash[32], tg_err *err);
int tg_sha256(const void *data, size_t len, unsigned char out[32], tg_err *err);
/* A random password of 24 base64url characters (144 bits) into out (at least 25 bytes). */
int tg_password_new(char *out, size_t outsize, tg_err *err);
/* Whether a and b hold the same len bytes, in time independent of where they differ. */
int tg_ct_equal(const void *a, const void *b, size_t len);

#include "verify.h"

#endif
