/*
 * certs.c — certificates, requests and CA certificates moving in and out of the store
 * through the API (docs/api.md): imports and replacements arrive as uploads (upload.c),
 * exports leave as the file's bytes. Each handler calls the keyring function the CLI
 * command calls (src/cli/cmd_cert.c, cmd_ca.c, cmd_request.c) and holds no rule of its own:
 * what the keyring refuses, it refuses with the CLI's sentence.
 */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- imports and replacements ---- */

/* cert import, cert replace, ca import, ca replace: one shape, as in the CLI. name: the
 * object replaced (the path's), or NULL for an import. */
static int upload(api_req *r, int ca, const char *name)
{
    static const char *const cert_files[] = {"file", "key", NULL};
    static const char *const ca_files[] = {"file", NULL};
    static const char *const import_texts[] = {"name", "password", "no_export", "as_server", NULL};
    static const char *const ca_import_texts[] = {"name", "password", "no_export", NULL};
    static const char *const replace_texts[] = {"password", "no_export", NULL};
    api_form f;
    int rc = api_form_read(r, &f, ca ? ca_files : cert_files,
                           name ? replace_texts
                           : ca ? ca_import_texts
                                : import_texts);
    if (rc != 0) return rc;
    tg_input *in = NULL, *key = NULL;
    size_t n = 0, nkey = 0;
    api_secret sec;
    tg_import imp = {.pass = api_form_pass(&f, &sec)};
    rc = api_form_inputs(r, &f, "file", &in, &n);
    if (rc == 0) rc = api_form_inputs(r, &f, "key", &key, &nkey);
    if (rc == 0) rc = api_form_text(r, &f, "name", &imp.name);
    if (rc == 0) rc = api_form_bool(r, &f, "no_export", &imp.no_export);
    if (rc == 0 && !ca && !name) rc = api_form_bool(r, &f, "as_server", &imp.as_server);
    /* the CLI's arguments: at least one file, one for a replacement, one --key */
    if (rc == 0 && n == 0)
        rc = api_fail(r, TG_E_USAGE, "file", "%s needs %s file (a part 'file')",
                      name ? "a replacement" : "an import", name ? "a" : "at least one");
    if (rc == 0 && name && n > 1)
        rc = api_fail(r, TG_E_USAGE, "file", "a replacement takes one file, not %zu", n);
    if (rc == 0 && nkey > 1)
        rc = api_fail(r, TG_E_USAGE, "key", "one key file at most, not %zu", nkey);
    imp.inputs = in;
    imp.ninputs = n;
    imp.key = nkey ? key : NULL;
    if (rc == 0 && name == NULL) /* the audit row's object: as the CLI's, the first argument */
        r->object = tg_strdup(imp.name ? imp.name : in[0].label);
    json_t *doc = NULL;
    if (rc == 0) {
        if (ca)
            rc = name ? tg_keyring_ca_replace(r->kr, name, &imp, &doc, &r->err)
                      : tg_keyring_ca_import(r->kr, &imp, &doc, &r->err);
        else
            rc = name ? tg_keyring_cert_replace(r->kr, name, &imp, &doc, &r->err)
                      : tg_keyring_cert_import(r->kr, &imp, &doc, &r->err);
    }
    free(in);
    free(key);
    api_form_free(&f);
    /* 201 when something was created; a repeated import (nothing new) is 200 */
    int created = name == NULL && json_integer_value(json_object_get(doc, "new")) > 0;
    return api_done(r, rc, created ? 201 : 200, doc);
}

int api_cert_import(api_req *r)
{
    return upload(r, 0, NULL);
}

int api_cert_replace(api_req *r)
{
    return upload(r, 0, r->params[0]);
}

int api_ca_import(api_req *r)
{
    return upload(r, 1, NULL);
}

int api_ca_replace(api_req *r)
{
    return upload(r, 1, r->params[0]);
}

/* ---- exports ---- */

/* Content-Disposition for an export of name: an ASCII filename for every client and the
 * exact one in RFC 8187's form (RFC 6266). */
char *api_disposition(const char *name, const char *ext)
{
    size_t n = strlen(name);
    char *safe = malloc(n + 1), *exact = malloc(3 * n + 1);
    char *out = NULL;
    if (safe && exact) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)name[i];
            int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
            safe[i] = plain || c == ' ' ? (char)c : '_';
            if (plain)
                exact[k++] = (char)c;
            else
                k += (size_t)snprintf(exact + k, 4, "%%%02X", c);
        }
        safe[n] = '\0';
        exact[k] = '\0';
        size_t size = strlen(safe) + strlen(exact) + 2 * strlen(ext) + 64;
        if ((out = malloc(size)) != NULL)
            snprintf(out, size, "attachment; filename=\"%s%s\"; filename*=UTF-8''%s%s", safe, ext,
                     exact, ext);
    }
    free(safe);
    free(exact);
    return out;
}

static void send_file(api_req *r, const char *type, const char *ext, unsigned char *data,
                      size_t len)
{
    char *disp = api_disposition(r->params[0], ext);
    api_send_bytes(r, 200, type, disp, data, len);
    free(disp);
}

static const struct {
    tg_format format;
    const char *type, *ext;
} types[] = {
    {TG_FMT_PEM, "application/x-pem-file", ".pem"},
    {TG_FMT_DER, "application/pkix-cert", ".cer"},    /* RFC 2585 */
    {TG_FMT_P7B, "application/pkcs7-mime", ".p7b"},   /* RFC 5751, certs-only */
    {TG_FMT_P8, "application/x-pem-file", ".key"},    /* PEM: ENCRYPTED PRIVATE KEY */
    {TG_FMT_PKCS1, "application/x-pem-file", ".key"}, /* PEM: RSA PRIVATE KEY */
    {TG_FMT_P12, "application/x-pkcs12", ".p12"},
};

/* cert export and ca export: the same members (the CLI's options but --out). */
static int export_one(api_req *r, int ca)
{
    static const char *const allowed[] = {
        "format",         "with_key",      "with_chain", "p12_profile",
        "support_bundle", "no_passphrase", "passphrase", NULL};
    tg_export exp = {0};
    const char *format = NULL, *profile = NULL, *pass = NULL;
    size_t plen = 0;
    api_secret sec;
    int rc = api_members_only(r, allowed);
    if (rc == 0) rc = api_member_str(r, "format", 0, &format);
    if (rc == 0) rc = api_member_str(r, "p12_profile", 0, &profile);
    if (rc == 0) rc = api_member_bool(r, "with_key", &exp.with_key);
    if (rc == 0) rc = api_member_bool(r, "with_chain", &exp.with_chain);
    if (rc == 0) rc = api_member_bool(r, "support_bundle", &exp.support_bundle);
    if (rc == 0) rc = api_member_bool(r, "no_passphrase", &exp.no_passphrase);
    if (rc == 0) rc = api_member_secret(r, "passphrase", &pass, &plen);
    if (rc == 0 && format == NULL && !exp.support_bundle)
        rc = api_fail(r, TG_E_USAGE, "format",
                      "an export needs a format: pem, der, p7b, p8, pkcs1 or p12");
    /* the parsers' sentences name no field; the member is the one they read */
    if (rc == 0 && format && (rc = tg_export_format_parse(format, &exp.format, &r->err)) != 0)
        snprintf(r->err.field, sizeof(r->err.field), "format");
    if (rc == 0 && (rc = tg_export_profile_parse(profile, &exp.profile, &r->err)) != 0)
        snprintf(r->err.field, sizeof(r->err.field), "p12_profile");
    exp.profile_set = profile != NULL;
    exp.pass = api_secret_src(&sec, pass, plen);
    int key = rc == 0 && tg_export_has_key(&exp);
    /* a key leaves the store only for a role that manages certificates (the CLI: only into
     * a 0600 file); the keyring still judges whether this key may leave at all */
    if (key) rc = api_authorize(r, TG_CAP_CERTS);
    r->detail = json_pack("{s:s?, s:b}", "format", exp.support_bundle ? "support-bundle" : format,
                          "key", key);
    unsigned char *data = NULL;
    size_t len = 0;
    if (rc == 0)
        rc = ca ? tg_keyring_ca_export(r->kr, r->params[0], &exp, &data, &len, &r->err)
                : tg_keyring_cert_export(r->kr, r->params[0], &exp, &data, &len, &r->err);
    api_member_wipe(r, "passphrase");
    if (rc != 0) return rc;
    size_t i = 0;
    while (i + 1 < sizeof(types) / sizeof(types[0]) && types[i].format != exp.format)
        i++;
    if (exp.support_bundle)
        send_file(r, "application/x-pem-file", "-support.pem", data, len);
    else
        send_file(r, types[i].type, types[i].ext, data, len);
    return 0;
}

int api_cert_export(api_req *r)
{
    return export_one(r, 0);
}

int api_ca_export(api_req *r)
{
    return export_one(r, 1);
}

/* request export: the request's PEM (cmd_request.c writes the same member). */
int api_request_export(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_request_show(r->kr, r->params[0], &doc, &r->err);
    if (rc != 0) return rc;
    const char *pem = json_string_value(json_object_get(doc, "pem"));
    unsigned char *data = (unsigned char *)(pem ? tg_strdup(pem) : NULL);
    json_decref(doc);
    if (data == NULL) return api_fail(r, TG_E_INTERNAL, NULL, "out of memory");
    send_file(r, "application/x-pem-file", ".csr", data, strlen((char *)data));
    return 0;
}

/* ---- CA certificates ---- */

int api_ca_delete(api_req *r)
{
    int rc = tg_keyring_ca_delete(r->kr, r->params[0], &r->err);
    return api_done(r, rc, 200, json_pack("{s:s}", "deleted", r->params[0]));
}

int api_ca_reissue(api_req *r)
{
    static const char *const allowed[] = {"days", "name", NULL};
    int days = TG_DAYS_NONE, days_set = 0;
    const char *name = NULL;
    int rc = api_members_only(r, allowed);
    if (rc == 0) rc = api_member_int(r, "days", &days, &days_set);
    if (rc == 0) rc = api_member_str(r, "name", 0, &name);
    if (name) r->detail = json_pack("{s:s}", "name", name);
    json_t *doc = NULL;
    if (rc == 0)
        rc = tg_keyring_ca_reissue(r->kr, r->params[0], days_set ? days : TG_DAYS_NONE, name, &doc,
                                   &r->err);
    return api_done(r, rc, 201, doc);
}
