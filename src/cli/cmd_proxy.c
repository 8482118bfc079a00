/*
 * cmd_proxy.c — "tlsgate proxy client …" and "tlsgate proxy server …": the configuration
 * of inspection proxies (issues 9 and 12). Parse, call the keyring, print; every rule is
 * the keyring's. Both kinds run the same five functions; each kind's table names its
 * kind, its options (O_PROXY: the client's and the shared ones; O_SPROXY: the server's
 * and the shared ones) and how its documents print.
 */
#include "opts.h"
#include "../proxy/proxy.h"

#include <stdio.h>
#include <string.h>

typedef struct kindview {
    const char *kind;
    void (*doc)(json_t *);
    void (*table)(json_t *);
} kindview;
static const kindview client_view = {"client", print_proxy_doc, print_proxy_table};
static const kindview server_view = {"server", print_srvproxy_doc, print_srvproxy_table};

static int one(cli *c, const opts *o, const kindview *k, const char *what)
{
    if (o->nargs != 1)
        return cli_usage(c, "proxy %s %s needs exactly one proxy name", k->kind, what);
    return 0;
}

static int do_create(cli *c, tg_keyring *kr, opts *o, const kindview *k)
{
    if (one(c, o, k, "create") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_proxy_create(kr, k->kind, o->args[0], &o->proxy, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, k->doc);
    return rc;
}

static int do_set(cli *c, tg_keyring *kr, opts *o, const kindview *k)
{
    if (one(c, o, k, "set") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_proxy_set(kr, k->kind, o->args[0], &o->proxy, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, k->doc);
    return rc;
}

static int do_list(cli *c, tg_keyring *kr, opts *o, const kindview *k)
{
    if (o->nargs != 0) return cli_usage(c, "proxy %s list takes no arguments", k->kind);
    json_t *rows = NULL;
    int rc = tg_keyring_proxy_list(kr, k->kind, &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, k->table);
    return rc;
}

static int do_show(cli *c, tg_keyring *kr, opts *o, const kindview *k)
{
    if (one(c, o, k, "show") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_proxy_show(kr, k->kind, o->args[0], &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, k->doc);
    return rc;
}

static int do_delete(cli *c, tg_keyring *kr, opts *o, const kindview *k)
{
    if (one(c, o, k, "delete") != 0) return TG_E_USAGE;
    int rc = tg_keyring_proxy_delete(kr, k->kind, o->args[0], &c->err);
    if (rc == 0 && !c->json) printf("Deleted %s proxy '%s'\n", k->kind, o->args[0]);
    return rc;
}

#define KIND_FNS(prefix, view)                                                                     \
    static int prefix##_create(cli *c, tg_keyring *kr, opts *o)                                    \
    {                                                                                              \
        return do_create(c, kr, o, &view);                                                         \
    }                                                                                              \
    static int prefix##_set(cli *c, tg_keyring *kr, opts *o)                                       \
    {                                                                                              \
        return do_set(c, kr, o, &view);                                                            \
    }                                                                                              \
    static int prefix##_list(cli *c, tg_keyring *kr, opts *o)                                      \
    {                                                                                              \
        return do_list(c, kr, o, &view);                                                           \
    }                                                                                              \
    static int prefix##_show(cli *c, tg_keyring *kr, opts *o)                                      \
    {                                                                                              \
        return do_show(c, kr, o, &view);                                                           \
    }                                                                                              \
    static int prefix##_delete(cli *c, tg_keyring *kr, opts *o)                                    \
    {                                                                                              \
        return do_delete(c, kr, o, &view);                                                         \
    }
KIND_FNS(client, client_view)
KIND_FNS(server, server_view)

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

static const cli_sub server[] = {
    {"create", O_SPROXY | O_DESCRIPTION, server_create, "NAME",
     "a server inspection proxy's configuration: the protected servers' networks, ports and "
     "certificates (transparent by default; --mode explicit --listen --upstream for a "
     "reverse proxy)",
     "proxy server create web --dest 192.0.2.10 --ports 443 --cert www --cert shop"},
    {"list", 0, server_list, "", "the server proxies", "proxy server list"},
    {"show", 0, server_show, "NAME", "one server proxy, its certificates and their keys' state",
     "proxy server show web"},
    {"set", O_SPROXY | O_SPROXYSET | O_DESCRIPTION, server_set, "NAME",
     "change a server proxy (--cert, --dest, --source-except replace a list; --add-... and "
     "--remove-... change one entry)",
     "proxy server set web --add-cert blog --remove-dest 192.0.2.10 --add-dest 192.0.2.0/28"},
    {"delete", 0, server_delete, "NAME", "delete a server proxy", "proxy server delete web"},
};
static const cli_group server_group = CLI_GROUP(server);

static const cli_sub subs[] = {
    {"client", 0, NULL, "", "client inspection proxies", NULL, &client_group},
    {"server", 0, NULL, "", "server inspection proxies", NULL, &server_group},
    {"stats", 0, proxy_stats, "[NAME]", "the counters the running serve last wrote",
     "proxy stats office"},
};
const cli_group proxy_group = CLI_GROUP(subs);

int cmd_proxy(cli *c, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "stats") == 0) return cli_dispatch(c, argc, argv, &subs[2], 1);
    if (argc < 2)
        return cli_usage(c, "proxy needs a kind or stats: proxy client …, proxy server …, proxy "
                            "stats");
    int server_kind = strcmp(argv[1], "server") == 0;
    if (strcmp(argv[1], "client") != 0 && !server_kind) {
        const char *names[] = {subs[0].name, subs[1].name, subs[2].name};
        const char *near = cli_nearest(argv[1], names, 3);
        if (near != NULL)
            return cli_usage(c, "unknown kind of proxy '%s' (did you mean 'proxy %s'?)", argv[1],
                             near);
        return cli_usage(c, "unknown kind of proxy '%s'; use client or server", argv[1]);
    }
    /* how the shared dispatcher names the group */
    static char cgroup[] = "proxy client", sgroup[] = "proxy server";
    argv[1] = server_kind ? sgroup : cgroup;
    return server_kind ? cli_dispatch(c, argc - 1, argv + 1, server, server_group.n)
                       : cli_dispatch(c, argc - 1, argv + 1, client, client_group.n);
}
