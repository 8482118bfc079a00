/*
 * cmd_serve.c — "tlsgate serve": the TLS front end (src/tls) on the keyring's store.
 */
#include "conf.h"
#include "../api/api.h"
#include "../enroll/enroll.h"
#include "../proxy/proxy.h"

#include <stdio.h>
#include <string.h>

const cli_sub serve_cmd = {
    "serve",
    O_SERVE,
    NULL,
    "",
    "the TLS front end (SNI), the client and server proxies and the management API",
    "serve --listen 0.0.0.0:443 --backend 127.0.0.1:8080 --log syslog"};

int cmd_serve(cli *c, int argc, char **argv)
{
    opts op;
    int rc = opts_parse(c, argc, argv, serve_cmd.allowed, &op);
    tg_serve_opts *o = &op.serve;
    if (rc == 0 && op.nargs > 0)
        rc = cli_usage(c, "serve takes no arguments, only options ('%s')", op.args[0]);
    /* the configuration file fills what the flags left unset, before anything starts */
    cli_conf *conf = NULL;
    if (rc == 0) rc = cli_conf_apply(c, op.config, &op, &conf);
    unsigned sinks = 0;
    if (rc == 0 && op.log != NULL) rc = tg_log_sinks_parse(op.log, &sinks, &c->err);
    if (rc == 0 && op.log_socket != NULL && op.log_socket[0] != '/')
        rc = cli_usage(c, "--log-socket needs the absolute path of a syslog socket, not '%s'",
                       op.log_socket);
    if (rc == 0 && op.log_socket != NULL && strlen(op.log_socket) >= 108)
        rc = cli_usage(c, "--log-socket: the path is longer than a socket address takes (107)");
    if (rc == 0) {
        /* from here on serve's lines go to the log: syslog and/or standard error */
        tg_log_opts lo = {.sinks = sinks,
                          .quiet = o->quiet,
                          .prefix = "tlsgate serve",
                          .ident = "tlsgate",
                          .socket = op.log_socket};
        tg_log_open(&lo);
    }
    if (rc == 0) {
        /* serve, like init, creates the store on first use (K1; issue 14, item 4) */
        tg_keyring *kr = cli_create(c);
        if (kr == NULL) rc = c->err.code;
        tg_keyring_close(kr);
    }
    tg_proxies *proxies = NULL;
    tg_api *api = NULL;
    tg_enroll *enroll = NULL;
    tg_service svc[3];
    if (rc == 0) {
        o->home = cli_home(c);
        rc = tg_proxies_new(o->home, o->quiet, &proxies, &c->err);
    }
    if (rc == 0 && op.nintercepts > 0)
        rc = tg_proxies_intercept(proxies, op.intercept, op.nintercepts, &c->err);
    if (rc == 0 && op.pcap != NULL) rc = tg_proxies_pcap(proxies, op.pcap, op.pcap_max_mb, &c->err);
    if (rc == 0 && op.content_log != NULL)
        rc = tg_proxies_content_log(proxies, op.content_log, op.content_max_mb, &c->err);
    if (rc == 0 && op.no_admin && (op.admin || op.admin_cert))
        rc = cli_usage(c, "--no-admin turns the admin listener off: give it without --admin "
                          "and --admin-cert");
    if (rc == 0 && !op.no_admin) {
        tg_api_opts ao = {
            .home = o->home, .listen = op.admin, .cert = op.admin_cert, .quiet = o->quiet};
        rc = tg_api_new(&ao, &api, &c->err);
    }
    if (rc == 0) {
        tg_enroll_opts eo = {.home = o->home, .quiet = o->quiet, .http = op.http};
        rc = tg_enroll_new(&eo, &enroll, &c->err);
    }
    if (rc == 0) {
        svc[0] = tg_proxies_service(proxies); /* the client proxies run beside serve's front */
        o->services = svc;
        o->nservices = 1;
        if (api) svc[o->nservices++] = tg_api_service(api);
        svc[o->nservices++] = tg_enroll_service(enroll); /* identity, ACME, rollovers */
        rc = tg_serve_run(o, &c->err);
    }
    tg_enroll_free(enroll);
    tg_api_free(api);
    tg_proxies_free(proxies);
    tg_log_close();
    opts_free(&op);
    cli_conf_free(conf);
    return rc;
}
