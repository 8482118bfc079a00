/*
 * cmd_request.c — "tlsgate request …": certificate requests (CSRs).
 */
#include "opts.h"

#include <stdio.h>
#include <string.h>

static int req_create(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1) return cli_usage(c, "request create needs exactly one request name");
    o->spec.name = o->args[0];
    json_t *doc = NULL;
    int rc = tg_keyring_request_create(kr, &o->spec, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_request_doc);
    return rc;
}

static int req_list(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "request list takes no arguments");
    json_t *rows = NULL;
    int rc = tg_keyring_request_list(kr, &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, print_request_table);
    return rc;
}

static int req_show(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1) return cli_usage(c, "request show needs exactly one request name");
    json_t *doc = NULL;
    int rc = tg_keyring_request_show(kr, o->args[0], &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_request_doc);
    return rc;
}

static int req_export(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1) return cli_usage(c, "request export needs exactly one request name");
    int rc = cli_out_check(c, o->out ? o->out : "-", o->force);
    if (rc != 0) return rc;
    json_t *doc = NULL;
    rc = tg_keyring_request_show(kr, o->args[0], &doc, &c->err);
    if (rc != 0) return rc;
    const char *pem = json_string_value(json_object_get(doc, "pem"));
    rc = cli_write_out(c, o->out ? o->out : "-", (const unsigned char *)pem, strlen(pem), 0644,
                       o->force);
    if (rc == 0 && o->out && strcmp(o->out, "-") != 0) {
        if (c->json)
            cli_emit_export(c, o->args[0], o->out, strlen(pem));
        else
            printf("Exported request '%s' to %s\n", o->args[0], o->out);
    }
    json_decref(doc);
    return rc;
}

static int req_delete(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1) return cli_usage(c, "request delete needs exactly one request name");
    int rc = tg_keyring_request_delete(kr, o->args[0], &c->err);
    if (rc == 0 && !c->json) printf("Deleted request '%s'\n", o->args[0]);
    return rc;
}

static const cli_sub subs[] = {
    {"create", O_NEWCERT | O_SIGNING, req_create, "NAME",
     "create a key and a certificate request (CSR; --signing: for a CA certificate)",
     "request create www --cn www.example.com --san DNS:www.example.com"},
    {"list", 0, req_list, "", "requests, pending and completed", "request list"},
    {"show", 0, req_show, "NAME", "everything about one request", "request show www"},
    {"export", O_OUT | O_FORCE, req_export, "NAME", "write the request as PEM",
     "request export www --out www.csr"},
    {"delete", 0, req_delete, "NAME", "delete a request", "request delete www"},
};
const cli_group request_group = CLI_GROUP(subs);

int cmd_request(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, argc, argv, subs, sizeof(subs) / sizeof(subs[0]));
}
