/*
 * cmd_verify.c — "tlsgate verify LEAF …": parse, call the keyring, print the chain and the
 * verdict. Exit 0 when the certificate is valid, 1 when it is not (a verdict, not an error:
 * nothing on standard error); a file that cannot be read or decoded fails as usual.
 */
#include "cli_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { V_CHAIN = 256, V_CA, V_HOST, V_AT, V_PURPOSE, V_JSON, V_HOME, V_TS };

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

static int parse_time(cli *c, const char *v, long long *out)
{
    char *end;
    errno = 0;
    long long t = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || errno != 0)
        return cli_usage(c, "--at needs a time in seconds since 1970 (UNIX time), not '%s'", v);
    *out = t;
    return 0;
}

int cmd_verify(cli *c, int argc, char **argv)
{
    static const struct option longs[] = {
        {"chain", required_argument, NULL, V_CHAIN},
        {"ca-file", required_argument, NULL, V_CA},
        {"host", required_argument, NULL, V_HOST},
        {"at", required_argument, NULL, V_AT},
        {"purpose", required_argument, NULL, V_PURPOSE},
        {"json", no_argument, NULL, V_JSON},
        {"home", required_argument, NULL, V_HOME},
        {"truststore", required_argument, NULL, V_TS},
        {NULL, 0, NULL, 0},
    };
    char **chains = calloc((size_t)argc + 1, sizeof(*chains));
    char **cas = calloc((size_t)argc + 1, sizeof(*cas));
    char *leaf = NULL;
    size_t nchains = 0, ncas = 0;
    tg_input *leaf_in = NULL, *chain_in = NULL, *ca_in = NULL;
    tg_verify_opts o = {.purpose = TG_PURPOSE_SERVER};
    int rc = 0, nargs = 0;
    if (chains == NULL || cas == NULL) {
        rc = tg_err_set(&c->err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    optind = 0; /* GNU: reinitialise; "-" first keeps positional arguments in order */
    opterr = 0;
    int ch;
    while (rc == 0 && (ch = getopt_long(argc, argv, "-:", longs, NULL)) != -1) {
        switch (ch) {
        case 1:
            if (nargs++ == 0)
                leaf = optarg;
            else
                rc = cli_usage(c,
                               "verify takes one certificate file (give the others with "
                               "--chain or --ca-file), not '%s' too",
                               optarg);
            break;
        case V_CHAIN:
            chains[nchains++] = optarg;
            break;
        case V_CA:
            cas[ncas++] = optarg;
            break;
        case V_HOST:
            if (optarg[0] == '\0') rc = cli_usage(c, "--host needs a DNS name or an IP address");
            o.host = optarg;
            break;
        case V_AT:
            rc = parse_time(c, optarg, &o.at);
            o.at_set = 1;
            break;
        case V_PURPOSE:
            if (strcmp(optarg, "server") == 0)
                o.purpose = TG_PURPOSE_SERVER;
            else if (strcmp(optarg, "client") == 0)
                o.purpose = TG_PURPOSE_CLIENT;
            else
                rc = cli_usage(c, "--purpose is server or client, not '%s'", optarg);
            break;
        case V_JSON:
            c->json = 1;
            break;
        case V_HOME:
            c->home = optarg;
            break;
        case V_TS:
            o.truststore = optarg;
            break;
        case ':':
            rc = cli_usage(c, "verify: option '%s' needs a value", argv[optind - 1]);
            break;
        default:
            rc = cli_usage(c, "verify: option '%s' is not known here", argv[optind - 1]);
            break;
        }
    }
    if (rc != 0) goto end;
    if (leaf == NULL) {
        rc = cli_usage(c, "verify needs the certificate file to check: tlsgate verify LEAF "
                          "--ca-file FILE");
        goto end;
    }
    if ((ncas == 0) == (o.truststore == NULL)) {
        rc = cli_usage(c, "verify needs the certificates to trust: --truststore NAME or "
                          "--ca-file FILE (one of the two)");
        goto end;
    }
    if ((rc = cli_inputs_read(c, &leaf, 1, &leaf_in)) != 0 ||
        (rc = cli_inputs_read(c, chains, nchains, &chain_in)) != 0 ||
        (rc = cli_inputs_read(c, cas, ncas, &ca_in)) != 0)
        goto end;
    o.leaf = leaf_in;
    o.chains = chain_in;
    o.nchains = nchains;
    o.cas = ca_in;
    o.ncas = ncas;
    json_t *doc = NULL;
    /* verifying against files needs no store; a trust store does */
    tg_keyring *kr = o.truststore ? cli_open(c) : NULL;
    if (o.truststore && kr == NULL) {
        rc = c->err.code;
        goto end;
    }
    rc = tg_keyring_verify(kr, &o, &doc, &c->err);
    tg_keyring_close(kr);
    if (rc == 0) {
        int valid = strcmp(json_string_value(json_object_get(doc, "verdict")), "valid") == 0;
        cli_emit(c, doc, print_verify);
        rc = valid ? 0 : 1;
    }
end:
    cli_inputs_free(leaf_in, leaf_in ? 1 : 0);
    cli_inputs_free(chain_in, chain_in ? nchains : 0);
    cli_inputs_free(ca_in, ca_in ? ncas : 0);
    free(chains);
    free(cas);
    return rc;
}
