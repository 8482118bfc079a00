/*
 * console.c — the web console's files (issue 10, item 5) under /appliance/ on the admin
 * listener, and / sent there. The files are compiled in (cmake/embed.cmake writes the
 * table from console/) and are public: they hold no data, every figure on the page comes
 * from the JSON API, which asks for a session or a token as always.
 *
 * Headers: a Content-Security-Policy of 'self' only (no inline script or style, no other
 * origin: the appliance has no internet and the page loads nothing from outside), framing
 * refused twice (frame-ancestors and X-Frame-Options, for older browsers), no sniffing,
 * no caching (a new binary's console is used at once), no referrer.
 */
#include "api_int.h"

#include <event2/buffer.h>
#include <string.h>

struct tg_console_file {
    const char *path, *type;
    const unsigned char *data;
    size_t len;
};
extern const struct tg_console_file tg_console_files[]; /* console_files.c, generated */

#define CONSOLE "/appliance/"

static void headers(struct evhttp_request *req, const char *type)
{
    api_common_headers(req, type); /* and what a page needs besides */
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

static void text(struct evhttp_request *req, int status, const char *reason, const char *msg)
{
    struct evbuffer *out = evbuffer_new();
    headers(req, "text/plain; charset=utf-8");
    if (out) evbuffer_add(out, msg, strlen(msg));
    evhttp_send_reply(req, status, reason, out);
    if (out) evbuffer_free(out);
}

static void redirect(struct evhttp_request *req, const char *to)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Location", to);
    text(req, 302, "Found", "the console is at " CONSOLE "\n");
}

int api_console_serve(struct evhttp_request *req, const char *path)
{
    if (strcmp(path, "/") != 0 && strcmp(path, "/appliance") != 0 &&
        strncmp(path, CONSOLE, strlen(CONSOLE)) != 0)
        return 0;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
        text(req, 405, "Method Not Allowed", "the console's files are only read (GET)\n");
        return 1;
    }
    if (strcmp(path, "/") == 0 || strcmp(path, "/appliance") == 0) {
        redirect(req, CONSOLE);
        return 1;
    }
    const char *name = path + strlen(CONSOLE);
    if (*name == '\0') name = "index.html";
    for (const struct tg_console_file *f = tg_console_files; f->path; f++) {
        if (strcmp(f->path, name) != 0) continue;
        struct evbuffer *out = evbuffer_new();
        if (out == NULL) {
            evhttp_send_error(req, 500, "Internal Server Error");
            return 1;
        }
        headers(req, f->type);
        /* the bytes live as long as the program: no copy */
        evbuffer_add_reference(out, f->data, f->len, NULL, NULL);
        evhttp_send_reply(req, 200, "OK", out);
        evbuffer_free(out);
        return 1;
    }
    text(req, 404, "Not Found", "the console has no such file\n");
    return 1;
}

extern const struct tg_console_file tg_openapi_files[]; /* openapi_file.c, generated */

/* GET /api/v1/openapi.json: docs/openapi.json as compiled in (an authenticated route like
 * the rest of the API: it is the API's own description). */
int api_openapi(api_req *r)
{
    const struct tg_console_file *f = &tg_openapi_files[0];
    struct evbuffer *out = evbuffer_new();
    if (f->path == NULL || out == NULL) {
        if (out) evbuffer_free(out);
        return api_fail(r, TG_E_INTERNAL, NULL, "the OpenAPI document is missing");
    }
    api_common_headers(r->req, f->type);
    evbuffer_add_reference(out, f->data, f->len, NULL, NULL);
    evhttp_send_reply(r->req, 200, "OK", out);
    evbuffer_free(out);
    api_count(r->counts, 200);
    return 0;
}
