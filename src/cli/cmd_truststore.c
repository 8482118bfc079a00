/*
 * cmd_truststore.c — "tlsgate truststore …" (C4) and "tlsgate refresh" (C2).
 */
#include "opts.h"

#include <stdio.h>
#include <string.h>

static int ts_create(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1) return cli_usage(c, "truststore create needs exactly one name");
    json_t *doc = NULL;
    int rc =
        tg_keyring_ts_create(kr, o->args[0], o->description, o->include_defaults, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_ts_doc);
    return rc;
}

static int ts_change(cli *c, tg_keyring *kr, opts *o, int add)
{
    if (o->nargs < 2)
        return cli_usage(c, "truststore %s needs a trust store name and at least one CA name",
                         add ? "add" : "remove");
    json_t *doc = NULL;
    int rc = tg_keyring_ts_change(kr, o->args[0], (const char *const *)&o->args[1],
                                  (size_t)o->nargs - 1, add, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_ts_doc);
    return rc;
}

static int ts_add(cli *c, tg_keyring *kr, opts *o)
{
    return ts_change(c, kr, o, 1);
}

static int ts_remove(cli *c, tg_keyring *kr, opts *o)
{
    return ts_change(c, kr, o, 0);
}

static int ts_list(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "truststore list takes no arguments");
    json_t *rows = NULL;
    int rc = tg_keyring_ts_list(kr, &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, print_ts_table);
    return rc;
}

static int ts_show(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1) return cli_usage(c, "truststore show needs exactly one name");
    json_t *doc = NULL;
    int rc = tg_keyring_ts_show(kr, o->args[0], &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_ts_doc);
    return rc;
}

static int ts_delete(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1) return cli_usage(c, "truststore delete needs exactly one name");
    int rc = tg_keyring_ts_delete(kr, o->args[0], &c->err);
    if (rc == 0 && !c->json) printf("Deleted trust store '%s'\n", o->args[0]);
    return rc;
}

static void print_defaults(json_t *doc)
{
    printf("Loaded %lld CA certificates from %s; %lld certificate statuses changed\n",
           (long long)json_integer_value(json_object_get(doc, "default_ca_count")),
           json_string_value(json_object_get(doc, "source")),
           (long long)json_integer_value(json_object_get(doc, "changed")));
}

static int ts_update_defaults(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "truststore update-defaults takes no arguments");
    json_t *doc = NULL;
    int rc = tg_keyring_ts_update_defaults(kr, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_defaults);
    return rc;
}

static const cli_sub subs[] = {
    {"create", O_TRUST, ts_create, "NAME", "a named set of CA certificates",
     "truststore create corp --description \"corporate roots\" --include-defaults"},
    {"add", 0, ts_add, "NAME CA...", "add CA certificates to a trust store",
     "truststore add corp example-root"},
    {"remove", 0, ts_remove, "NAME CA...", "remove CA certificates from a trust store",
     "truststore remove corp example-root"},
    {"list", 0, ts_list, "", "the trust stores", "truststore list"},
    {"show", 0, ts_show, "NAME", "one trust store and its CA certificates", "truststore show corp"},
    {"delete", 0, ts_delete, "NAME", "delete a trust store", "truststore delete corp"},
    {"update-defaults", 0, ts_update_defaults, "", "reload the system's public roots",
     "truststore update-defaults"},
};
const cli_group truststore_group = CLI_GROUP(subs);

int cmd_truststore(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, argc, argv, subs, sizeof(subs) / sizeof(subs[0]));
}

static void print_refresh(json_t *doc)
{
    printf("Chain status recomputed; %lld certificate(s) changed\n",
           (long long)json_integer_value(json_object_get(doc, "changed")));
}

const cli_sub refresh_cmd = {"refresh", 0, NULL, "", "recompute every certificate's chain status",
                             "refresh"};

int cmd_refresh(cli *c, int argc, char **argv)
{
    opts o;
    int rc = opts_parse(c, argc, argv, refresh_cmd.allowed, &o);
    if (rc == 0 && o.nargs != 0) rc = cli_usage(c, "refresh takes no arguments");
    opts_free(&o);
    if (rc != 0) return rc;
    tg_keyring *kr = cli_open(c);
    if (kr == NULL) return c->err.code;
    json_t *doc = NULL;
    rc = tg_keyring_refresh(kr, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_refresh);
    cli_audit(c, kr, "refresh", NULL, rc, NULL);
    tg_keyring_close(kr);
    return rc;
}
