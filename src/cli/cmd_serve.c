/*
 * cmd_serve.c — "tlsgate serve": the TLS front end (src/tls) on the keyring's store.
 */
#include "opts.h"
#include "../proxy/proxy.h"

int cmd_serve(cli *c, int argc, char **argv)
{
    opts op;
    int rc = opts_parse(c, argc, argv, O_SERVE, &op);
    tg_serve_opts *o = &op.serve;
    if (rc == 0 && op.nargs > 0)
        rc = cli_usage(c, "serve takes no arguments, only options ('%s')", op.args[0]);
    if (rc == 0) {
        /* opening the keyring first creates the store on first use (K1) */
        tg_keyring *kr = cli_open(c);
        if (kr == NULL) rc = c->err.code;
        tg_keyring_close(kr);
    }
    tg_proxies *proxies = NULL;
    tg_service svc;
    if (rc == 0) {
        o->home = cli_home(c);
        rc = tg_proxies_new(o->home, o->quiet, &proxies, &c->err);
    }
    if (rc == 0 && op.pcap != NULL) rc = tg_proxies_pcap(proxies, op.pcap, op.pcap_max_mb, &c->err);
    if (rc == 0 && op.content_log != NULL)
        rc = tg_proxies_content_log(proxies, op.content_log, op.content_max_mb, &c->err);
    if (rc == 0) {
        svc = tg_proxies_service(proxies); /* the client proxies run beside serve's front */
        o->services = &svc;
        o->nservices = 1;
        rc = tg_serve_run(o, &c->err);
    }
    tg_proxies_free(proxies);
    opts_free(&op);
    return rc;
}
