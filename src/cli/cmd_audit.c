/*
 * cmd_audit.c — "tlsgate audit": the audit log, newest first (issue 10, M3). Reading it
 * is not itself recorded (it changes nothing and exports no object).
 */
#include "opts.h"

#include <stdio.h>

const cli_sub audit_cmd = {"audit",
                           O_AUDIT,
                           NULL,
                           "",
                           "the audit log, newest first",
                           "audit --since 2026-01-01T00:00:00Z --limit 50"};

int cmd_audit(cli *c, int argc, char **argv)
{
    opts o;
    int rc = opts_parse(c, argc, argv, audit_cmd.allowed, &o);
    if (rc == 0 && o.nargs != 0) rc = cli_usage(c, "audit takes no arguments, only options");
    tg_audit_filter f = {.limit = o.limit, .offset = o.offset};
    if (rc == 0 && o.since != NULL) rc = tg_keyring_time_parse(o.since, "since", &f.since, &c->err);
    tg_keyring *kr = rc == 0 ? cli_open(c) : NULL;
    if (rc == 0 && kr == NULL) rc = c->err.code;
    json_t *rows = NULL;
    if (rc == 0) rc = tg_keyring_audit_list(kr, &f, &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, print_audit_table);
    tg_keyring_close(kr);
    opts_free(&o);
    return rc;
}
