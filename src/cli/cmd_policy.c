/*
 * cmd_policy.c — "tlsgate policy …" (decryption policies and the default never-decrypt
 * list) and "tlsgate category …" (the domain-to-category map), issue 9 item 5. Read the
 * files, call the keyring, print; every rule is the keyring's.
 */
#include "opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int one(cli *c, const opts *o, const char *group, const char *what, const char *arg)
{
    if (o->nargs != 1) return cli_usage(c, "%s %s needs exactly one %s", group, what, arg);
    return 0;
}

/* An input file, whole (bounded by max, regular files only: tg_file_read). */
static int read_input(cli *c, const char *path, size_t max, char **data, size_t *len)
{
    unsigned char *buf = NULL;
    int rc = cli_read(path, "the input file", max, &buf, len, &c->err);
    *data = (char *)buf;
    return rc;
}

/* An export: --out is required ("-" is standard output). */
static int write_export(cli *c, const opts *o, const char *text, size_t len, const char *name,
                        const char *what)
{
    int rc = cli_write_out(c, o->out, (const unsigned char *)text, len, 0644, o->force);
    if (rc == 0 && strcmp(o->out, "-") != 0) {
        if (c->json)
            cli_emit_export(c, name, o->out, len);
        else
            printf("Exported %s to %s\n", what, o->out);
    }
    return rc;
}

/* ---- policies ---- */

static int pol_create(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "policy", "create", "policy name") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_policy_create(kr, o->args[0], &o->policy, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_policy_doc);
    return rc;
}

static int pol_set(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "policy", "set", "policy name") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_policy_set(kr, o->args[0], &o->policy, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_policy_doc);
    return rc;
}

static int pol_show(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "policy", "show", "policy name") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_policy_show(kr, o->args[0], &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_policy_doc);
    return rc;
}

static int pol_list(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "policy list takes no arguments");
    json_t *rows = NULL;
    int rc = tg_keyring_policy_list(kr, &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, print_policy_table);
    return rc;
}

static int pol_delete(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "policy", "delete", "policy name") != 0) return TG_E_USAGE;
    int rc = tg_keyring_policy_delete(kr, o->args[0], &c->err);
    if (rc == 0 && !c->json) printf("Deleted policy '%s'\n", o->args[0]);
    return rc;
}

static int pol_export(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "policy", "export", "policy name") != 0) return TG_E_USAGE;
    if (o->out == NULL) return cli_usage(c, "policy export needs --out FILE (- for the terminal)");
    int rc = cli_out_check(c, o->out, o->force);
    char *text = NULL;
    size_t len = 0;
    if (rc == 0) rc = tg_keyring_policy_export(kr, o->args[0], &text, &len, &c->err);
    if (rc == 0) {
        char what[200];
        snprintf(what, sizeof(what), "policy '%s'", o->args[0]);
        rc = write_export(c, o, text, len, o->args[0], what);
    }
    free(text);
    return rc;
}

static int pol_import(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "policy", "import", "file") != 0) return TG_E_USAGE;
    char *data = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    int rc = read_input(c, o->args[0], TG_FILE_MAX, &data, &len);
    if (rc == 0) rc = tg_keyring_policy_import(kr, data, len, o->name, o->replace, &doc, &c->err);
    free(data);
    if (rc == 0) cli_emit(c, doc, print_policy_doc);
    return rc;
}

/* ---- the default never-decrypt list ---- */

static int def_show(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "policy defaults show takes no arguments");
    json_t *doc = NULL;
    int rc = tg_keyring_defaults_show(kr, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_defaults_doc);
    return rc;
}

static int def_export(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "policy defaults export takes no arguments but --out");
    if (o->out == NULL)
        return cli_usage(c, "policy defaults export needs --out FILE (- for the terminal)");
    int rc = cli_out_check(c, o->out, o->force);
    char *text = NULL;
    size_t len = 0;
    if (rc == 0) rc = tg_keyring_defaults_export(kr, &text, &len, &c->err);
    if (rc == 0) rc = write_export(c, o, text, len, NULL, "the default never-decrypt list");
    free(text);
    return rc;
}

static int def_import(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "policy defaults", "import", "file") != 0) return TG_E_USAGE;
    char *data = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    int rc = read_input(c, o->args[0], TG_FILE_MAX, &data, &len);
    if (rc == 0) rc = tg_keyring_defaults_import(kr, data, len, &doc, &c->err);
    free(data);
    if (rc == 0) cli_emit(c, doc, print_defaults_doc);
    return rc;
}

static int def_reset(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "policy defaults reset takes no arguments");
    json_t *doc = NULL;
    int rc = tg_keyring_defaults_reset(kr, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_defaults_doc);
    return rc;
}

static const cli_sub defaults[] = {
    {"show", 0, def_show, "", "the default never-decrypt list", "policy defaults show"},
    {"export", O_OUT | O_FORCE, def_export, "", "write the default list as JSON",
     "policy defaults export --out defaults.json"},
    {"import", 0, def_import, "FILE", "replace the default list",
     "policy defaults import defaults.json"},
    {"reset", 0, def_reset, "", "back to the built-in default list", "policy defaults reset"},
};
static const cli_group defaults_group = CLI_GROUP(defaults);

static const cli_sub subs[] = {
    {"create", O_POLICY | O_DESCRIPTION, pol_create, "NAME",
     "a decryption policy: what a client proxy never (or always) decrypts",
     "policy create strict --never-domain bank.example --never-category health"},
    {"set", O_POLICYSET | O_DESCRIPTION, pol_set, "NAME",
     "change a policy: removals first, then additions",
     "policy set strict --add-never-domain mail.example --no-defaults"},
    {"show", 0, pol_show, "NAME", "one policy", "policy show strict"},
    {"list", 0, pol_list, "", "the policies", "policy list"},
    {"delete", 0, pol_delete, "NAME", "delete a policy", "policy delete strict"},
    {"export", O_OUT | O_FORCE, pol_export, "NAME", "write a policy as JSON",
     "policy export strict --out strict.json"},
    {"import", O_NAME | O_REPLACE, pol_import, "FILE", "import a policy written by export",
     "policy import strict.json --name strict-2"},
    {"defaults", 0, NULL, "", "the default never-decrypt list every policy includes", NULL,
     &defaults_group},
};
const cli_group policy_group = CLI_GROUP(subs);

int cmd_policy(cli *c, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "defaults") == 0) {
        static char group[] = "policy defaults"; /* how the shared dispatcher names it */
        argv[1] = group;
        return cli_dispatch(c, argc - 1, argv + 1, defaults, defaults_group.n);
    }
    /* (the last entry, defaults, is a kind: handled above) */
    return cli_dispatch(c, argc, argv, subs, policy_group.n - 1);
}

/* ---- categories ---- */

static int cat_import(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "category", "import", "file") != 0) return TG_E_USAGE;
    char *data = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    int rc = read_input(c, o->args[0], TG_CATEGORY_FILE_MAX, &data, &len);
    if (rc == 0) rc = tg_keyring_categories_import(kr, data, len, o->replace, &doc, &c->err);
    free(data);
    if (rc == 0) cli_emit(c, doc, print_category_import);
    return rc;
}

static int cat_list(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "category list takes no arguments");
    json_t *rows = NULL;
    int rc = tg_keyring_categories_list(kr, &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, print_category_table);
    return rc;
}

static int cat_show(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "category", "show", "host name") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_category_show(kr, o->args[0], &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_category_doc);
    return rc;
}

static int cat_clear(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "category clear takes no arguments");
    json_t *doc = NULL;
    int rc = tg_keyring_categories_clear(kr, &doc, &c->err);
    if (rc == 0 && !c->json)
        printf("Removed %lld domain(s) from the category map\n",
               (long long)json_integer_value(json_object_get(doc, "removed")));
    cli_emit(c, doc, NULL);
    return rc;
}

static const cli_sub cat_subs[] = {
    {"import", O_REPLACE, cat_import, "FILE", "import a domain-to-category map",
     "category import categories.csv --replace"},
    {"list", 0, cat_list, "", "the categories and their domain counts", "category list"},
    {"show", 0, cat_show, "HOST", "the category of a host", "category show www.example.com"},
    {"clear", 0, cat_clear, "", "forget every category", "category clear"},
};
const cli_group category_group = CLI_GROUP(cat_subs);

int cmd_category(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, argc, argv, cat_subs, category_group.n);
}
