/*
 * defaults.c — the default never-decrypt list (SPEC I4): domains whose clients pin
 * certificates (decrypting them only breaks the client) or whose vendor asks that they
 * not be intercepted. It ships in the program (builtin[] below), is stored on the first
 * open of a store (default_domains, seeded here rather than by the migration: the list is
 * the keyring's), and is shown, exported, replaced by an import, and reset to the
 * built-in one. Every policy includes it unless created with --no-defaults.
 *
 * Invariant: the setting "default_domains" says where the stored list came from:
 * "built-in N" (revision N of builtin[]) or "imported". A program with a newer revision
 * replaces a built-in list when it opens the store; an imported list is the operator's
 * and is never replaced behind their back (only "policy defaults reset" does that).
 * Bump BUILTIN_REVISION with every change of builtin[].
 */
#include "keyring_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUILTIN_REVISION 1
#define SETTING          "default_domains"

/* Each entry is justified by its vendor's own statement or by the client's pinning; an
 * entry we cannot source does not belong here (operators add their own to a policy). */
static const char *const builtin[] = {
    /* Apple, "Use Apple products on enterprise networks" (support.apple.com/101555):
     * "Apple services will fail any connection that uses HTTPS Interception (SSL
     * Inspection)". Push notifications, device activation and enrollment, software
     * updates, the App Store and iCloud. */
    "*.push.apple.com",
    "albert.apple.com",
    "gs.apple.com",
    "humb.apple.com",
    "deviceenrollment.apple.com",
    "mdmenrollment.apple.com",
    "iprofiles.apple.com",
    "identity.apple.com",
    "gdmf.apple.com",
    "mesu.apple.com",
    "swscan.apple.com",
    "swcdn.apple.com",
    "updates.cdn-apple.com",
    "*.itunes.apple.com",
    "*.mzstatic.com",
    "*.icloud.com",
    "*.icloud-content.com",
    "*.apple-cloudkit.com",
    /* Microsoft, "Windows Update security" (learn.microsoft.com): the update client's
     * metadata connections are certificate-pinned to Windows Update issuers, "it's
     * important that TLS proxies pass these connections without interception"; the
     * download and Delivery Optimization endpoints of the same article. */
    "*.windowsupdate.com",
    "*.update.microsoft.com",
    "*.delivery.mp.microsoft.com",
    "*.prod.do.dsp.mp.microsoft.com",
    /* Google, "Android Enterprise Network Requirements" (support.google.com/work/android,
     * answer 10513641): "Traffic to these endpoints should also bypass SSL inspection" —
     * Play, device check-in, app downloads and Firebase Cloud Messaging. (Not all of
     * *.googleapis.com: far too broad.) */
    "play.google.com",
    "android.clients.google.com",
    "dl.google.com",
    "*.gvt1.com",
    "fcm.googleapis.com",
    "fcm-xmpp.googleapis.com",
    /* Mozilla: the update service, in Firefox's static pin list (StaticHPKPins,
     * pinset mozilla_services), enforced against any root where pinning is strict
     * (security.cert_pinning.enforcement_level = 2, as managed deployments set it). */
    "aus5.mozilla.org",
    /* Dropbox: the sync clients pin their certificate authorities (the published pinset,
     * github.com/dropbox/certificate-pins). */
    "*.dropbox.com",
    "*.dropboxapi.com",
    /* Signal: the apps trust only Signal's own CA for their service, never the system's
     * roots, so interception can only fail. */
    "*.signal.org",
};
#define NBUILTIN (sizeof(builtin) / sizeof(builtin[0]))

int kr_defaults_seed_tx(tg_keyring *kr, tg_err *err)
{
    int rc = tg_store_defdomains_clear(kr->st, err);
    for (size_t i = 0; rc == 0 && i < NBUILTIN; i++)
        rc = tg_store_defdomains_add(kr->st, builtin[i], err);
    char v[32];
    snprintf(v, sizeof(v), "built-in %d", BUILTIN_REVISION);
    if (rc == 0) rc = tg_store_setting_set(kr->st, SETTING, v, err);
    return rc;
}

/* Whether the stored list is as it should be (imported, or the current built-in one). */
static int seeded(tg_keyring *kr)
{
    char v[32];
    int rev = 0;
    if (tg_store_setting_get(kr->st, SETTING, v, sizeof(v), NULL) != 0) return 0;
    if (strcmp(v, "imported") == 0) return 1;
    return sscanf(v, "built-in %d", &rev) == 1 && rev >= BUILTIN_REVISION;
}

int kr_defaults_ensure(tg_keyring *kr, tg_err *err)
{
    if (seeded(kr)) return 0;
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    /* again inside the transaction: another process may have seeded it meanwhile */
    return kr_finish(kr, seeded(kr) ? 0 : kr_defaults_seed_tx(kr, err), err);
}

static int append(const char *value, void *arg)
{
    return json_array_append_new(arg, json_string(value)) == 0 ? 0 : TG_E_INTERNAL;
}

int kr_defaults_array(tg_keyring *kr, json_t **out, tg_err *err)
{
    *out = json_array();
    if (*out == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = tg_store_defdomains_each(kr->st, append, *out, err);
    if (rc == TG_E_INTERNAL) tg_err_set(err, rc, "out of memory");
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int tg_keyring_defaults_show(tg_keyring *kr, json_t **out, tg_err *err)
{
    *out = NULL;
    json_t *domains = NULL;
    int rc = kr_defaults_array(kr, &domains, err);
    if (rc != 0) return rc;
    char v[32] = "";
    tg_store_setting_get(kr->st, SETTING, v, sizeof(v), NULL);
    *out =
        json_pack("{s:s, s:I, s:o}", "source", strcmp(v, "imported") == 0 ? "imported" : "built-in",
                  "domain_count", (json_int_t)json_array_size(domains), "domains", domains);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

int tg_keyring_defaults_export(tg_keyring *kr, char **out, size_t *outlen, tg_err *err)
{
    *out = NULL;
    *outlen = 0;
    json_t *doc = NULL;
    int rc = tg_keyring_defaults_show(kr, &doc, err);
    if (rc != 0) return rc;
    json_t *domains = json_object_get(doc, "domains"), *v;
    size_t i, size = 256;
    json_array_foreach(domains, i, v) size += strlen(json_string_value(v)) + 1;
    char *text = malloc(size), when[40];
    if (text == NULL) {
        json_decref(doc);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    tg_time_fmt(time(NULL), when, sizeof(when));
    size_t n = (size_t)snprintf(text, size,
                                "# tlsgate default never-decrypt list (%s, %zu domains), "
                                "exported %s\n# one domain a line; *.name covers every name "
                                "below name; import with: tlsgate policy defaults import FILE\n",
                                json_string_value(json_object_get(doc, "source")),
                                json_array_size(domains), when);
    json_array_foreach(domains, i, v) n +=
        (size_t)snprintf(text + n, size - n, "%s\n", json_string_value(v));
    json_decref(doc);
    *out = text;
    *outlen = n;
    return 0;
}

typedef struct importctx {
    tg_keyring *kr;
    size_t count;
} importctx;

static int import_line(size_t line, char **f, int n, void *arg, tg_err *err)
{
    importctx *x = arg;
    char domain[TG_DOMAIN_MAX + 1];
    tg_err why = {0};
    if (n != 1)
        return tg_err_set(err, TG_E_INVALID,
                          "line %zu of the default list has %s; write one domain a line", line,
                          n == 2 ? "2 fields" : "more than 2 fields");
    if (tg_domain_parse(f[0], domain, sizeof(domain), &why) != 0)
        return tg_err_set(err, why.code, "line %zu of the default list: %s", line, why.msg);
    if (++x->count > TG_POLICY_DOMAINS_MAX)
        return tg_err_set(err, TG_E_INVALID,
                          "line %zu of the default list: it holds more than %d domains, the "
                          "limit",
                          line, TG_POLICY_DOMAINS_MAX);
    return tg_store_defdomains_add(x->kr->st, domain, err);
}

int tg_keyring_defaults_import(tg_keyring *kr, const char *data, size_t len, json_t **out,
                               tg_err *err)
{
    *out = NULL;
    if (len > TG_FILE_MAX)
        return tg_err_set(err, TG_E_INVALID, "the default list is larger than %u MiB",
                          TG_FILE_MAX >> 20);
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    importctx x = {kr, 0};
    rc = tg_store_defdomains_clear(kr->st, err);
    if (rc == 0)
        rc = kr_lines_each(data, len, 4 * TG_POLICY_DOMAINS_MAX, "default list", import_line, &x,
                           err);
    if (rc == 0 && x.count == 0)
        rc = tg_err_fset(err, TG_E_INVALID, "no_defaults",
                         "the default list holds no domain; to include no default list in a "
                         "policy, set the policy not to include the defaults instead");
    if (rc == 0) rc = tg_store_setting_set(kr->st, SETTING, "imported", err);
    if ((rc = kr_finish(kr, rc, err)) != 0) return rc;
    return tg_keyring_defaults_show(kr, out, err);
}

int tg_keyring_defaults_reset(tg_keyring *kr, json_t **out, tg_err *err)
{
    *out = NULL;
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    if ((rc = kr_finish(kr, kr_defaults_seed_tx(kr, err), err)) != 0) return rc;
    return tg_keyring_defaults_show(kr, out, err);
}
