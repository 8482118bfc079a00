/*
 * acme.c — the API's ACME resources: the accounts and the certificates ACME keeps, read
 * as `tlsgate acme account list|show` and `acme list|show` read them. Orders and
 * renewals wait on the CA for minutes, which no request of this event loop may: they are
 * the CLI's (acme order, acme renew) and serve's enrollment thread's.
 */
#include "api_int.h"

int api_acme_accounts(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_acme_account_list(r->kr, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

int api_acme_account(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_acme_account_get(r->kr, r->params[0], &doc, NULL, &r->err);
    return api_done(r, rc, 200, doc);
}

int api_acme_certs(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_acme_cert_list(r->kr, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

int api_acme_cert(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_acme_cert_show(r->kr, r->params[0], &doc, &r->err);
    return api_done(r, rc, 200, doc);
}
