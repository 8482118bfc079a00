/*
 * cmd_verify.c — "tlsgate verify LEAF …": parse, call the keyring, print the chain and the
 * verdict. Exit 0 when the certificate is valid, 1 when it is not (a verdict, not an error:
 * nothing on standard error); a file that cannot be read or decoded fails as usual.
 */
#include "opts.h"

#include <stdio.h>
#include <string.h>

static void print_verify(json_t *doc)
{
    json_t *chain = json_object_get(doc, "chain");
    size_t i;
    json_t *c;
    if (json_array_size(chain) > 0) puts("Chain:");
    json_array_foreach(chain, i, c)
    {
        char *expires = cli_time_text(c, "not_after");
        printf("  %zu  subject: %s | issuer: %s | expires: %s%s\n", i,
               json_string_value(json_object_get(c, "subject")),
               json_string_value(json_object_get(c, "issuer")), expires ? expires : "-",
               json_is_true(json_object_get(c, "trust_anchor")) ? " (trust anchor)" : "");
        free(expires);
    }
    printf("Verdict: %s: %s\n", json_string_value(json_object_get(doc, "verdict")),
           json_string_value(json_object_get(doc, "reason")));
}

const cli_sub verify_cmd = {
    "verify",
    O_VERIFY,
    NULL,
    "LEAF",
    "check a certificate's path and host name, browser-strict (exit 1: invalid)",
    "verify www.pem --ca-file root.pem --chain intermediate.pem --host www.example.com"};

int cmd_verify(cli *c, int argc, char **argv)
{
    opts o;
    tg_input *leaf_in = NULL, *chain_in = NULL, *ca_in = NULL;
    tg_verify_opts *v = &o.verify;
    int rc = opts_parse(c, argc, argv, verify_cmd.allowed, &o);
    if (rc != 0) goto end;
    if (o.nargs > 1) {
        rc = cli_usage(c,
                       "verify takes one certificate file (give the others with --chain or "
                       "--ca-file), not '%s' too",
                       o.args[1]);
        goto end;
    }
    /* the files are read first; the keyring judges what was given */
    if ((o.nargs == 1 &&
         (rc = cli_inputs_read(c, o.args, 1, "the certificate to verify", &leaf_in)) != 0) ||
        (rc = cli_inputs_read(c, (char *const *)o.chains, v->nchains, "--chain", &chain_in)) != 0 ||
        (rc = cli_inputs_read(c, (char *const *)o.cas, v->ncas, "--ca-file", &ca_in)) != 0)
        goto end;
    v->leaf = leaf_in;
    v->chains = chain_in;
    v->cas = ca_in;
    json_t *doc = NULL;
    /* verifying against files needs no store; a trust store does (with files too, the
     * keyring refuses the pair before it would look at the store) */
    int need = v->truststore != NULL && v->ncas == 0;
    tg_keyring *kr = need ? cli_open(c) : NULL;
    if (need && kr == NULL) {
        rc = c->err.code;
        goto end;
    }
    rc = tg_keyring_verify(kr, v, &doc, &c->err);
    tg_keyring_close(kr);
    if (rc == 0) {
        int valid = strcmp(json_string_value(json_object_get(doc, "verdict")), "valid") == 0;
        cli_emit(c, doc, print_verify);
        rc = valid ? 0 : 1;
    }
end:
    cli_inputs_free(leaf_in, leaf_in ? 1 : 0);
    cli_inputs_free(chain_in, chain_in ? v->nchains : 0);
    cli_inputs_free(ca_in, ca_in ? v->ncas : 0);
    opts_free(&o);
    return rc;
}
