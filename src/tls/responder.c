/*
 * responder.c — serve's built-in HTTP responder: what to answer to one request head.
 *
 * GET or HEAD /healthz answers "ok"; any other path a small status page naming the
 * subject of the certificate served (never the store's friendly name: any client may
 * ask), how it was chosen, the SNI, protocol and cipher. Every answer closes the
 * connection. The head is everything up to and including the blank line; one longer
 * than TG_SERVE_REQUEST_MAX is answered 431 whether it is complete or not. Nothing here
 * owns a connection: the caller keeps the deadlines and writes the answer.
 */
#include "tls_int.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void html_escape(const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (; *in && n + 7 < size; in++) {
        const char *rep = *in == '<'   ? "&lt;"
                          : *in == '>' ? "&gt;"
                          : *in == '&' ? "&amp;"
                          : *in == '"' ? "&quot;"
                                       : NULL;
        if (rep)
            n += (size_t)snprintf(out + n, size - n, "%s", rep);
        else
            out[n++] = *in;
    }
    out[n] = '\0';
}

static int answer(tg_http_answer *a, int status, const char *reason, const char *type,
                  const char *body, int head_only)
{
    a->status = status;
    a->reason = reason;
    a->type = type;
    a->head_only = head_only;
    snprintf(a->body, sizeof(a->body), "%s", body);
    return 1;
}

static void status_page(SSL *ssl, char *body, size_t size)
{
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    char subject[512], name[1024], esni[600];
    tg_ssl_served_subject(ssl, subject, sizeof(subject));
    html_escape(subject, name, sizeof(name));
    html_escape(sni ? sni : "(none)", esni, sizeof(esni));
    snprintf(body, size,
             "<!doctype html><html><head><title>tlsgate</title></head><body>"
             "<h1>tlsgate</h1><table>"
             "<tr><th>Certificate served</th><td id=\"certificate\">%s</td></tr>"
             "<tr><th>Chosen by</th><td id=\"match\">%s</td></tr>"
             "<tr><th>Server name (SNI)</th><td id=\"sni\">%s</td></tr>"
             "<tr><th>Protocol</th><td>%s</td></tr><tr><th>Cipher</th><td>%s</td></tr>"
             "</table></body></html>\n",
             name, tg_ssl_pick_how(ssl), esni, SSL_get_version(ssl),
             SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
}

int tg_responder_answer(struct evbuffer *in, SSL *ssl, tg_http_answer *a)
{
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    size_t head_len = end.pos < 0 ? evbuffer_get_length(in) : (size_t)end.pos + 4;
    if (head_len > TG_SERVE_REQUEST_MAX)
        return answer(a, 431, "Request Header Fields Too Large", "text/plain",
                      "request head too large\n", 0);
    if (end.pos < 0) return 0;
    size_t n = 0;
    char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
    char method[8] = "", path[256] = "";
    int ok = line != NULL && sscanf(line, "%7s %255s HTTP/1.", method, path) == 2;
    free(line);
    if (!ok) return answer(a, 400, "Bad Request", "text/plain", "bad request\n", 0);
    int head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0)
        return answer(a, 405, "Method Not Allowed", "text/plain", "only GET and HEAD\n", 0);
    if (strcmp(path, "/healthz") == 0) return answer(a, 200, "OK", "text/plain", "ok\n", head);
    answer(a, 200, "OK", "text/html; charset=utf-8", "", head);
    status_page(ssl, a->body, sizeof(a->body));
    return 1;
}

void tg_responder_write(struct evbuffer *out, const tg_http_answer *a)
{
    size_t len = strlen(a->body);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\nCache-Control: no-store\r\n\r\n",
                        a->status, a->reason, a->type, len);
    if (!a->head_only) evbuffer_add(out, a->body, len);
}
