/*
 * cmd_config.c — "tlsgate config show": the configuration as one readable document
 * (SPEC M4), with what a running serve listens on. Built by the keyring
 * (tg_keyring_config), the same document the API can serve.
 */
#include "opts.h"

#include <stdio.h>
#include <string.h>

int cmd_config(cli *c, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "show") != 0)
        return cli_usage(c, "config needs a subcommand: config show [--json]");
    opts o;
    int rc = opts_parse(c, argc - 1, argv + 1, 0, &o);
    if (rc == 0 && o.nargs != 0) rc = cli_usage(c, "config show takes no arguments");
    tg_keyring *kr = rc == 0 ? cli_open(c) : NULL;
    if (rc == 0 && kr == NULL) rc = c->err.code;
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_config(kr, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_config);
    tg_keyring_close(kr);
    opts_free(&o);
    return rc;
}
