/*
 * cmd_serve.c — "tlsgate serve": the TLS front end (src/tls) on the keyring's store.
 */
#include "cli_int.h"
#include "../proxy/proxy.h"
#include "../tls/tls.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    S_LISTEN = 256,
    S_BACKEND,
    S_THREADS,
    S_NO_TICKETS,
    S_CACHE,
    S_QUIET,
    S_JSON,
    S_HOME,
    S_PCAP,
    S_PCAP_MAX,
    S_CONTENT,
    S_CONTENT_MAX
};

static int count(cli *c, const char *opt, const char *v, long max, long *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 1 || n > max)
        return cli_usage(c, "%s needs a number from 1 to %ld, not '%s'", opt, max, v);
    *out = n;
    return 0;
}

int cmd_serve(cli *c, int argc, char **argv)
{
    static const struct option longs[] = {
        {"listen", required_argument, NULL, S_LISTEN},
        {"backend", required_argument, NULL, S_BACKEND},
        {"threads", required_argument, NULL, S_THREADS},
        {"no-tickets", no_argument, NULL, S_NO_TICKETS},
        {"cache", required_argument, NULL, S_CACHE},
        {"quiet", no_argument, NULL, S_QUIET},
        {"pcap", required_argument, NULL, S_PCAP},
        {"pcap-max-mb", required_argument, NULL, S_PCAP_MAX},
        {"content-log", required_argument, NULL, S_CONTENT},
        {"content-max-mb", required_argument, NULL, S_CONTENT_MAX},
        {"json", no_argument, NULL, S_JSON},
        {"home", required_argument, NULL, S_HOME},
        {NULL, 0, NULL, 0},
    };
    const char **listen = calloc((size_t)argc + 1, sizeof(*listen));
    if (listen == NULL) return tg_err_set(&c->err, TG_E_INTERNAL, "out of memory");
    tg_serve_opts o = {.listen = listen, .tickets = 1};
    int rc = 0, ch;
    long n = 0;
    const char *pcap = NULL;
    long long pcap_max = 0, content_max = 0;
    const char *content = NULL;
    optind = 0;
    opterr = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, "-:", longs, NULL)) != -1) {
        switch (ch) {
        case S_LISTEN:
            listen[o.nlisten++] = optarg;
            break;
        case S_BACKEND:
            o.backend = optarg;
            break;
        case S_THREADS:
            if ((rc = count(c, "--threads", optarg, 64, &n)) == 0) o.threads = (int)n;
            break;
        case S_CACHE:
            if ((rc = count(c, "--cache", optarg, 10000000, &n)) == 0) o.cache = (size_t)n;
            break;
        case S_NO_TICKETS:
            o.tickets = 0;
            break;
        case S_QUIET:
            o.quiet = 1;
            break;
        case S_PCAP:
            pcap = optarg;
            break;
        case S_CONTENT:
            content = optarg;
            break;
        case S_CONTENT_MAX:
            if ((rc = count(c, "--content-max-mb", optarg, 1048576, &n)) == 0) content_max = n;
            break;
        case S_PCAP_MAX:
            if ((rc = count(c, "--pcap-max-mb", optarg, 1048576, &n)) == 0) pcap_max = n;
            break;
        case S_JSON:
            c->json = 1;
            break;
        case S_HOME:
            c->home = optarg;
            break;
        case 1:
            rc = cli_usage(c, "serve takes no arguments, only options ('%s')", optarg);
            break;
        case ':':
            rc = cli_usage(c, "serve: option '%s' needs a value", argv[optind - 1]);
            break;
        default:
            rc = cli_usage(c, "serve: option '%s' is not known here", argv[optind - 1]);
            break;
        }
    }
    if (rc == 0 && o.nlisten == 0) listen[o.nlisten++] = TG_SERVE_DEFAULT_LISTEN;
    if (rc == 0) {
        /* opening the keyring first creates the store on first use (K1) */
        tg_keyring *kr = cli_open(c);
        if (kr == NULL) rc = c->err.code;
        tg_keyring_close(kr);
    }
    tg_proxies *proxies = NULL;
    tg_service svc;
    if (rc == 0) {
        o.home = cli_home(c);
        rc = tg_proxies_new(o.home, o.quiet, &proxies, &c->err);
    }
    if (rc == 0 && pcap != NULL)
        rc = tg_proxies_pcap(proxies, pcap,
                             pcap_max > 0 ? pcap_max * 1024 * 1024 : TG_PROXY_PCAP_MAX_DEFAULT,
                             &c->err);
    if (rc == 0 && content != NULL)
        rc = tg_proxies_content_log(proxies, content, content_max * 1024 * 1024, &c->err);
    if (rc == 0) {
        svc = tg_proxies_service(proxies); /* the client proxies run beside serve's front */
        o.services = &svc;
        o.nservices = 1;
        rc = tg_serve_run(&o, &c->err);
    }
    tg_proxies_free(proxies);
    free(listen);
    return rc;
}
