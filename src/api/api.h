/*
 * api.h — the face of src/api: the appliance's management listener (SPEC M2, issue 10).
 *
 * `serve --admin ADDR:PORT` runs it beside serve's other listeners: HTTPS with the default
 * certificate (or a chosen one), the JSON API under /api/v1/. It is cli's twin: it reads
 * requests instead of argv, calls the same keyring operations, and answers with the same
 * documents (docs/api.md). It runs on a thread and an event loop of its own, so that a
 * slow operation (an RSA key generated, a large import) never stalls traffic, and it keeps
 * its own keyring handle. Built on libevent's evhttp (already the project's event loop:
 * no second HTTP library, and its parser has bounds for headers and bodies).
 *
 * Bounds: TG_API_CONNS_MAX connections (accept pauses at the cap); each request must
 * arrive whole within TG_API_REQUEST_SECS of the connection or of the previous answer (a
 * deadline: a client that drips bytes is cut at it); request heads TG_API_HEADERS_MAX
 * bytes; bodies TG_API_BODY_MAX bytes.
 */
#ifndef TG_API_H
#define TG_API_H

#include "../base/base.h"
#include "../tls/tls.h"

#define TG_API_DEFAULT_LISTEN "127.0.0.1:9443"
#define TG_API_CONNS_MAX      64
#define TG_API_REQUEST_SECS   15
#define TG_API_HEADERS_MAX    16384
#define TG_API_BODY_MAX       (TG_FILE_MAX + 1024u * 1024u) /* one file as the CLI takes it */

typedef struct tg_api_opts {
    const char *home;   /* the store */
    const char *listen; /* "ADDR:PORT"; NULL: TG_API_DEFAULT_LISTEN */
    const char *cert;   /* the certificate it presents; NULL: the default certificate */
    int quiet;
} tg_api_opts;

typedef struct tg_api tg_api;
/* Checks the settings and loads the certificate; the listener is bound when serve starts
 * the service. */
int tg_api_new(const tg_api_opts *o, tg_api **out, tg_err *err);
tg_service tg_api_service(tg_api *a);
void tg_api_free(tg_api *a);

#endif
