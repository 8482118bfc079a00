/*
 * cmd_cert.c — "tlsgate cert …": parse, call the keyring, print.
 */
#include "opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int one_name(cli *c, const opts *o, const char *what)
{
    if (o->nargs != 1) return cli_usage(c, "cert %s needs exactly one certificate name", what);
    return 0;
}

static int cert_create(cli *c, tg_keyring *kr, opts *o)
{
    if (one_name(c, o, "create") != 0) return TG_E_USAGE;
    o->spec.name = o->args[0];
    json_t *doc = NULL;
    int rc = tg_keyring_cert_create(kr, &o->spec, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_cert_doc);
    return rc;
}

static int cert_import(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs < 1) return cli_usage(c, "cert import needs at least one file");
    cli_pass pass;
    const tg_passsrc *src = cli_pass_init(&pass, o->passfile, "Password for the file: ", 0);
    tg_input *in = NULL, *key = NULL;
    int rc = cli_inputs_read(c, o->args, (size_t)o->nargs, "a certificate file", &in);
    if (rc == 0 && o->keyfile != NULL)
        rc = cli_inputs_read(c, (char **)&o->keyfile, 1, "--key", &key);
    tg_import imp = {.inputs = in,
                     .ninputs = (size_t)o->nargs,
                     .name = o->name,
                     .key = key,
                     .pass = src,
                     .no_export = o->spec.no_export,
                     .as_server = o->as_server};
    json_t *doc = NULL;
    cli_progress_attach(c, &imp);
    if (rc == 0) rc = tg_keyring_cert_import(kr, &imp, &doc, &c->err);
    cli_progress_end(&imp);
    if (rc == 0) cli_emit(c, doc, print_import);
    cli_inputs_free(in, in ? (size_t)o->nargs : 0);
    cli_inputs_free(key, key ? 1 : 0);
    return rc;
}

static int cert_replace(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 2) return cli_usage(c, "cert replace needs a certificate name and a file");
    cli_pass pass;
    const tg_passsrc *src = cli_pass_init(&pass, o->passfile, "Password for the file: ", 0);
    tg_input *in = NULL, *key = NULL;
    int rc = cli_inputs_read(c, &o->args[1], 1, "the certificate file", &in);
    if (rc == 0 && o->keyfile != NULL)
        rc = cli_inputs_read(c, (char **)&o->keyfile, 1, "--key", &key);
    tg_import imp = {
        .inputs = in, .ninputs = 1, .key = key, .pass = src, .no_export = o->spec.no_export};
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_cert_replace(kr, o->args[0], &imp, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_import);
    cli_inputs_free(in, in ? 1 : 0);
    cli_inputs_free(key, key ? 1 : 0);
    return rc;
}

/* cert export and ca export: the same options; ca: NAME must be a CA (the keyring checks
 * it in the same call). */
static int export_one(cli *c, tg_keyring *kr, opts *o, int ca)
{
    if (!ca && one_name(c, o, "export") != 0) return TG_E_USAGE; /* ca: cmd_ca.c checked */
    tg_export exp = {.with_key = o->with_key,
                     .with_chain = o->with_chain,
                     .support_bundle = o->support_bundle,
                     .no_passphrase = o->no_passphrase};
    if (o->format == NULL && !o->support_bundle)
        return cli_usage(c, "%s export needs --format pem, der, p7b, p8, pkcs1 or p12",
                         ca ? "ca" : "cert");
    if (o->out == NULL)
        return cli_usage(c, "%s export needs --out FILE ('-' for standard output)",
                         ca ? "ca" : "cert");
    int rc;
    if ((rc = cli_out_check(c, o->out, o->force)) != 0) return rc;
    if ((o->format && (rc = tg_export_format_parse(o->format, &exp.format, &c->err)) != 0) ||
        (rc = tg_export_profile_parse(o->profile, &exp.profile, &c->err)) != 0)
        return rc;
    exp.profile_set = o->profile != NULL;
    int keyout = tg_export_has_key(&exp);
    if (keyout && strcmp(o->out, "-") == 0)
        return cli_usage(c, "a key export must go to a file (--out FILE), not standard output");
    cli_pass pass;
    exp.pass = cli_pass_init(&pass, o->passfile, "Export passphrase: ", 1);
    unsigned char *data = NULL;
    size_t len = 0;
    rc = ca ? tg_keyring_ca_export(kr, o->args[0], &exp, &data, &len, &c->err)
            : tg_keyring_cert_export(kr, o->args[0], &exp, &data, &len, &c->err);
    if (rc == 0) rc = cli_write_out(c, o->out, data, len, keyout ? 0600 : 0644, o->force);
    tg_free_secret(data, len);
    if (rc == 0 && strcmp(o->out, "-") != 0) {
        if (c->json)
            cli_emit_export(c, o->args[0], o->out, len);
        else
            printf("Exported '%s' to %s (%zu bytes)\n", o->args[0], o->out, len);
    }
    return rc;
}

int cli_cert_export(cli *c, tg_keyring *kr, opts *o)
{
    return export_one(c, kr, o, 0);
}

int cli_ca_export(cli *c, tg_keyring *kr, opts *o)
{
    return export_one(c, kr, o, 1);
}

int cli_cert_list(cli *c, tg_keyring *kr, opts *o, int ca)
{
    const char *filter = o->filter && o->filter[0] ? o->filter : NULL;
    tg_list q = {
        .kind = ca ? TG_LIST_CAS : TG_LIST_CERTS, .expiring_days = o->expiring, .filter = filter};
    cli_listview v = {.ca = ca, .wide = o->wide, .expiring = o->expiring, .filter = filter};
    if (c->json) { /* streamed: a row at a time (issue 13, item 3) */
        cli_json_stream js;
        cli_json_stream_begin(&js);
        int rc = tg_keyring_cert_list_each(kr, &q, cli_json_stream_row, &js, NULL, &c->err);
        if (rc == 0 && js.failed) rc = tg_err_set(&c->err, TG_E_INTERNAL, "out of memory");
        cli_json_stream_end(&js, rc);
        if (rc == 0 && ferror(stdout))
            rc = tg_err_set(&c->err, TG_E_IO, "cannot write the list to standard output");
        return rc;
    }
    json_t *rows = NULL;
    int rc = tg_keyring_cert_list(kr, &q, &rows, &v.total, &c->err);
    if (rc != 0) return rc;
    print_cert_list(rows, &v);
    json_decref(rows);
    return 0;
}

static int cert_list(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "cert list takes no names (cert show NAME shows one)");
    return cli_cert_list(c, kr, o, 0);
}

static int cert_show(cli *c, tg_keyring *kr, opts *o)
{
    if (one_name(c, o, "show") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_cert_show(kr, o->args[0], &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_cert_doc);
    return rc;
}

static int cert_default(cli *c, tg_keyring *kr, opts *o)
{
    if (one_name(c, o, "default") != 0) return TG_E_USAGE;
    int rc = tg_keyring_cert_default(kr, o->args[0], &c->err);
    if (rc == 0 && !c->json) printf("'%s' is now the default certificate\n", o->args[0]);
    return rc;
}

static int cert_delete(cli *c, tg_keyring *kr, opts *o)
{
    if (one_name(c, o, "delete") != 0) return TG_E_USAGE;
    int rc = tg_keyring_cert_delete(kr, o->args[0], &c->err);
    if (rc == 0 && !c->json) printf("Deleted '%s'\n", o->args[0]);
    return rc;
}

static const cli_sub subs[] = {
    {"create", O_NEWCERT | O_SIGNING, cert_create, "NAME",
     "create a self-signed certificate (--signing: a signing certificate)",
     "cert create www --cn www.example.com --san DNS:www.example.com --key ec:p256"},
    {"import", O_NAME | O_KEYFILE | O_PASSFILE | O_NOEXPORT | O_ASSERVER, cert_import, "FILE...",
     "import certificates and keys in any format (DER, PEM, PKCS#7, PKCS#8, PKCS#12)",
     "cert import site.p12 --name www --password-file pass.txt"},
    {"list", O_EXPIRING | O_LISTX, cert_list, "",
     "the certificates table (not the CA certificates: ca list)",
     "cert list --expiring 30 --filter shop"},
    {"show", 0, cert_show, "NAME", "everything about one certificate", "cert show www"},
    {"export", O_FORMAT | O_WITHKEY | O_WITHCHAIN | O_PASSFILE | O_OUT | O_EXPORTX | O_FORCE,
     cli_cert_export, "NAME", "write a certificate, its chain or its key to a file",
     "cert export www --format pem --with-chain --out www.pem"},
    {"default", 0, cert_default, "NAME", "the certificate for clients without (matching) SNI",
     "cert default www"},
    {"replace", O_KEYFILE | O_PASSFILE | O_NOEXPORT, cert_replace, "NAME FILE",
     "put FILE in NAME's place; the old one becomes NAME_REPLACED",
     "cert replace www renewed.pem --key renewed.key"},
    {"delete", 0, cert_delete, "NAME", "delete a certificate (refused while referenced)",
     "cert delete www"},
};
const cli_group cert_group = CLI_GROUP(subs);

int cmd_cert(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, argc, argv, subs, sizeof(subs) / sizeof(subs[0]));
}
