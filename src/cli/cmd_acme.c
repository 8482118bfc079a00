/*
 * cmd_acme.c — "tlsgate acme …": ACME accounts and the certificates ACME keeps (issue 11,
 * E5; README "ACME"). The protocol and the rules are src/enroll's and the keyring's; here
 * are the files read, the options and the printing.
 */
#include "opts.h"
#include "../enroll/enroll.h"

#include <stdio.h>
#include <string.h>

/* The name is an argument, not an option: no option is added to its sentence. */
static int positional(cli *c, int rc)
{
    if (rc != 0 && strcmp(c->err.field, "name") == 0) c->err.field[0] = '\0';
    return rc;
}

/* The same for an account named by an argument (account show, delete). */
static int positional_account(cli *c, int rc)
{
    if (rc != 0 && strcmp(c->err.field, "account") == 0) c->err.field[0] = '\0';
    return positional(c, rc);
}

static const char *str(json_t *doc, const char *key)
{
    const char *s = json_string_value(json_object_get(doc, key));
    return s ? s : "-";
}

static void print_kv(json_t *doc, const char *const *keys)
{
    for (size_t i = 0; keys[i]; i++) {
        json_t *v = json_object_get(doc, keys[i]);
        if (v == NULL || json_is_null(v)) continue;
        if (json_is_string(v))
            printf("%-14s %s\n", keys[i], json_string_value(v));
        else if (json_is_integer(v))
            printf("%-14s %lld\n", keys[i], (long long)json_integer_value(v));
        else {
            char *t = json_dumps(v, JSON_COMPACT);
            printf("%-14s %s\n", keys[i], t ? t : "");
            free(t);
        }
    }
}

static void print_account(json_t *doc)
{
    static const char *const keys[] = {"name",    "directory",         "url",     "email",
                                       "eab_kid", "certificate_count", "created", NULL};
    print_kv(doc, keys);
}

static void print_accounts(json_t *rows)
{
    json_t *r;
    size_t i;
    printf("%-20s %-50s %s\n", "NAME", "DIRECTORY", "CERTIFICATES");
    json_array_foreach(rows, i, r)
    {
        printf("%-20s %-50s %lld\n", str(r, "name"), str(r, "directory"),
               (long long)json_integer_value(json_object_get(r, "certificate_count")));
    }
}

static void print_cert(json_t *doc)
{
    static const char *const keys[] = {
        "name",     "account",       "domains",    "challenge", "profile",
        "state",    "failure_count", "last_error", "issued",    "not_after",
        "renew_at", "next_try",      "ari",        "replaced",  NULL};
    print_kv(doc, keys);
}

static void print_certs(json_t *rows)
{
    json_t *r;
    size_t i;
    printf("%-24s %-16s %-12s %-8s %s\n", "NAME", "STATE", "CHALLENGE", "FAILURES", "DOMAINS");
    json_array_foreach(rows, i, r)
    {
        char *d = json_dumps(json_object_get(r, "domains"), JSON_COMPACT);
        printf("%-24s %-16s %-12s %-8lld %s\n", str(r, "name"), str(r, "state"),
               str(r, "challenge"),
               (long long)json_integer_value(json_object_get(r, "failure_count")), d ? d : "");
        free(d);
    }
}

/* ---- accounts ---- */

static int account_create(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "acme account create takes no arguments (--name N)");
    if (o->directory == NULL) return cli_usage(c, "acme account create needs --directory URL");
    if ((o->eab_kid == NULL) != (o->eab_hmac_file == NULL))
        return cli_usage(c, "--eab-kid and --eab-hmac-file go together");
    unsigned char *ca = NULL, *hmac_text = NULL, *hmac = NULL;
    size_t calen = 0, hlen = 0, keylen = 0;
    int rc = 0;
    if (o->directory_ca)
        rc = cli_read(o->directory_ca, "--directory-ca", TG_FILE_MAX, &ca, &calen, &c->err);
    if (rc == 0 && o->eab_hmac_file &&
        (rc = cli_read(o->eab_hmac_file, "--eab-hmac-file", 4096, &hmac_text, &hlen, &c->err)) == 0)
        rc = tg_acme_eab_key((const char *)hmac_text, &hmac, &keylen, &c->err);
    json_t *doc = NULL;
    if (rc == 0) {
        tg_acme_account_opts ao = {.name = o->name,
                                   .directory = o->directory,
                                   .directory_ca = (const char *)ca,
                                   .email = o->spec.subject.email,
                                   .eab_kid = o->eab_kid,
                                   .eab_hmac = hmac,
                                   .eab_hmac_len = keylen};
        rc = tg_acme_account_create(kr, &ao, &doc, &c->err);
    }
    if (rc == 0) cli_emit(c, doc, print_account);
    free(ca);
    tg_free_secret(hmac_text, hlen);
    tg_free_secret(hmac, keylen);
    return rc;
}

static int account_list(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "acme account list takes no arguments");
    json_t *rows = NULL;
    int rc = tg_keyring_acme_account_list(kr, &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, print_accounts);
    return rc;
}

static int account_show(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1) return cli_usage(c, "acme account show needs one account name");
    json_t *doc = NULL;
    int rc = tg_keyring_acme_account_get(kr, o->args[0], &doc, NULL, &c->err);
    if (rc == 0) cli_emit(c, doc, print_account);
    return positional_account(c, rc);
}

static int account_delete(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1) return cli_usage(c, "acme account delete needs one account name");
    int rc = tg_keyring_acme_account_delete(kr, o->args[0], &c->err);
    if (rc == 0 && !c->json) printf("Deleted the ACME account '%s'\n", o->args[0]);
    if (rc == 0 && c->json) printf("{\"deleted\": true}\n");
    return positional_account(c, rc);
}

/* ---- certificates ---- */

static int acme_order_cmd(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1) return cli_usage(c, "acme order needs the certificate's name");
    if (o->ndomains == 0) return cli_usage(c, "acme order needs at least one --domain");
    const char *hook[1] = {o->dns_hook};
    tg_acme_order_opts ao = {.name = o->args[0],
                             .account = o->account,
                             .domains = o->domains,
                             .ndomains = (size_t)o->ndomains,
                             .challenge = o->challenge,
                             .dns_hook = hook,
                             .ndns_hook = o->dns_hook ? 1 : 0,
                             .profile = o->acme_profile};
    json_t *doc = NULL;
    int rc = tg_acme_order(kr, &ao, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_cert);
    return positional(c, rc);
}

static int acme_renew_cmd(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1) return cli_usage(c, "acme renew needs the certificate's name");
    json_t *doc = NULL;
    int rc = tg_acme_renew(kr, o->args[0], &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_cert);
    return positional(c, rc);
}

static int acme_list_cmd(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "acme list takes no arguments");
    json_t *rows = NULL;
    int rc = tg_keyring_acme_cert_list(kr, &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, print_certs);
    return rc;
}

static int acme_show_cmd(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1) return cli_usage(c, "acme show needs the certificate's name");
    json_t *doc = NULL;
    int rc = tg_keyring_acme_cert_show(kr, o->args[0], &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_cert);
    return positional(c, rc);
}

static int acme_delete_cmd(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1) return cli_usage(c, "acme delete needs the certificate's name");
    int rc = tg_keyring_acme_cert_delete(kr, o->args[0], &c->err);
    if (rc == 0 && !c->json)
        printf("ACME no longer renews '%s' (the certificate stays in the keyring)\n", o->args[0]);
    if (rc == 0 && c->json) printf("{\"deleted\": true}\n");
    return positional(c, rc);
}

static const cli_sub accounts[] = {
    {"create", O_ACME | O_NAME, account_create, "", "register an account with an ACME directory",
     "acme account create --directory https://acme.example/directory --email ops@example.com"},
    {"list", 0, account_list, "", "the ACME accounts", "acme account list"},
    {"show", 0, account_show, "NAME", "one ACME account", "acme account show default"},
    {"delete", 0, account_delete, "NAME", "forget an ACME account", "acme account delete default"},
};
static const cli_group accounts_group = CLI_GROUP(accounts);

static const cli_sub subs[] = {
    {"order", O_ACMEORD, acme_order_cmd, "NAME",
     "order a certificate now (serve answers the challenges and renews it)",
     "acme order www --domain www.example.com --challenge http-01"},
    {"renew", 0, acme_renew_cmd, "NAME", "renew an ACME certificate now", "acme renew www"},
    {"list", 0, acme_list_cmd, "", "the certificates ACME renews", "acme list"},
    {"show", 0, acme_show_cmd, "NAME", "one ACME certificate's order", "acme show www"},
    {"delete", 0, acme_delete_cmd, "NAME", "ACME no longer renews it (the certificate stays)",
     "acme delete www"},
    {"account", 0, NULL, "", "ACME accounts", NULL, &accounts_group},
};
const cli_group acme_group = CLI_GROUP(subs);

int cmd_acme(cli *c, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "account") == 0) {
        char *av[argc];
        av[0] = "acme account";
        for (int i = 2; i < argc; i++)
            av[i - 1] = argv[i];
        av[argc - 1] = NULL;
        return cli_dispatch(c, argc - 1, av, accounts, accounts_group.n);
    }
    /* (the last entry, account, is a kind: handled above) */
    return cli_dispatch(c, argc, argv, subs, acme_group.n - 1);
}
