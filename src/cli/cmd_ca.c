/*
 * cmd_ca.c — "tlsgate ca …": CA certificates on their own (C3) and rollover (K10).
 */
#include "opts.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int one(cli *c, const opts *o, const char *what)
{
    if (o->nargs != 1) return cli_usage(c, "ca %s needs exactly one CA name", what);
    return 0;
}

static tg_import import_of(const opts *o, cli_pass *pass, const tg_input *in, size_t n)
{
    return (tg_import){.inputs = in,
                       .ninputs = n,
                       .name = o->name,
                       .pass = cli_pass_init(pass, o->passfile, "Password for the file: ", 0),
                       .no_export = o->spec.no_export};
}

static int ca_import(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs < 1) return cli_usage(c, "ca import needs at least one file");
    cli_pass pass;
    tg_input *in = NULL;
    int rc = cli_inputs_read(c, o->args, (size_t)o->nargs, "a CA file", &in);
    if (rc != 0) return rc;
    tg_import imp = import_of(o, &pass, in, (size_t)o->nargs);
    json_t *doc = NULL;
    cli_progress_attach(c, &imp);
    rc = tg_keyring_ca_import(kr, &imp, &doc, &c->err);
    cli_progress_end(&imp);
    if (rc == 0) cli_emit(c, doc, print_import);
    cli_inputs_free(in, (size_t)o->nargs);
    return rc;
}

static int ca_list(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "ca list takes no arguments");
    return cli_cert_list(c, kr, o, 1);
}

static int ca_show(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "show") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_ca_show(kr, o->args[0], &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_cert_doc);
    return rc;
}

static int ca_export(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "export") != 0) return TG_E_USAGE;
    return cli_ca_export(c, kr, o);
}

static int ca_replace(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 2) return cli_usage(c, "ca replace needs a CA name and a file");
    cli_pass pass;
    tg_input *in = NULL;
    int rc = cli_inputs_read(c, &o->args[1], 1, "the CA file", &in);
    if (rc != 0) return rc;
    tg_import imp = import_of(o, &pass, in, 1);
    json_t *doc = NULL;
    rc = tg_keyring_ca_replace(kr, o->args[0], &imp, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_import);
    cli_inputs_free(in, 1);
    return rc;
}

static int ca_delete(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "delete") != 0) return TG_E_USAGE;
    int rc = tg_keyring_ca_delete(kr, o->args[0], &c->err);
    if (rc == 0 && !c->json) printf("Deleted CA certificate '%s'\n", o->args[0]);
    return rc;
}

static int ca_reissue(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "reissue") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_ca_reissue(kr, o->args[0], o->spec.days_set ? o->spec.days : TG_DAYS_NONE,
                                   o->name, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_cert_doc);
    return rc;
}

static int ca_rollover_plan(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "ca rollover-plan takes no arguments");
    json_t *rows = NULL;
    int rc = tg_keyring_rollover_plan(kr, (long long)time(NULL), &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, print_rollover_plan);
    return rc;
}

static int ca_rollover_lead(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1)
        return cli_usage(c, "ca rollover-lead needs a number of days (0 turns automatic "
                            "rollover off)");
    char *end;
    errno = 0;
    long v = strtol(o->args[0], &end, 10);
    if (errno != 0 || end == o->args[0] || *end != '\0' || v < INT_MIN || v > INT_MAX)
        v = -1; /* the keyring's sentence for any value out of range */
    json_t *doc = NULL;
    int rc = tg_keyring_rollover_lead_set(kr, (int)v, &doc, &c->err);
    if (rc != 0) c->err.field[0] = '\0'; /* DAYS is an argument here, not --days */
    if (rc == 0 && c->json)
        cli_emit(c, doc, NULL);
    else if (rc == 0) {
        if (v == 0)
            printf("Automatic CA rollover is off\n");
        else
            printf("CA certificates are reissued %ld days before they expire\n", v);
        json_decref(doc);
    }
    return rc;
}

static const cli_sub subs[] = {
    {"import", O_NAME | O_PASSFILE | O_NOEXPORT, ca_import, "FILE...",
     "import CA certificates (the root before the chain)",
     "ca import root.pem --name example-root"},
    {"list", O_LISTX, ca_list, "", "the CA certificates table", "ca list --wide"},
    {"show", 0, ca_show, "NAME", "everything about one CA certificate", "ca show example-root"},
    {"export", O_FORMAT | O_WITHKEY | O_WITHCHAIN | O_PASSFILE | O_OUT | O_EXPORTX | O_FORCE,
     ca_export, "NAME", "write a CA certificate (or its key) to a file",
     "ca export example-root --format pem --out root.pem"},
    {"replace", O_PASSFILE | O_NOEXPORT, ca_replace, "NAME FILE", "put FILE in NAME's place",
     "ca replace example-root new-root.pem"},
    {"delete", 0, ca_delete, "NAME", "delete a CA certificate (refused while referenced)",
     "ca delete example-root"},
    {"reissue", O_DAYS | O_NAME, ca_reissue, "NAME",
     "root CA rollover: the same key, subject and extensions, a new validity",
     "ca reissue example-root --days 3650 --name example-root-2"},
    {"rollover-plan", 0, ca_rollover_plan, "", "every CA's dates and automatic rollover",
     "ca rollover-plan"},
    {"rollover-lead", 0, ca_rollover_lead, "DAYS",
     "reissue CAs this long before they expire (0: off)", "ca rollover-lead 365"},
};
const cli_group ca_group = CLI_GROUP(subs);

int cmd_ca(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, argc, argv, subs, sizeof(subs) / sizeof(subs[0]));
}
