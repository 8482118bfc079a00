/*
 * cmd_proxy.c — "tlsgate proxy client …": the configuration of client inspection proxies
 * (issue 9). Parse, call the keyring, print; every rule is the keyring's. "proxy server"
 * joins as a second group of the same shape.
 */
#include "opts.h"
#include "../proxy/proxy.h"

#include <stdio.h>
#include <string.h>

static int one(cli *c, const opts *o, const char *what)
{
    if (o->nargs != 1) return cli_usage(c, "proxy client %s needs exactly one proxy name", what);
    return 0;
}

static int client_create(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "create") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_proxy_create(kr, "client", o->args[0], &o->proxy, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_proxy_doc);
    return rc;
}

static int client_set(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "set") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_proxy_set(kr, "client", o->args[0], &o->proxy, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_proxy_doc);
    return rc;
}

static int client_list(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "proxy client list takes no arguments");
    json_t *rows = NULL;
    int rc = tg_keyring_proxy_list(kr, "client", &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, print_proxy_table);
    return rc;
}

static int client_show(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "show") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_proxy_show(kr, "client", o->args[0], &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_proxy_doc);
    return rc;
}

static int client_delete(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "delete") != 0) return TG_E_USAGE;
    int rc = tg_keyring_proxy_delete(kr, "client", o->args[0], &c->err);
    if (rc == 0 && !c->json) printf("Deleted client proxy '%s'\n", o->args[0]);
    return rc;
}

/* What the running serve counts (it writes them once a second): not the store's. */
static int proxy_stats(cli *c, tg_keyring *kr, opts *o)
{
    (void)kr;
    if (o->nargs > 1) return cli_usage(c, "proxy stats takes at most one proxy name");
    json_t *doc = NULL;
    int rc = tg_proxy_stats_read(cli_home(c), o->nargs ? o->args[0] : NULL, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_proxy_stats);
    return rc;
}

static const cli_sub client[] = {
    {"create", O_PROXY | O_DESCRIPTION, client_create, "NAME",
     "a client inspection proxy's configuration",
     "proxy client create office --signing inspect-ca --truststore corp --listen 0.0.0.0:3128"},
    {"list", 0, client_list, "", "the client proxies", "proxy client list"},
    {"show", 0, client_show, "NAME", "one client proxy", "proxy client show office"},
    {"set", O_PROXY | O_DESCRIPTION, client_set, "NAME",
     "change a client proxy (--no-... switches one off)",
     "proxy client set office --block-expired --policy strict"},
    {"delete", 0, client_delete, "NAME", "delete a client proxy", "proxy client delete office"},
};
static const cli_group client_group = CLI_GROUP(client);

static const cli_sub subs[] = {
    {"client", 0, NULL, "", "client inspection proxies", NULL, &client_group},
    {"stats", 0, proxy_stats, "[NAME]", "the counters the running serve last wrote",
     "proxy stats office"},
};
const cli_group proxy_group = CLI_GROUP(subs);

int cmd_proxy(cli *c, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "stats") == 0) return cli_dispatch(c, argc, argv, &subs[1], 1);
    if (argc < 2) return cli_usage(c, "proxy needs a kind or stats: proxy client …, proxy stats");
    if (strcmp(argv[1], "client") != 0) {
        const char *names[] = {subs[0].name, subs[1].name};
        const char *near = cli_nearest(argv[1], names, 2);
        if (near != NULL)
            return cli_usage(c, "unknown kind of proxy '%s' (did you mean 'proxy %s'?)", argv[1],
                             near);
        return cli_usage(c, "unknown kind of proxy '%s'; only client proxies can be configured",
                         argv[1]);
    }
    static char group[] = "proxy client"; /* how the shared dispatcher names the group */
    argv[1] = group;
    return cli_dispatch(c, argc - 1, argv + 1, client, client_group.n);
}
