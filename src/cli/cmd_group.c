/*
 * cmd_group.c — "tlsgate group …": user groups, which limit the proxies and policies their
 * users may change (issue 10, M3; README "Users and audit", "Groups"). Every rule is the
 * keyring's; a group allows all but what it denies.
 */
#include "opts.h"

#include <stdio.h>
#include <string.h>

/* The group's name is an argument, not an option: no option is added to its sentence. */
static int positional(cli *c, int rc)
{
    if (rc != 0 && (strcmp(c->err.field, "name") == 0 || strcmp(c->err.field, "group") == 0))
        c->err.field[0] = '\0';
    return rc;
}

static int one(cli *c, const opts *o, const char *what)
{
    if (o->nargs != 1) return cli_usage(c, "group %s needs exactly one group name", what);
    return 0;
}

static int group_create(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "create") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_group_create(kr, o->args[0], &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_group_doc);
    return positional(c, rc);
}

static int group_delete(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "delete") != 0) return TG_E_USAGE;
    int rc = tg_keyring_group_delete(kr, o->args[0], &c->err);
    if (rc == 0 && !c->json)
        printf("Deleted the group '%s'; its users are in no group now\n", o->args[0]);
    if (rc == 0 && c->json) printf("{\"deleted\": true}\n");
    return positional(c, rc);
}

static int group_list(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "group list takes no arguments");
    json_t *rows = NULL;
    int rc = tg_keyring_group_list(kr, &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, print_group_table);
    return rc;
}

static int group_show(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "show") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_group_show(kr, o->args[0], &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_group_doc);
    return positional(c, rc);
}

static int set_denied(cli *c, tg_keyring *kr, opts *o, int deny)
{
    const char *what = deny ? "deny" : "allow";
    if (one(c, o, what) != 0) return TG_E_USAGE;
    if ((o->gproxy != NULL) == (o->gpolicy != NULL))
        return cli_usage(c, "group %s needs --proxy NAME or --policy NAME (one of them)", what);
    json_t *doc = NULL;
    int rc = tg_keyring_group_deny(kr, o->args[0], o->gproxy ? "proxy" : "policy",
                                   o->gproxy ? o->gproxy : o->gpolicy, deny, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_group_doc);
    return positional(c, rc);
}

static int group_deny(cli *c, tg_keyring *kr, opts *o)
{
    return set_denied(c, kr, o, 1);
}

static int group_allow(cli *c, tg_keyring *kr, opts *o)
{
    return set_denied(c, kr, o, 0);
}

static const cli_sub subs[] = {
    {"create", 0, group_create, "NAME", "create a user group", "group create ops"},
    {"delete", 0, group_delete, "NAME", "delete a user group", "group delete ops"},
    {"list", 0, group_list, "", "the user groups", "group list"},
    {"show", 0, group_show, "NAME", "one group and what it may not change", "group show ops"},
    {"deny", O_GROUPOBJ, group_deny, "NAME",
     "the group's users may not change this proxy or policy", "group deny ops --proxy office"},
    {"allow", O_GROUPOBJ, group_allow, "NAME", "lift a deny", "group allow ops --policy strict"},
};
const cli_group group_group = CLI_GROUP(subs);

int cmd_group(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, argc, argv, subs, sizeof(subs) / sizeof(subs[0]));
}
