/*
 * cmd_config.c — "tlsgate config show": the configuration as one readable document
 * (SPEC M4), with what a running serve listens on. Built by the keyring
 * (tg_keyring_config), the same document the API can serve.
 */
#include "opts.h"

#include <stdio.h>
#include <string.h>

static int config_show(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "config show takes no arguments");
    json_t *doc = NULL;
    int rc = tg_keyring_config(kr, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_config);
    return rc;
}

static const cli_sub subs[] = {
    {"show", 0, config_show, "", "the configuration, and what the running serve listens on",
     "config show --json"},
};
const cli_group config_group = CLI_GROUP(subs);

int cmd_config(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, argc, argv, subs, config_group.n);
}
