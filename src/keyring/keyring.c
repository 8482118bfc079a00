/*
 * keyring.c — opening the keyring, first-use initialisation (K1, the default never-decrypt
 * list included), factory reset (K12)
 * and the helpers every operation shares (key sealing, names, documents).
 */
#include "keyring_int.h"

#include <ctype.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int kr_finish(tg_keyring *kr, int rc, tg_err *err)
{
    if (rc != 0) {
        tg_store_rollback(kr->st);
        return rc;
    }
    return tg_store_commit(kr->st, err);
}

/* What is wrong with text (a name or description) in words, or NULL when it is fine. */
const char *kr_text_problem(const char *s, char *buf, size_t bufsize)
{
    size_t at = 0;
    uint32_t cp = 0;
    switch (tg_text_check(s, &at, &cp)) {
    case 0:
        return NULL;
    case TG_TEXT_NOT_UTF8:
        snprintf(buf, bufsize,
                 "is not valid UTF-8 (byte %zu); check the terminal's or file's "
                 "character encoding",
                 at + 1);
        break;
    default:
        snprintf(buf, bufsize,
                 "holds U+%04X at byte %zu, a control, bidi-override or invisible character; "
                 "use printable characters only",
                 (unsigned)cp, at + 1);
    }
    return buf;
}

int tg_keyring_name_check(const char *name, tg_err *err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0) return tg_err_set(err, TG_E_INVALID, "a friendly name must not be empty");
    char why[160];
    if (kr_text_problem(name, why, sizeof(why)) != NULL)
        return tg_err_set(err, TG_E_INVALID, "the friendly name %s", why);
    if (n > TG_NAME_MAX)
        return tg_err_set(err, TG_E_INVALID,
                          "the friendly name is too long (%zu bytes; the limit is %d)", n,
                          TG_NAME_MAX);
    if (name[0] == ' ' || name[n - 1] == ' ')
        return tg_err_set(err, TG_E_INVALID,
                          "the friendly name must not begin or end with a space");
    return 0;
}

const char *kr_name_derive(const char *base, char *out, size_t outsize)
{
    char tmp[TG_NAME_MAX + 1];
    tg_text_clean(base ? base : "", tmp, sizeof(tmp), TG_NAME_MAX);
    const char *p = tmp;
    while (*p == ' ')
        p++;
    size_t n = strlen(p);
    while (n > 0 && p[n - 1] == ' ')
        n--;
    if (n == 0) p = "certificate", n = strlen(p);
    n = tg_utf8_cut(p, n, outsize - 1);
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

int kr_cert_row(const tg_cert *cert, tg_store_cert *row, tg_err *err)
{
    memset(row, 0, sizeof(*row));
    tg_certinfo info;
    int rc = tg_cert_info(cert, &info, err);
    if (rc != 0) return rc;
    if ((rc = tg_cert_spki_sha256(cert, row->spki_sha256, err)) != 0 ||
        (rc = tg_cert_to_der(cert, &row->der, &row->derlen, err)) != 0) {
        tg_certinfo_clear(&info);
        return rc;
    }
    row->subject = info.subject;
    row->subject_cn = info.subject_cn;
    row->issuer = info.issuer;
    row->issuer_cn = info.issuer_cn;
    row->serial = info.serial;
    row->san_list = kr_sans_encode(&info.sans);
    tg_sanlist_free(&info.sans);
    row->sigalg = info.sigalg;
    row->key_desc = tg_strdup(info.key_desc);
    snprintf(row->key_type, sizeof(row->key_type), "%s", info.key_type);
    row->key_bits = info.key_bits;
    memcpy(row->sha256, info.sha256, sizeof(row->sha256));
    row->not_before = info.not_before;
    row->not_after = info.not_after;
    row->is_ca = info.is_ca;
    row->self_signed = info.self_signed;
    return row->key_desc && row->san_list ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

int kr_key_forbid_export(tg_keyring *kr, int64_t key_id, int *tightened, tg_err *err)
{
    tg_store_key have;
    int rc = tg_store_key_get(kr->st, key_id, &have, err);
    if (rc != 0 || !have.exportable) return rc;
    if ((rc = tg_store_key_forbid_export(kr->st, key_id, err)) == 0 && tightened) *tightened = 1;
    return rc;
}

int kr_key_put_encoded(tg_keyring *kr, const tg_key *key, const unsigned char spki[32],
                       const unsigned char *der, size_t len, int exportable, int64_t *id,
                       int *tightened, tg_err *err)
{
    if (tightened) *tightened = 0;
    tg_store_key k = {0};
    memcpy(k.spki_sha256, spki, 32);
    tg_store_key have;
    int rc = tg_store_key_find(kr->st, k.spki_sha256, &have, err);
    if (rc == 0) {
        *id = have.id;
        return exportable ? 0 : kr_key_forbid_export(kr, have.id, tightened, err);
    }
    if (rc != TG_E_NOTFOUND) return rc;
    tg_key_describe(key, k.descr, sizeof(k.descr));
    k.exportable = exportable;
    rc = tg_store_key_add(kr->st, &k, der, len, err);
    if (rc == 0) *id = k.id;
    return rc;
}

int kr_key_put(tg_keyring *kr, const tg_key *key, int exportable, int64_t *id, int *tightened,
               tg_err *err)
{
    unsigned char spki[32], *der = NULL;
    size_t len = 0;
    int rc = tg_key_check_strength(key, err);
    if (rc == 0) rc = tg_key_spki_sha256(key, spki, err);
    if (rc == 0) rc = tg_key_to_der(key, &der, &len, err);
    if (rc == 0) rc = kr_key_put_encoded(kr, key, spki, der, len, exportable, id, tightened, err);
    tg_free_secret(der, len);
    return rc;
}

int kr_key_load(tg_keyring *kr, int64_t key_id, tg_key **out, tg_err *err)
{
    unsigned char *der = NULL;
    size_t len = 0;
    int rc = tg_store_key_unseal(kr->st, key_id, &der, &len, err);
    if (rc != 0) return rc;
    rc = tg_key_from_der(der, len, out, err);
    tg_free_secret(der, len);
    return rc;
}

/* name for number i: base, or base-i with base cut on a character boundary so that the
 * whole stays within TG_NAME_MAX bytes */
static void numbered(const char *base, unsigned long i, char *out, size_t outsize)
{
    char suffix[24] = "";
    if (i > 1) snprintf(suffix, sizeof(suffix), "-%lu", i);
    size_t n = tg_utf8_cut(base, strlen(base), TG_NAME_MAX - strlen(suffix));
    while (n > 0 && base[n - 1] == ' ')
        n--;
    snprintf(out, outsize, "%.*s%s", (int)n, base, suffix);
}

int kr_unique_name(tg_keyring *kr, const char *base, char *out, size_t outsize, size_t *probes,
                   tg_err *err)
{
    char clean[TG_NAME_MAX + 1];
    kr_name_derive(base, clean, sizeof(clean));
    size_t count = 0;
#define TAKEN(i)                                                                                   \
    (count++, numbered(clean, (i), out, outsize),                                                  \
     tg_store_name_taken(kr->st, out) || strcasecmp(out, TG_IDENTITY_NAME) == 0)
    /* Taken numbers are usually 1..k (k certificates with one CN): gallop to a free
     * number, then bisect between a taken and a free one. Log(k) lookups, where probing
     * 1, 2, 3, … made a bulk import of k same-CN certificates quadratic. */
    unsigned long lo = 1, hi = 2;
    int found = !TAKEN(1);
    if (!found) {
        while (hi < (1ul << 30) && TAKEN(hi))
            lo = hi, hi *= 2;
        found = hi < (1ul << 30);
        while (found && hi - lo > 1) {
            unsigned long mid = lo + (hi - lo) / 2;
            if (TAKEN(mid))
                lo = mid;
            else
                hi = mid;
        }
        if (found) numbered(clean, hi, out, outsize);
    }
#undef TAKEN
    if (probes) *probes = count;
    if (found) return 0;
    return tg_err_fset(err, TG_E_CONFLICT, "name", "no free friendly name near '%s'; give one",
                       clean);
}

int kr_ca_name_check(const char *name, tg_err *err)
{
    int rc = tg_keyring_name_check(name, err);
    if (rc != 0) return rc;
    if (strcasecmp(name, "ca") == 0)
        return tg_err_set(err, TG_E_INVALID, "'ca' is a reserved name; choose another");
    if (strcasecmp(name, "rollover-plan") == 0) /* GET /api/v1/ca/rollover-plan */
        return tg_err_set(err, TG_E_INVALID,
                          "'rollover-plan' is a reserved name (the API's path for the rollover "
                          "plan); choose another");
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != ' ')
            return tg_err_set(err, TG_E_INVALID,
                              "a CA certificate's name may hold letters, digits, hyphens, "
                              "underscores and spaces only ('%s' does not)",
                              name);
    return 0;
}

const char *kr_ca_name_from(const char *base, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = base; *p && n + 1 < size; p++) {
        unsigned char c = (unsigned char)*p;
        out[n++] = (isalnum(c) || c == '-' || c == '_' || c == ' ') && c < 0x80 ? (char)c : '-';
    }
    out[n] = '\0';
    while (n > 0 && out[n - 1] == ' ')
        out[--n] = '\0';
    if (n == 0 || strcasecmp(out, "ca") == 0) snprintf(out, size, "CA certificate");
    return out;
}

int kr_cert_get(tg_keyring *kr, const char *name, tg_store_cert *out, tg_err *err)
{
    int rc = tg_store_cert_by_name(kr->st, name, out, err);
    if (rc == TG_E_NOTFOUND)
        return tg_err_set(err, TG_E_NOTFOUND,
                          "no certificate is named '%s' (the list of certificates shows the names)",
                          name);
    return rc;
}

int kr_ca_get(tg_keyring *kr, const char *name, tg_store_cert *out, tg_err *err)
{
    tg_err why = {0};
    int rc = tg_store_cert_by_name(kr->st, name, out, &why);
    if (rc == 0 && !out->is_ca) {
        tg_store_cert_clear(out);
        rc = TG_E_NOTFOUND;
    }
    if (rc == TG_E_NOTFOUND)
        return tg_err_set(
            err, TG_E_NOTFOUND,
            "no CA certificate is named '%s' (the list of CA certificates shows the names)", name);
    return rc == 0 ? 0 : tg_err_set(err, rc, "%s", why.msg);
}

static int create_default(tg_keyring *kr, tg_err *err)
{
    char host[256] = "", hsan[300] = "";
    const char *sans[4] = {"DNS:localhost", "IP:127.0.0.1", "IP:::1", NULL};
    size_t nsans = 3;
    if (gethostname(host, sizeof(host) - 1) == 0 && tg_dns_name_valid(host, 0) &&
        strcmp(host, "localhost") != 0) {
        snprintf(hsan, sizeof(hsan), "DNS:%s", host);
        sans[nsans++] = hsan;
    }
    tg_newcert spec = {.name = TG_DEFAULT_CERT_NAME,
                       .subject = {.cn = "tlsgate appliance", .org = "tlsgate"},
                       .sans = sans,
                       .nsans = nsans,
                       .keyspec = "ec:p256",
                       .days = 825,
                       .days_set = 1};
    int64_t id = 0;
    int rc = kr_create_tx(kr, &spec, 1, &id, err);
    if (rc == 0) rc = tg_store_ref_set(kr->st, TG_REF_DEFAULT, id, err);
    if (rc == 0) rc = tg_store_setting_set(kr->st, "initialised", "1", err);
    if (rc == 0) rc = kr_defaults_seed_tx(kr, err); /* the built-in never-decrypt list */
    return rc;
}

/* Initialises the store when it is new; *created says whether it was. */
static int ensure_init(tg_keyring *kr, int *created, tg_err *err)
{
    char v[8];
    *created = 0;
    if (tg_store_setting_get(kr->st, "initialised", v, sizeof(v), NULL) == 0) return 0;
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    if (tg_store_setting_get(kr->st, "initialised", v, sizeof(v), NULL) == 0)
        return kr_finish(kr, 0, err);
    rc = create_default(kr, err);
    if (rc == 0) *created = 1;
    return kr_finish(kr, rc, err);
}

static int keyring_open(const char *home, int create, tg_keyring **out, tg_err *err)
{
    *out = NULL;
    tg_keyring *kr = calloc(1, sizeof(*kr));
    if (kr == NULL || (kr->home = tg_strdup(home)) == NULL) {
        free(kr);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    int rc =
        create ? tg_store_open(home, &kr->st, err) : tg_store_open_existing(home, &kr->st, err);
    if (rc == 0) rc = kr_fill_old_rows(kr, err);
    if (rc == 0) rc = ensure_init(kr, &kr->created, err);
    if (rc == 0) rc = kr_defaults_ensure(kr, err);
    if (rc != 0) {
        tg_keyring_close(kr);
        return rc;
    }
    *out = kr;
    return 0;
}

int tg_keyring_open(const char *home, tg_keyring **out, tg_err *err)
{
    return keyring_open(home, 1, out, err);
}

int tg_keyring_open_existing(const char *home, tg_keyring **out, tg_err *err)
{
    return keyring_open(home, 0, out, err);
}

void tg_keyring_close(tg_keyring *kr)
{
    if (kr == NULL) return;
    tg_store_close(kr->st);
    free(kr->home);
    free(kr);
}

int tg_keyring_init(tg_keyring *kr, json_t **out, tg_err *err)
{
    int created = 0;
    int rc = ensure_init(kr, &created, err);
    if (rc != 0) return rc;
    created |= kr->created;
    tg_store_cert def = {0};
    int64_t id = tg_store_ref_get(kr->st, TG_REF_DEFAULT);
    if (id != 0) tg_store_cert_get(kr->st, id, &def, NULL);
    /* default_certificate: a name (a certificate's "default" is a boolean) */
    *out = json_pack("{s:s, s:s, s:b, s:o}", "home", kr->home, "store", tg_store_path(kr->st),
                     "new_store", created, "default_certificate", kr_json_opt(def.name));
    tg_store_cert_clear(&def);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

int tg_keyring_factory_reset(tg_keyring *kr, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    rc = tg_store_wipe(kr->st, err);
    if (rc == 0) rc = tg_store_rekey(kr->st, err); /* nothing sealed before survives */
    if (rc == 0) rc = create_default(kr, err);
    rc = kr_finish(kr, rc, err);
    if (rc == 0) { /* the identity went with the reset: its last attempt's state goes too */
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", kr->home, TG_IDENTITY_STATE_FILE);
        unlink(path);
    }
    return rc;
}

/* ---- documents ---- */

json_t *kr_json_text(const char *s)
{
    json_t *j = json_string(s ? s : "");
    if (j != NULL || s == NULL) return j;
    /* not UTF-8 (a row written before names were checked): shown with U+FFFD */
    char *clean = malloc(strlen(s) * 3 + 1);
    if (clean == NULL) return NULL;
    size_t o = 0;
    for (const char *p = s; *p;) {
        uint32_t cp;
        size_t n = tg_utf8_next(p, &cp);
        if (n == 0) {
            memcpy(clean + o, "\xef\xbf\xbd", 3), o += 3, p++;
        } else {
            memcpy(clean + o, p, n), o += n, p += n;
        }
    }
    clean[o] = '\0';
    j = json_string(clean);
    free(clean);
    return j;
}

json_t *kr_json_opt(const char *s)
{
    return s == NULL || s[0] == '\0' ? json_null() : kr_json_text(s);
}

int kr_json_time(json_t *doc, const char *name, long long t)
{
    char text[40], unix_name[64];
    tg_time_rfc3339((time_t)t, text, sizeof(text));
    snprintf(unix_name, sizeof(unix_name), "%s_unix", name);
    return json_object_set_new(doc, name, json_string(text)) == 0 &&
                   json_object_set_new(doc, unix_name, json_integer(t)) == 0
               ? 0
               : -1;
}

char *kr_sans_encode(const tg_sanlist *l)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < l->n; i++)
        if (json_array_append_new(a, json_pack("[s, o]", tg_san_type_name(l->v[i].type),
                                               kr_json_text(l->v[i].value))) != 0) {
            json_decref(a);
            a = NULL;
        }
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

int kr_sans_decode(const char *text, tg_sanlist *out)
{
    memset(out, 0, sizeof(*out));
    json_t *a = text ? json_loads(text, 0, NULL) : NULL;
    int rc = json_is_array(a) ? 0 : -1;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        const char *type = json_string_value(json_array_get(v, 0));
        json_t *value = json_array_get(v, 1);
        tg_san_type t;
        if (type == NULL || !json_is_string(value) || tg_san_type_parse(type, &t) != 0 ||
            tg_sanlist_add(out, t, json_string_value(value), json_string_length(value)) != 0) {
            rc = -1;
            break;
        }
    }
    json_decref(a);
    if (rc != 0) tg_sanlist_free(out);
    return rc;
}

json_t *kr_sans_doc(const char *text, size_t *bad_hosts)
{
    json_t *a = json_array();
    tg_sanlist l;
    if (bad_hosts) *bad_hosts = 0;
    if (kr_sans_decode(text, &l) != 0) return a; /* damaged: shown as none */
    for (size_t i = 0; a != NULL && i < l.n; i++) {
        if (bad_hosts && l.v[i].type == TG_SAN_DNS && !tg_san_host_name(l.v[i].value))
            (*bad_hosts)++;
        json_array_append_new(a, json_pack("{s:s, s:s}", "type", tg_san_type_name(l.v[i].type),
                                           "value", l.v[i].value));
    }
    tg_sanlist_free(&l);
    return a;
}

static int fill_cert(tg_keyring *kr, int64_t id, tg_err *err)
{
    tg_store_cert row;
    tg_cert *cert = NULL;
    tg_certinfo info = {0};
    char *json = NULL;
    int rc = tg_store_cert_get(kr->st, id, &row, err);
    if (rc != 0) return rc;
    if ((rc = tg_cert_from_der(row.der, row.derlen, &cert, err)) == 0 &&
        (rc = tg_cert_info(cert, &info, err)) == 0) {
        json = kr_sans_encode(&info.sans);
        rc = json ? tg_store_cert_set_facts(kr->st, id, json, info.key_type, info.key_bits, err)
                  : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    free(json);
    tg_certinfo_clear(&info);
    tg_cert_free(cert);
    tg_store_cert_clear(&row);
    return rc;
}

static int fill_req(tg_keyring *kr, int64_t id, tg_err *err)
{
    tg_store_req r;
    tg_sanlist l = {0};
    char *json = NULL;
    int rc = tg_store_req_get(kr->st, id, &r, err);
    if (rc != 0) return rc;
    if ((rc = tg_csr_sans(r.pem, &l, err)) == 0) {
        json = kr_sans_encode(&l);
        rc = json ? tg_store_req_set_sans(kr->st, id, json, err)
                  : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    free(json);
    tg_sanlist_free(&l);
    tg_store_req_clear(&r);
    return rc;
}

int kr_fill_old_rows(tg_keyring *kr, tg_err *err)
{
    int64_t *certs = NULL, *reqs = NULL;
    size_t nc = 0, nr = 0;
    int rc = tg_store_unfilled(kr->st, 0, &certs, &nc, err);
    if (rc == 0) rc = tg_store_unfilled(kr->st, 1, &reqs, &nr, err);
    if (rc == 0 && nc + nr > 0) {
        free(certs);
        free(reqs);
        certs = reqs = NULL;
        /* again inside the transaction: another process may have filled them meanwhile */
        if ((rc = tg_store_begin(kr->st, err)) != 0) return rc;
        if ((rc = tg_store_unfilled(kr->st, 0, &certs, &nc, err)) == 0)
            rc = tg_store_unfilled(kr->st, 1, &reqs, &nr, err);
        for (size_t i = 0; rc == 0 && i < nc; i++)
            rc = fill_cert(kr, certs[i], err);
        for (size_t i = 0; rc == 0 && i < nr; i++)
            rc = fill_req(kr, reqs[i], err);
        rc = kr_finish(kr, rc, err);
    }
    free(certs);
    free(reqs);
    /* Stored chains (schema 4): computed with the statuses, for all at once, since a chain
     * refers to other rows; serve never builds one itself. */
    if (rc == 0 && tg_store_chain_unfilled(kr->st)) {
        if ((rc = tg_store_begin(kr->st, err)) != 0) return rc;
        rc = kr_finish(kr, tg_store_chain_unfilled(kr->st) ? kr_refresh_tx(kr, NULL, err) : 0, err);
    }
    return rc;
}

int kr_sans_name_server(const char *json, char *first, size_t size)
{
    tg_sanlist sans;
    if (json == NULL || kr_sans_decode(json, &sans) != 0) return 0;
    int found = 0;
    for (size_t i = 0; i < sans.n && !found; i++) {
        const tg_san *v = &sans.v[i];
        found = v->type == TG_SAN_IP || (v->type == TG_SAN_DNS && tg_san_host_name(v->value));
        if (found && first != NULL)
            snprintf(first, size, "%s:%.*s", v->type == TG_SAN_IP ? "IP" : "DNS",
                     (int)tg_utf8_cut(v->value, strlen(v->value), 200), v->value);
    }
    tg_sanlist_free(&sans);
    return found;
}

static json_t *warnings(const tg_store_cert *c, long long now)
{
    json_t *w = json_array();
    /* whole days left, rounded up: a certificate made for 20 days "expires in 20 days"
     * until a full day has passed (rounded down it said 19 a second after its creation,
     * so two documents of one moment could disagree); warned when 30 or fewer (K9) */
    long long days = (c->not_after - now + 86399) / 86400;
    if (c->not_after <= now)
        json_array_append_new(w, json_string("expired"));
    else if (c->not_before > now)
        json_array_append_new(w, json_string("not yet valid"));
    else if (days <= 30) {
        char buf[48];
        snprintf(buf, sizeof(buf), "expires in %lld day%s", days, days == 1 ? "" : "s");
        json_array_append_new(w, json_string(buf));
    }
    if (c->self_signed && !c->is_ca) json_array_append_new(w, json_string("self-signed"));
    /* issue 14, item 6: what `openssl req -x509` makes by default, filed as a CA */
    if (c->self_signed && c->is_ca && kr_sans_name_server(c->san_list, NULL, 0))
        json_array_append_new(w, json_string("a CA certificate that names servers"));
    /* the chain status (C2), unless the certificate's own validity already said it */
    if (c->status[0] && strcmp(c->status, "valid") != 0 &&
        !(c->not_after <= now && strcmp(c->status, "expired") == 0) &&
        !(c->not_before > now && strcmp(c->status, "not yet valid") == 0)) {
        char buf[48];
        snprintf(buf, sizeof(buf), "%s%s", strcmp(c->status, "expired") == 0 ? "chain " : "",
                 c->status);
        json_array_append_new(w, json_string(buf));
    }
    if (strcmp(c->key_type, "RSA") == 0 && c->key_bits < 2048)
        json_array_append_new(w, json_string("weak key"));
    if (strstr(c->sigalg, "sha1") || strstr(c->sigalg, "SHA1") || strstr(c->sigalg, "md5"))
        json_array_append_new(w, json_string("weak signature algorithm"));
    return w;
}

static const char *classify(const tg_store_cert *c)
{
    if (!c->is_ca) return "identity";
    return c->self_signed ? "root" : "intermediate";
}

json_t *kr_cert_list_row(const tg_store_cert *c, int64_t default_id, long long now)
{
    json_t *w = warnings(c, now);
    size_t bad_hosts = 0;
    json_t *sans = kr_sans_doc(c->san_list, &bad_hosts);
    if (w != NULL && bad_hosts > 0)
        json_array_append_new(w, json_string("an alternative DNS name is not a host name "
                                             "(never served for it)"));
    if (w != NULL && tg_text_check(c->name, NULL, NULL) == TG_TEXT_NOT_UTF8)
        json_array_append_new(w, json_string("friendly name is not valid UTF-8; rename it"));
    /* signing: a CA whose key we hold can sign certificates (SPEC I1) */
    json_t *row =
        json_pack("{s:o, s:s, s:o, s:o}", "name", kr_json_text(c->name), "type", classify(c),
                  "issued_to", kr_json_text(c->subject_cn[0] ? c->subject_cn : c->subject),
                  "issued_by", kr_json_text(c->issuer_cn[0] ? c->issuer_cn : c->issuer));
    /* whole days left, rounded up as in the warnings: 1 on the last day, 0 or less once expired */
    long long left = c->not_after - now;
    json_int_t days_left = left > 0 ? (left + 86399) / 86400 : -(-left / 86400);
    json_t *rest = json_pack("{s:I, s:o, s:b, s:b, s:b, s:o, s:s}", "days_left", days_left,
                             "alternative_names", sans, "private_key", c->key_id != 0, "signing",
                             c->is_ca && c->key_id != 0, "default", c->id == default_id, "warnings",
                             w, "sha256", c->sha256);
    if (row == NULL || rest == NULL || kr_json_time(row, "not_before", c->not_before) != 0 ||
        kr_json_time(row, "not_after", c->not_after) != 0 || json_object_update(row, rest) != 0) {
        json_decref(row);
        row = NULL;
    }
    json_decref(rest);
    return row;
}

static json_t *name_of(tg_keyring *kr, int64_t id)
{
    if (id == 0) return json_null();
    tg_store_cert c;
    if (tg_store_cert_get(kr->st, id, &c, NULL) != 0) return json_null();
    json_t *s = kr_json_text(c.name);
    tg_store_cert_clear(&c);
    return s;
}

json_t *kr_cert_doc(tg_keyring *kr, const tg_store_cert *c)
{
    long long now = (long long)time(NULL);
    int64_t def = tg_store_ref_get(kr->st, TG_REF_DEFAULT);
    json_t *doc = kr_cert_list_row(c, def, now);
    if (doc == NULL) return NULL;
    json_object_set_new(doc, "subject", kr_json_text(c->subject));
    json_object_set_new(doc, "issuer", kr_json_text(c->issuer));
    json_object_set_new(doc, "serial", json_string(c->serial));
    json_object_set_new(doc, "key", json_string(c->key_desc));
    json_object_set_new(doc, "signature_algorithm", json_string(c->sigalg));
    json_object_set_new(doc, "ca", json_boolean(c->is_ca));
    json_object_set_new(doc, "self_signed", json_boolean(c->self_signed));
    json_object_set_new(doc, "chain_status", json_string(c->status));
    json_object_set_new(doc, "chain", kr_chain_doc(kr, c));
    /* never null: a certificate without a key has none to export (private_key says which) */
    tg_store_key k;
    int exportable =
        c->key_id != 0 && tg_store_key_get(kr->st, c->key_id, &k, NULL) == 0 && k.exportable;
    json_object_set_new(doc, "exportable", json_boolean(exportable));
    json_object_set_new(doc, "predecessor", name_of(kr, c->predecessor_id));
    tg_store_cert succ;
    if (tg_store_cert_successor(kr->st, c->id, &succ, NULL) == 0) {
        json_object_set_new(doc, "successor", kr_json_text(succ.name));
        tg_store_cert_clear(&succ);
    } else {
        json_object_set_new(doc, "successor", json_null());
    }
    tg_store_req r;
    if (c->request_id != 0 && tg_store_req_get(kr->st, c->request_id, &r, NULL) == 0) {
        json_object_set_new(doc, "request", kr_json_text(r.name));
        tg_store_req_clear(&r);
    } else {
        json_object_set_new(doc, "request", json_null());
    }
    /* a list, as everywhere: what refers to the certificate (today the one holder the
     * store reports, such as "default certificate") */
    char holder[128];
    json_t *users = json_array();
    if (users != NULL && tg_store_ref_holder(kr->st, c->id, holder, sizeof(holder)))
        json_array_append_new(users, json_string(holder));
    json_object_set_new(doc, "used_by", users);
    json_object_set_new(doc, "protected", json_boolean(c->protected_));
    return doc;
}
