/*
 * trust.c — trust stores (C4) and verify (C5) through the API (docs/api.md): the keyring
 * calls of src/cli/cmd_truststore.c and cmd_verify.c, with JSON members named as the
 * CLI's options and verify's files as an upload.
 */
#include "api_int.h"

#include <stdlib.h>
#include <string.h>

int api_ts_create(api_req *r)
{
    static const char *const allowed[] = {"name", "description", "include_defaults", NULL};
    const char *name = NULL, *description = NULL;
    int include_defaults = 0;
    int rc = api_members_only(r, allowed);
    if (rc == 0) rc = api_member_str(r, "name", 1, &name);
    if (rc == 0) rc = api_member_str(r, "description", 0, &description);
    if (rc == 0) rc = api_member_bool(r, "include_defaults", &include_defaults);
    json_t *doc = NULL;
    if (rc == 0)
        rc = tg_keyring_ts_create(r->kr, name, description, include_defaults, &doc, &r->err);
    return api_done(r, rc, 201, doc);
}

/* truststore add|remove NAME CA...: {"ca": [names]} */
static int ts_change(api_req *r, int add)
{
    static const char *const allowed[] = {"ca", NULL};
    const char **cas = NULL;
    size_t n = 0;
    int rc = api_members_only(r, allowed);
    if (rc == 0) rc = api_member_strs(r, "ca", &cas, &n);
    if (rc == 0 && n == 0)
        rc = api_fail(r, TG_E_USAGE, "ca", "%s needs at least one CA name in 'ca'",
                      add ? "adding to a trust store" : "removing from a trust store");
    /* the audit row's detail, as the CLI's: the other arguments */
    json_t *names = json_object_get(r->json, "ca");
    if (json_is_array(names)) r->detail = json_pack("{s:O}", "args", names);
    json_t *doc = NULL;
    if (rc == 0)
        rc = tg_keyring_ts_change(r->kr, r->params[0], (const char *const *)cas, n, add, &doc,
                                  &r->err);
    free(cas);
    return api_done(r, rc, 200, doc);
}

int api_ts_add(api_req *r)
{
    return ts_change(r, 1);
}

int api_ts_remove(api_req *r)
{
    return ts_change(r, 0);
}

int api_ts_delete(api_req *r)
{
    int rc = tg_keyring_ts_delete(r->kr, r->params[0], &r->err);
    return api_done(r, rc, 200, json_pack("{s:s}", "deleted", r->params[0]));
}

int api_ts_update_defaults(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_ts_update_defaults(r->kr, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

/* verify: the leaf as the body (or the part 'file'), 'chain' and 'ca_file' parts, the
 * other options as parts or query parameters. The verdict is the answer, valid or not
 * (the CLI's exit status 1 is a verdict too, not an error). */
int api_verify(api_req *r)
{
    static const char *const files[] = {"file", "chain", "ca_file", NULL};
    static const char *const texts[] = {"host", "at", "purpose", "truststore", NULL};
    api_form f;
    int rc = api_form_read(r, &f, files, texts);
    if (rc != 0) return rc;
    tg_verify_opts v = {0};
    tg_input *leaf = NULL, *chains = NULL, *cas = NULL;
    size_t nleaf = 0;
    rc = api_form_inputs(r, &f, "file", &leaf, &nleaf);
    if (rc == 0) rc = api_form_inputs(r, &f, "chain", &chains, &v.nchains);
    if (rc == 0) rc = api_form_inputs(r, &f, "ca_file", &cas, &v.ncas);
    if (rc == 0) rc = api_form_text(r, &f, "host", &v.host);
    if (rc == 0) rc = api_form_text(r, &f, "at", &v.at);
    if (rc == 0) rc = api_form_text(r, &f, "purpose", &v.purpose);
    if (rc == 0) rc = api_form_text(r, &f, "truststore", &v.truststore);
    if (rc == 0 && nleaf > 1)
        rc = api_fail(r, TG_E_USAGE, "file",
                      "verify takes one certificate file (give the others as 'chain' or "
                      "'ca_file'), not %zu",
                      nleaf);
    v.leaf = nleaf ? leaf : NULL;
    v.chains = chains;
    v.cas = cas;
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_verify(r->kr, &v, &doc, &r->err);
    free(leaf);
    free(chains);
    free(cas);
    api_form_free(&f);
    return api_done(r, rc, 200, doc);
}
