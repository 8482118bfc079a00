/*
 * import.c — bringing certificates in (K4, K5) and replacing one in place (K7).
 *
 * A certificate finds its key by public key, never by name: a key in the same files,
 * a key already sealed in the store, or the key of a pending request (which the
 * import then completes). A certificate for a key we hold with a later expiry than the
 * newest one we have becomes that one's successor and takes over its references.
 * All files of one command are decoded before the transaction starts and stored in it;
 * beyond IMPORT_CHUNK files (below) they are decoded a chunk at a time inside it, so that
 * memory stays bounded: such an import holds the store's write lock for its whole run, and
 * other writers (serve's API, renewals, other commands) wait up to the store's busy
 * timeout (10 s) and then say the store is busy. README "Limits" says so.
 */
#include "keyring_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct item {
    tg_cert *cert; /* borrowed from the bundle */
    const char *file;
    const char *alias;      /* PKCS#12 friendly name, or NULL */
    int leaf;               /* an end-entity (or keyed) certificate the command is about */
    char *name;             /* the name chosen for it before storing (NULL: derive) */
    unsigned char spki[32]; /* SHA-256 of its public key: how keys are matched */
    int explicit_name;      /* name came from --name: taken is a conflict, not a suffix */
} item;

typedef struct loaded {
    tg_bundle *bundles;
    size_t nbundles;
    item *items;
    size_t nitems;
    tg_key **keys; /* borrowed */
    unsigned char (*keyspki)[32];
    const char **keyfiles;
    size_t nkeys;
    size_t *keyorder;       /* key indexes by (spki, index): matching by search, not by scan */
    char *keymatched;       /* per key: a certificate of these files has its public key */
    size_t *keyinput;       /* per key: the index of the input it came from */
    unsigned char **keyder; /* per key: its PKCS#8 DER (owned, wiped when freed) */
    size_t *keyderlen;
} loaded;

static void loaded_free(loaded *l)
{
    for (size_t i = 0; i < l->nbundles; i++)
        tg_bundle_clear(&l->bundles[i]);
    free(l->bundles);
    for (size_t i = 0; i < l->nitems; i++)
        free(l->items[i].name);
    free(l->items);
    free(l->keys);
    free(l->keyspki);
    free(l->keyfiles);
    free(l->keyorder);
    free(l->keymatched);
    free(l->keyinput);
    for (size_t i = 0; l->keyder != NULL && i < l->nkeys; i++)
        tg_free_secret(l->keyder[i], l->keyderlen[i]);
    free(l->keyder);
    free(l->keyderlen);
    memset(l, 0, sizeof(*l));
}

/* One input decoded, with what its certificates and keys are matched by; made on any
 * thread (decode_input touches nothing shared), appended to the command's list in
 * the order the inputs were given (append_decoded). */
typedef struct decoded {
    tg_bundle b;
    unsigned char (*cspki)[32]; /* per certificate */
    unsigned char (*kspki)[32]; /* per key */
    unsigned char **kder;       /* per key: its PKCS#8 DER, what the store seals */
    size_t *kderlen, nkder;
    int rc;
    tg_err err;
    tg_passsrc refuse; /* a thread's stand-in for a source that may prompt */
    int asked;         /* ... and it was asked: decode this one again, in order */
} decoded;

static void decoded_clear(decoded *d)
{
    tg_bundle_clear(&d->b);
    for (size_t i = 0; d->kder != NULL && i < d->nkder; i++)
        tg_free_secret(d->kder[i], d->kderlen[i]);
    free(d->kder);
    free(d->kderlen);
    free(d->cspki);
    free(d->kspki);
    memset(d, 0, sizeof(*d));
}

static int decode_input(const tg_input *in, const tg_passsrc *pass, int key_only, decoded *d,
                        tg_err *err)
{
    const char *path = in->label;
    memset(&d->b, 0, sizeof(d->b));
    d->cspki = d->kspki = NULL;
    d->kder = NULL;
    d->kderlen = NULL;
    d->nkder = 0;
    int rc = tg_bundle_decode(in->data, in->len, path, pass, &d->b, err);
    if (rc != 0) return rc;
    if (key_only && (d->b.nkeys == 0 || d->b.ncerts > 0) && d->b.nkeys != 1)
        return tg_err_set(err, TG_E_INVALID, "%s must hold exactly one private key", path);
    if (key_only && d->b.nkeys == 0)
        return tg_err_set(err, TG_E_INVALID, "%s holds no private key", path);
    d->cspki = calloc(d->b.ncerts + 1, sizeof(*d->cspki));
    d->kspki = calloc(d->b.nkeys + 1, sizeof(*d->kspki));
    if (d->cspki == NULL || d->kspki == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < d->b.ncerts; i++) {
        if ((rc = tg_cert_spki_sha256(d->b.certs[i], d->cspki[i], err)) != 0) return rc;
        size_t nsans = tg_cert_san_count(d->b.certs[i]);
        if (nsans > TG_SANS_IMPORT_MAX)
            return tg_err_set(err, TG_E_INVALID,
                              "%s holds a certificate with %zu subject alternative names; "
                              "tlsgate imports certificates with at most %d",
                              path, nsans, TG_SANS_IMPORT_MAX);
    }
    d->kder = calloc(d->b.nkeys + 1, sizeof(*d->kder));
    d->kderlen = calloc(d->b.nkeys + 1, sizeof(*d->kderlen));
    if (d->kder == NULL || d->kderlen == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < d->b.nkeys; i++, d->nkder++)
        if ((rc = tg_key_check_strength(d->b.keys[i], err)) != 0 ||
            (rc = tg_key_spki_sha256(d->b.keys[i], d->kspki[i], err)) != 0 ||
            (rc = tg_key_to_der(d->b.keys[i], &d->kder[i], &d->kderlen[i], err)) != 0)
            return rc;
    return 0;
}

/* Moves a decoded input into l (the bundle is l's from then on). */
static int append_decoded(loaded *l, const tg_input *in, size_t index, decoded *d, tg_err *err)
{
    const char *path = in->label;
    tg_bundle b = d->b;
    tg_bundle *nb = realloc(l->bundles, (l->nbundles + 1) * sizeof(*nb));
    if (nb) l->bundles = nb;
    item *ni = realloc(l->items, (l->nitems + b.ncerts + 1) * sizeof(*ni));
    if (ni) l->items = ni;
    tg_key **nk = realloc(l->keys, (l->nkeys + b.nkeys + 1) * sizeof(*nk));
    if (nk) l->keys = nk;
    unsigned char(*ns)[32] = realloc(l->keyspki, (l->nkeys + b.nkeys + 1) * sizeof(*ns));
    if (ns) l->keyspki = ns;
    const char **nf = realloc(l->keyfiles, (l->nkeys + b.nkeys + 1) * sizeof(*nf));
    if (nf) l->keyfiles = nf;
    unsigned char **nd = realloc(l->keyder, (l->nkeys + b.nkeys + 1) * sizeof(*nd));
    if (nd) l->keyder = nd;
    size_t *nl = realloc(l->keyderlen, (l->nkeys + b.nkeys + 1) * sizeof(*nl));
    if (nl) l->keyderlen = nl;
    size_t *nx = realloc(l->keyinput, (l->nkeys + b.nkeys + 1) * sizeof(*nx));
    if (nx) l->keyinput = nx;
    if (!nb || !ni || !nk || !ns || !nf || !nd || !nl || !nx)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    l->bundles[l->nbundles++] = b;
    memset(&d->b, 0, sizeof(d->b)); /* l's now */
    for (size_t i = 0; i < b.ncerts; i++) {
        item *it = &l->items[l->nitems++];
        *it = (item){.cert = b.certs[i], .file = path, .alias = b.aliases[i]};
        memcpy(it->spki, d->cspki[i], 32);
    }
    for (size_t i = 0; i < b.nkeys; i++) {
        memcpy(l->keyspki[l->nkeys], d->kspki[i], 32);
        l->keyfiles[l->nkeys] = path;
        l->keyinput[l->nkeys] = index;
        l->keyder[l->nkeys] = d->kder[i]; /* l's now */
        l->keyderlen[l->nkeys] = d->kderlen[i];
        d->kder[i] = NULL;
        d->kderlen[i] = 0;
        l->keys[l->nkeys++] = b.keys[i];
    }
    return 0;
}

static int load_input(loaded *l, const tg_input *in, size_t index, const tg_passsrc *pass,
                      int key_only, tg_err *err)
{
    decoded d = {0};
    int rc = decode_input(in, pass, key_only, &d, err);
    if (rc == 0) rc = append_decoded(l, in, index, &d, err);
    decoded_clear(&d);
    return rc;
}

/* ---- decoding on every core (issue 13, item 3) ----
 * A bulk import spends most of its time in OpenSSL 3.0's decoders, one file at a time;
 * the files are independent, so threads take them in turn and the results are appended
 * in the order given, the first failure (in that order) being the command's. A password
 * source is shared between threads only when it answers the same every time without
 * asking anyone (a file, the environment): a prompt would not say which file it is for. */
#define DECODE_THREADS_MAX  8
#define DECODE_PARALLEL_MIN 32 /* fewer inputs: one thread, no setup */

typedef struct decode_job {
    const tg_import *imp;
    decoded *out;
    size_t next, n;
    size_t base, total;   /* what progress counts: a chunk's inputs within the command's */
    pthread_mutex_t lock; /* next, and the password source */
    tg_passsrc locked;
    void (*progress)(void *arg, const char *phase, size_t done, size_t total);
    size_t done;
} decode_job;

static int locked_get(void *arg, int confirm, char *buf, size_t bufsize, size_t *len, tg_err *err)
{
    decode_job *j = arg;
    pthread_mutex_lock(&j->lock);
    int rc = tg_pass_get(j->imp->pass, buf, bufsize, len, err);
    (void)confirm;
    pthread_mutex_unlock(&j->lock);
    return rc;
}

static int refuse_get(void *arg, int confirm, char *buf, size_t bufsize, size_t *len, tg_err *err)
{
    decoded *d = arg;
    (void)confirm, (void)buf, (void)bufsize, (void)len;
    d->asked = 1;
    return tg_err_set(err, TG_E_PASSWORD, "a password is asked on the main thread");
}

static void *decode_worker(void *arg)
{
    decode_job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->lock);
        size_t i = j->next < j->n ? j->next++ : j->n;
        pthread_mutex_unlock(&j->lock);
        if (i == j->n) break;
        decoded *d = &j->out[i];
        const tg_passsrc *pass = j->imp->pass;
        if (pass != NULL && !pass->stable) { /* it may prompt: not from here */
            d->refuse = (tg_passsrc){.get = refuse_get, .arg = d};
            pass = &d->refuse;
        } else if (pass != NULL) {
            pass = &j->locked;
        }
        d->rc = decode_input(&j->imp->inputs[i], pass, 0, d, &d->err);
        pthread_mutex_lock(&j->lock);
        size_t done = ++j->done;
        if (j->progress) j->progress(j->imp->progress_arg, "reading", j->base + done, j->total);
        pthread_mutex_unlock(&j->lock);
    }
    return NULL;
}

/* Decodes every input into out[] (callers append them in order), on as many threads as
 * could be started (this one among them). */
static void decode_parallel(const tg_import *imp, decoded *out, size_t base, size_t total)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n = cores < 1 ? 1 : cores > DECODE_THREADS_MAX ? DECODE_THREADS_MAX : (size_t)cores;
    decode_job j = {.imp = imp,
                    .out = out,
                    .n = imp->ninputs,
                    .base = base,
                    .total = total,
                    .progress = imp->progress};
    j.locked = (tg_passsrc){.get = locked_get, .arg = &j};
    pthread_mutex_init(&j.lock, NULL);
    pthread_t t[DECODE_THREADS_MAX];
    size_t started = 0;
    for (; started + 1 < n; started++) /* this thread is one of them */
        if (pthread_create(&t[started], NULL, decode_worker, &j) != 0) break;
    decode_worker(&j);
    for (size_t i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    pthread_mutex_destroy(&j.lock);
}

/* ---- matching keys and certificates by public-key hash, in O(log n) each: a bulk
 * import of 100,000 files with a key each compared every pair before ---- */

static int key_order(const void *a, const void *b, void *arg)
{
    const loaded *l = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = memcmp(l->keyspki[x], l->keyspki[y], 32);
    return c != 0 ? c : x < y ? -1 : x > y;
}

static int keys_index(loaded *l, tg_err *err)
{
    free(l->keyorder);
    l->keyorder = malloc((l->nkeys + 1) * sizeof(*l->keyorder));
    if (l->keyorder == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < l->nkeys; i++)
        l->keyorder[i] = i;
    if (l->nkeys > 1) qsort_r(l->keyorder, l->nkeys, sizeof(*l->keyorder), key_order, l);
    return 0;
}

/* The position in keyorder of the first key whose public-key hash is not below spki. */
static size_t key_lower(const loaded *l, const unsigned char *spki)
{
    size_t lo = 0, hi = l->nkeys;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(l->keyspki[l->keyorder[mid]], spki, 32) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The first key (in the order given) whose public-key hash is spki; nkeys when none.
 * The keys are indexed (keys_index: load_some does it for every load that matches). */
static size_t key_find(const loaded *l, const unsigned char *spki)
{
    if (l->nkeys == 0) return 0;
    size_t at = key_lower(l, spki);
    return at < l->nkeys && memcmp(l->keyspki[l->keyorder[at]], spki, 32) == 0 ? l->keyorder[at]
                                                                               : l->nkeys;
}

/* The key among the files' keys that belongs to it (matched by public-key hash): its
 * index, or nkeys when none. */
static size_t bundle_key_index(const loaded *l, const item *it)
{
    return key_find(l, it->spki);
}

static tg_key *bundle_key_for(const loaded *l, const item *it)
{
    size_t i = bundle_key_index(l, it);
    return i < l->nkeys ? l->keys[i] : NULL;
}

/* Seals the files' key number i (its hash and DER were made while decoding). */
static int put_bundle_key(tg_keyring *kr, const loaded *l, size_t i, int exportable, int64_t *id,
                          int *tightened, tg_err *err)
{
    return kr_key_put_encoded(kr, l->keys[i], l->keyspki[i], l->keyder[i], l->keyderlen[i],
                              exportable, id, tightened, err);
}

/* Decides which certificates are "the" certificates (leaves) and which are chain. */
static void mark_leaves(tg_keyring *kr, loaded *l)
{
    for (size_t i = 0; i < l->nitems; i++) {
        int is_ca = tg_cert_is_ca(l->items[i].cert);
        tg_store_key sk;
        int keyed = bundle_key_for(l, &l->items[i]) != NULL ||
                    tg_store_key_find(kr->st, l->items[i].spki, &sk, NULL) == 0;
        l->items[i].leaf = !is_ca || keyed;
    }
    /* A file of CA certificates only (a chain bundle) has no leaf: all go to the CA store. */
}

typedef struct outcome {
    json_t *imported, *skipped;
    int new_ca;    /* a CA certificate arrived: every chain status may change */
    int as_server; /* --as-server filed a certificate */
    /* what store_one last stored: its id, whether it has no key, whether it is new (not
     * one the store held already), and its report entry (borrowed; NULL for a skip) */
    int64_t last_id;
    int last_keyless, last_fresh;
    json_t *last_entry;
} outcome;

/* One entry of an import's "imported" list: every entry has the same members
 * (docs/json.md); request, predecessor and warnings are filled in by store_one. */
static json_t *import_entry(const char *name, const char *action, int ca, int private_key,
                            int tightened)
{
    return json_pack("{s:o, s:s, s:b, s:b, s:b, s:n, s:n, s:[]}", "name", kr_json_text(name),
                     "action", action, "ca", ca, "private_key", private_key,
                     "key_made_non_exportable", tightened, "request", "predecessor", "warnings");
}

/* A self-signed CA certificate that names servers: how it was filed, and the other way. */
static void ca_server_warning(json_t *entry, const tg_store_cert *row, const char *first)
{
    char msg[900];
    snprintf(msg, sizeof(msg),
             "this is a self-signed CA certificate (CA:TRUE, as `openssl req -x509` makes by "
             "default) that also names servers (%s): it was filed as a CA certificate (listed "
             "by `tlsgate ca list`, named by the CA rule, trusted as a root for chains) and its "
             "names are served by SNI all the same. To file it as a server certificate instead "
             "(listed with the certificates, never an issuer), delete the CA certificate '%s' "
             "and import it again as a server certificate (the command line's --as-server, the "
             "API's as_server), or make it without CA:TRUE (`openssl req -x509 -addext "
             "basicConstraints=critical,CA:FALSE …`)",
             first, row->name);
    json_array_append_new(json_object_get(entry, "warnings"), json_string(msg));
}

static int store_one(tg_keyring *kr, const loaded *l, item *it, const tg_import *imp, outcome *o,
                     int64_t *new_id, tg_err *err)
{
    int exportable = !imp->no_export;
    const char *name = it->explicit_name ? it->name : NULL;
    tg_store_cert row = {0}, prev = {0}, dup = {0};
    tg_store_req req = {0};
    int rc = kr_cert_row(it->cert, &row, err);
    if (rc != 0) return rc;
    int tightened = 0;
    char server[256] = "";
    int ca_server = !imp->ca_only && row.is_ca && row.self_signed &&
                    kr_sans_name_server(row.san_list, server, sizeof(server));
    if (tg_store_cert_by_sha256(kr->st, row.sha256, &dup, NULL) == 0) {
        /* Already here: a chain certificate is simply shared; a leaf may gain its key, or
         * lose the right to export the one it has (--no-export: the stricter flag wins). */
        size_t ki = dup.key_id == 0 ? bundle_key_index(l, it) : l->nkeys;
        if (ki < l->nkeys) {
            if ((rc = put_bundle_key(kr, l, ki, exportable, &dup.key_id, &tightened, err)) == 0)
                rc = tg_store_cert_set_key(kr->st, dup.id, dup.key_id, err);
            if (rc == 0)
                json_array_append_new(o->imported, import_entry(dup.name, "private key added",
                                                                dup.is_ca, 1, tightened));
        } else if (dup.key_id != 0 && !exportable &&
                   (rc = kr_key_forbid_export(kr, dup.key_id, &tightened, err)) == 0 && tightened) {
            json_array_append_new(
                o->imported,
                import_entry(dup.name, "private key made non-exportable", dup.is_ca, 1, 1));
        } else if (rc == 0) {
            json_array_append_new(o->skipped,
                                  json_pack("{s:o, s:s}", "name", kr_json_text(dup.name), "reason",
                                            "already in the store"));
        }
        *new_id = dup.id;
        o->last_id = dup.id, o->last_keyless = dup.key_id == 0, o->last_fresh = 0;
        o->last_entry = NULL;
        goto end;
    }
    if (ca_server && imp->as_server) { /* filed as what its names say it is for */
        row.is_ca = 0;
        o->as_server = 1;
    }
    size_t ki = bundle_key_index(l, it);
    if (ki < l->nkeys) {
        if ((rc = put_bundle_key(kr, l, ki, exportable, &row.key_id, &tightened, err)) != 0)
            goto end;
    } else {
        tg_store_key sk;
        if (tg_store_key_find(kr->st, row.spki_sha256, &sk, NULL) == 0) {
            row.key_id = sk.id;
            if (!exportable && (rc = kr_key_forbid_export(kr, sk.id, &tightened, err)) != 0)
                goto end;
        }
    }
    const char *base = it->name;
    if (row.key_id != 0 && tg_store_req_pending_for_key(kr->st, row.key_id, &req, NULL) == 0) {
        row.request_id = req.id;
        if (base == NULL && !tg_store_name_taken(kr->st, req.name)) base = req.name;
    }
    int renew = 0;
    if (row.key_id != 0 &&
        tg_store_cert_latest_for_spki(kr->st, row.spki_sha256, &prev, NULL) == 0 &&
        row.not_after > prev.not_after) {
        row.predecessor_id = prev.id;
        renew = 1;
    }
    if ((rc = kr_chain_status(kr, it->cert, row.key_id, row.spki_sha256, row.status,
                              sizeof(row.status), &row.chain_ids, err)) != 0)
        goto end;
    char unique[TG_NAME_MAX + 16], clean[TG_NAME_MAX + 1];
    if (base == NULL) base = row.subject_cn[0] ? row.subject_cn : it->file;
    if (row.is_ca && name == NULL) base = kr_ca_name_from(base, clean, sizeof(clean));
    if (name != NULL) {
        if (tg_store_name_taken(kr->st, name)) {
            rc = tg_err_set(err, TG_E_CONFLICT,
                            "a certificate named '%s' already exists; choose another name", name);
            goto end;
        }
        snprintf(unique, sizeof(unique), "%s", name);
    } else if ((rc = kr_unique_name(kr, base, unique, sizeof(unique), NULL, err)) != 0) {
        goto end;
    }
    row.name = tg_strdup(unique);
    if (row.name == NULL || (rc = tg_store_cert_add(kr->st, &row, err)) != 0) {
        if (rc == 0) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    if (req.id != 0 && (rc = tg_store_req_set_cert(kr->st, req.id, row.id, err)) != 0) goto end;
    if (renew && ((rc = tg_store_ref_move(kr->st, prev.id, row.id, err)) != 0 ||
                  (rc = kr_proxy_follow(kr, prev.id, row.id, 0, err)) != 0))
        goto end;
    json_t *entry = import_entry(row.name, "imported", row.is_ca, row.key_id != 0, tightened);
    if (entry == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    if (req.id != 0) json_object_set_new(entry, "request", kr_json_text(req.name));
    /* kept (it is someone's certificate), but the index never serves these names */
    tg_sanlist sans;
    json_t *w = json_object_get(entry, "warnings");
    if (w != NULL && kr_sans_decode(row.san_list, &sans) == 0) {
        for (size_t i = 0; i < sans.n && json_array_size(w) < 10; i++) { /* a few say enough */
            const char *value = sans.v[i].value;
            if (sans.v[i].type != TG_SAN_DNS || tg_san_host_name(value)) continue;
            char msg[400];
            snprintf(msg, sizeof(msg),
                     "the DNS name '%.*s' is not a host name; it is stored but never served",
                     (int)tg_utf8_cut(value, strlen(value), 300), value);
            json_array_append_new(w, json_string(msg));
        }
        tg_sanlist_free(&sans);
    }
    if (renew) json_object_set_new(entry, "predecessor", kr_json_text(prev.name));
    if (ca_server && row.is_ca) ca_server_warning(entry, &row, server);
    json_array_append_new(o->imported, entry);
    if (row.is_ca) o->new_ca = 1;
    *new_id = row.id;
    o->last_id = row.id, o->last_keyless = row.key_id == 0, o->last_fresh = 1;
    o->last_entry = entry;
end:
    tg_store_cert_clear(&row);
    tg_store_cert_clear(&prev);
    tg_store_cert_clear(&dup);
    tg_store_req_clear(&req);
    return rc;
}

static char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *b = tg_strdup(slash ? slash + 1 : path);
    char *dot = b ? strrchr(b, '.') : NULL;
    if (dot != NULL && dot != b) *dot = '\0';
    return b;
}

/* Names decided before storing: --name for the one end-entity certificate, or, for a
 * PKCS#12 holding several, "BASE-ALIAS" where BASE is --name or the file's base name. */
static int assign_names(loaded *l, const char *name, tg_err *err)
{
    size_t leaves = 0;
    for (size_t i = 0; i < l->nitems; i++)
        leaves += l->items[i].leaf;
    int rc;
    if (name != NULL &&
        ((rc = tg_keyring_name_check(name, err)) != 0 || (rc = kr_name_reserved(name, err)) != 0))
        return rc;
    for (size_t i = 0; i < l->nitems; i++) {
        item *it = &l->items[i];
        if (!it->leaf) continue;
        /* a file's certificates are neighbours (appended file by file) */
        size_t first = i, last = i, in_file = 0, aliased = 0;
        while (first > 0 && l->items[first - 1].file == it->file)
            first--;
        while (last + 1 < l->nitems && l->items[last + 1].file == it->file)
            last++;
        for (size_t j = first; j <= last; j++)
            if (l->items[j].leaf) {
                in_file++;
                aliased += l->items[j].alias != NULL;
            }
        if (in_file > 1 && aliased == in_file) {
            char *base = name ? tg_strdup(name) : base_of(it->file);
            size_t n = (base ? strlen(base) : 0) + strlen(it->alias) + 2;
            it->name = base ? malloc(n) : NULL;
            if (it->name == NULL) {
                free(base);
                return tg_err_set(err, TG_E_INTERNAL, "out of memory");
            }
            snprintf(it->name, n, "%s-%s", base, it->alias);
            free(base);
            /* the alias is the file's text, not the operator's: cleaned, not refused */
            kr_name_derive(it->name, it->name, n);
        } else if (name != NULL) {
            if (leaves > 1)
                return tg_err_fset(err, TG_E_USAGE, "name",
                                   "a name is for one certificate, but the files hold %zu "
                                   "end-entity certificates; import them one at a time",
                                   leaves);
            if ((it->name = tg_strdup(name)) == NULL)
                return tg_err_set(err, TG_E_INTERNAL, "out of memory");
            it->explicit_name = 1;
        }
    }
    return 0;
}

/* Hands the report over on success, drops it on failure. */
static void outcome_end(int rc, outcome *o, json_t **out)
{
    if (rc == 0) {
        /* counts first: a script reads "new" and "already_present" without walking lists */
        *out = json_pack("{s:I, s:I, s:o, s:o}", "new", (json_int_t)json_array_size(o->imported),
                         "already_present", (json_int_t)json_array_size(o->skipped), "imported",
                         o->imported, "skipped", o->skipped);
    } else {
        json_decref(o->imported);
        json_decref(o->skipped);
    }
}

/* Loads files and the --key file, checks keys against certificates. */
/* Loads the files (imp's inputs: a command's, or one chunk of them that starts at input
 * base of total) and the --key file, and checks keys against certificates. chunk: a key
 * that matches no certificate of these files is no error here (the caller links it to
 * one stored before it, or after: keymatched says which keys did match). */
static int load_some(tg_keyring *kr, const tg_import *imp, size_t base, size_t total, int chunk,
                     loaded *l, tg_err *err)
{
    memset(l, 0, sizeof(*l));
    if (imp->ninputs == 0) return tg_err_set(err, TG_E_USAGE, "no file to import");
    int rc = 0;
    decoded *d = imp->ninputs >= DECODE_PARALLEL_MIN ? calloc(imp->ninputs, sizeof(*d)) : NULL;
    if (d != NULL) {
        decode_parallel(imp, d, base, total);
        for (size_t i = 0; i < imp->ninputs; i++) {
            if (rc == 0 && d[i].asked) /* encrypted, and the source may prompt: here, in order */
                rc = load_input(l, &imp->inputs[i], base + i, imp->pass, 0, err);
            else if (rc == 0 && (rc = d[i].rc) != 0) /* the first failure's own sentence */
                rc = tg_err_fset(err, d[i].rc, d[i].err.field, "%s", d[i].err.msg);
            else if (rc == 0)
                rc = append_decoded(l, &imp->inputs[i], base + i, &d[i], err);
            decoded_clear(&d[i]);
        }
    } else {
        for (size_t i = 0; rc == 0 && i < imp->ninputs; i++) {
            rc = load_input(l, &imp->inputs[i], base + i, imp->pass, 0, err);
            if (imp->progress) imp->progress(imp->progress_arg, "reading", base + i + 1, total);
        }
    }
    free(d);
    if (rc == 0 && imp->key != NULL) rc = load_input(l, imp->key, total, imp->pass, 1, err);
    if (rc == 0) rc = keys_index(l, err);
    if (rc != 0) return rc;
    mark_leaves(kr, l);
    if (imp->ca_only)
        for (size_t i = 0; i < l->nitems; i++) {
            if (!tg_cert_is_ca(l->items[i].cert))
                return tg_err_set(err, TG_E_INVALID,
                                  "%s holds a certificate that is not a CA (no CA:TRUE); import "
                                  "it as a certificate, not as a CA",
                                  l->items[i].file);
            l->items[i].leaf = l->nitems == 1; /* --name names a single CA */
        }
    if (!imp->ca_only && imp->name != NULL) {
        size_t leaves = 0;
        for (size_t i = 0; i < l->nitems; i++)
            leaves += l->items[i].leaf;
        if (leaves == 0 && l->nitems == 1) l->items[0].leaf = 1; /* --name names the one CA */
        if (leaves == 0 && l->nitems > 1)
            return tg_err_fset(err, TG_E_USAGE, "name",
                               "a name is for one certificate, but the files hold %zu CA "
                               "certificates and no end-entity certificate; import them one at a "
                               "time to name each",
                               l->nitems);
    }
    if ((rc = assign_names(l, imp->name, err)) != 0) return rc;
    /* Every key must belong to a certificate in the files or in the store. */
    if ((l->keymatched = calloc(l->nkeys + 1, 1)) == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (l->nitems > 0 && l->nkeys > 0) {
        char *matched = l->keymatched;
        for (size_t i = 0; i < l->nitems; i++) /* every key of that hash (indexed above) */
            for (size_t r = key_lower(l, l->items[i].spki);
                 r < l->nkeys && memcmp(l->keyspki[l->keyorder[r]], l->items[i].spki, 32) == 0; r++)
                matched[l->keyorder[r]] = 1;
        size_t k = 0;
        while (k < l->nkeys && matched[k])
            k++;
        if (k < l->nkeys && !chunk)
            return tg_err_set(err, TG_E_INVALID,
                              "the private key in %s does not belong to the certificate%s in %s; "
                              "check that you picked the matching key",
                              l->keyfiles[k], l->nitems > 1 ? "s" : "", l->items[0].file);
    }
    return 0;
}

typedef struct chunked chunked;
static int keyless_has(const chunked *ch, const unsigned char spki[32], int64_t id);

/* The key given for one stored certificate c: added, repaired, tightened, or already
 * there (the report says which). */
static int link_one(tg_keyring *kr, const tg_import *imp, const loaded *l, size_t k,
                    const tg_store_cert *c, outcome *o, tg_err *err)
{
    const unsigned char *spki = l->keyspki[k];
    int64_t key_id = c->key_id;
    int tightened = 0, repaired = 0, rc = 0;
    if (key_id != 0 && strcmp(kr_key_state(kr, c), "broken") == 0) {
        /* the repair of a key row that no longer opens (or is not this certificate's):
         * seal the key given again into it, or link the certificate to the right row */
        tg_store_key have;
        if (tg_store_key_get(kr->st, key_id, &have, NULL) == 0 &&
            memcmp(have.spki_sha256, spki, 32) == 0)
            rc = tg_store_key_reseal(kr->st, key_id, l->keyder[k], l->keyderlen[k], err);
        else if ((rc = put_bundle_key(kr, l, k, !imp->no_export, &key_id, NULL, err)) == 0 &&
                 (rc = tg_store_cert_set_key(kr->st, c->id, key_id, err)) == 0)
            rc = tg_store_key_gc(kr->st, c->key_id, err); /* the row it pointed at, if unused */
        repaired = 1;
    } else if (key_id == 0) {
        if ((rc = put_bundle_key(kr, l, k, !imp->no_export, &key_id, NULL, err)) == 0)
            rc = tg_store_cert_set_key(kr->st, c->id, key_id, err);
    } else if (!!imp->no_export) {
        rc = kr_key_forbid_export(kr, key_id, &tightened, err);
    }
    if (c->key_id == 0 || tightened || repaired)
        json_array_append_new(o->imported,
                              import_entry(c->name,
                                           repaired    ? "private key repaired"
                                           : tightened ? "private key made non-exportable"
                                                       : "private key added",
                                           c->is_ca, 1, tightened));
    else
        json_array_append_new(o->skipped, json_pack("{s:o, s:s}", "name", kr_json_text(c->name),
                                                    "reason", "it already has this private key"));
    return rc;
}

/* The files' key number k, given without its certificate: linked to every stored
 * certificate of its public key (a renewal on the same key, a copy of a CA rollover: one
 * key mends them all; its hash and DER were made while decoding). *found = 0 when there
 * is none (an error when must). ch (a chunked import): the certificates this command
 * stored without a key are left to give_late_keys, which reports them as a single load
 * would; the key is stored for it. */
static int link_key(tg_keyring *kr, const tg_import *imp, const loaded *l, size_t k, outcome *o,
                    const chunked *ch, int must, int *found, tg_err *err)
{
    int64_t *ids = NULL;
    size_t nids = 0;
    int rc = tg_store_cert_ids_for_spki(kr->st, l->keyspki[k], &ids, &nids, err);
    if (rc != 0) return rc;
    *found = nids > 0;
    if (!*found)
        return !must ? 0
                     : tg_err_set(err, TG_E_INVALID,
                                  "the private key in %s belongs to no certificate in the store; "
                                  "import it together with its certificate",
                                  l->keyfiles[k]);
    /* the rows are read first, then changed: no update under an open SELECT */
    int later = 0;
    for (size_t i = 0; rc == 0 && i < nids; i++) {
        if (ch != NULL && keyless_has(ch, l->keyspki[k], ids[i])) {
            later = 1;
            continue;
        }
        tg_store_cert c;
        if ((rc = tg_store_cert_get(kr->st, ids[i], &c, err)) != 0) break;
        rc = link_one(kr, imp, l, k, &c, o, err);
        tg_store_cert_clear(&c);
    }
    free(ids);
    int64_t key_id;
    if (rc == 0 && later) rc = put_bundle_key(kr, l, k, !imp->no_export, &key_id, NULL, err);
    return rc;
}

/* Keys given without any certificate: link them to the certificates they belong to. */
static int import_keys_only(tg_keyring *kr, const tg_import *imp, loaded *l, outcome *o,
                            tg_err *err)
{
    int found;
    for (size_t k = 0; k < l->nkeys; k++) {
        int rc = link_key(kr, imp, l, k, o, NULL, 1, &found, err);
        if (rc != 0) return rc;
    }
    return 0; /* nothing new is no failure: the report says "0 new" (issue 14, item 3) */
}

/* ---- a bulk import in chunks (issue 13, item 3): memory bounded by a chunk ----
 * Beyond IMPORT_CHUNK files (and without --name and --key, which speak of the files as a
 * whole) the files are decoded and stored a chunk at a time inside the one transaction,
 * each chunk freed before the next is decoded. The outcome is a single load's:
 * - a key in the same chunk as its certificates: as always;
 * - a key in an earlier chunk: stored with its chunk's certificate, or (with none) linked
 *   to the store's, or read again at the end; later certificates find it in the store;
 * - a key in another chunk than certificates of its public key: those were stored
 *   without it and are remembered (public-key hash, id), and every key of the command
 *   is looked up among them at the end, then given to them (also to one the store held
 *   without a key, given again with its key in another chunk); the report says
 *   "private key: yes" or "private key added" for them, as a single load's would. */
#define IMPORT_CHUNK 4096

typedef struct keyless {
    unsigned char spki[32];
    int64_t id;
    int fresh;     /* stored by this command (else it was in the store) */
    json_t *entry; /* its "imported" report entry (borrowed from the outcome), or NULL */
} keyless;

struct chunked {
    keyless *v; /* the command's certificates stored without a key (sorted: keyless_sort) */
    size_t n, cap, sorted;
    unsigned char (*late)[32]; /* every key of the command (matched, linked or deferred) */
    size_t nlate, latecap;
};

static int grow(void *v, size_t *cap, size_t n, size_t size, tg_err *err)
{
    return tg_grow(v, cap, n, size, 256) == 0 ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

static int late_add(chunked *ch, const unsigned char spki[32], tg_err *err)
{
    int rc = grow(&ch->late, &ch->latecap, ch->nlate, sizeof(*ch->late), err);
    if (rc == 0) memcpy(ch->late[ch->nlate++], spki, 32);
    return rc;
}

static int keyless_order(const void *a, const void *b)
{
    const keyless *x = a, *y = b;
    int c = memcmp(x->spki, y->spki, 32);
    return c != 0 ? c : x->id < y->id ? -1 : x->id > y->id;
}

/* Sorts what the chunks added since the last sort (by hash, then id). */
static void keyless_sort(chunked *ch)
{
    if (ch->sorted == ch->n) return;
    qsort(ch->v, ch->n, sizeof(*ch->v), keyless_order);
    ch->sorted = ch->n;
}

/* 1 when id (of that hash) is one of the command's certificates stored without a key. */
static int keyless_has(const chunked *ch, const unsigned char spki[32], int64_t id)
{
    keyless probe = {.id = id};
    memcpy(probe.spki, spki, 32);
    return bsearch(&probe, ch->v, ch->sorted, sizeof(*ch->v), keyless_order) != NULL;
}

/* Stores what load_some loaded (inside the caller's transaction): chain certificates
 * first, so that a leaf's issuer is in place when it arrives. ch (chunked imports only)
 * collects the certificates left without a key. */
static int store_loaded(tg_keyring *kr, const tg_import *imp, loaded *l, outcome *o, size_t *stored,
                        size_t total, chunked *ch, tg_err *err)
{
    int rc = 0;
    for (int pass = 0; rc == 0 && pass < 2; pass++)
        for (size_t i = 0; rc == 0 && i < l->nitems; i++) {
            if (l->items[i].leaf != pass) continue;
            int64_t id;
            o->last_keyless = 0;
            rc = store_one(kr, l, &l->items[i], imp, o, &id, err);
            if (rc == 0 && ch != NULL && o->last_keyless &&
                (rc = grow(&ch->v, &ch->cap, ch->n, sizeof(*ch->v), err)) == 0) {
                keyless *k = &ch->v[ch->n++];
                memcpy(k->spki, l->items[i].spki, 32);
                k->id = o->last_id;
                k->fresh = o->last_fresh;
                k->entry = o->last_entry;
            }
            ++*stored;
            if (imp->progress) imp->progress(imp->progress_arg, "storing", *stored, total);
        }
    return rc;
}

/* The end of a chunked import: certificates stored without a key get it when a key of
 * theirs arrived in a later chunk (the key is in the store by now). */
static int give_late_keys(tg_keyring *kr, chunked *ch, outcome *o, tg_err *err)
{
    if (ch->n == 0 || ch->nlate == 0) return 0;
    keyless_sort(ch);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ch->nlate; i++) {
        keyless probe = {.id = INT64_MIN};
        memcpy(probe.spki, ch->late[i], 32);
        size_t lo = 0, hi = ch->n; /* the first of this hash */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (keyless_order(&ch->v[mid], &probe) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == ch->n || memcmp(ch->v[lo].spki, probe.spki, 32) != 0) continue;
        tg_store_key key;
        if ((rc = tg_store_key_find(kr->st, probe.spki, &key, err)) != 0) break;
        for (size_t j = lo; rc == 0 && j < ch->n && memcmp(ch->v[j].spki, probe.spki, 32) == 0;
             j++) {
            keyless *k = &ch->v[j];
            if (k->id == 0) continue; /* given already (a hash listed twice) */
            tg_store_cert c;
            if ((rc = tg_store_cert_get(kr->st, k->id, &c, err)) != 0) break;
            if (c.key_id == 0 && (rc = tg_store_cert_set_key(kr->st, c.id, key.id, err)) == 0) {
                if (k->fresh && k->entry != NULL)
                    json_object_set_new(k->entry, "private_key", json_true());
                else
                    json_array_append_new(o->imported,
                                          import_entry(c.name, "private key added", c.is_ca, 1, 0));
            }
            tg_store_cert_clear(&c);
            k->id = 0;
        }
    }
    return rc;
}

static int import_chunked(tg_keyring *kr, const tg_import *imp, outcome *o, tg_err *err)
{
    size_t n = imp->ninputs, stored = 0, ndefer = 0;
    size_t *defer = malloc(n * sizeof(*defer)); /* inputs read again at the end */
    chunked ch = {0};
    if (defer == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = 0;
    for (size_t a = 0; rc == 0 && a < n; a += IMPORT_CHUNK) {
        tg_import part = *imp;
        part.inputs = imp->inputs + a;
        part.ninputs = n - a < IMPORT_CHUNK ? n - a : IMPORT_CHUNK;
        loaded l;
        rc = load_some(kr, &part, a, n, 1, &l, err);
        if (rc == 0) rc = store_loaded(kr, imp, &l, o, &stored, n, &ch, err);
        for (size_t k = 0; rc == 0 && k < l.nkeys; k++) {
            int found = 1;
            if (!l.keymatched[k]) { /* no certificate of its chunk: one stored before? */
                keyless_sort(&ch);
                rc = link_key(kr, imp, &l, k, o, &ch, 0, &found, err);
            }
            if (rc == 0 && !found && (ndefer == 0 || defer[ndefer - 1] != l.keyinput[k]))
                defer[ndefer++] = l.keyinput[k];
            else if (rc == 0 && found) /* other chunks' certificates may want it too */
                rc = late_add(&ch, l.keyspki[k], err);
        }
        loaded_free(&l);
    }
    for (size_t i = 0; rc == 0 && i < ndefer; i++) { /* their certificates are stored now */
        loaded l = {0};
        rc = load_input(&l, &imp->inputs[defer[i]], defer[i], imp->pass, 0, err);
        for (size_t k = 0; rc == 0 && k < l.nkeys; k++) {
            int found;
            keyless_sort(&ch);
            if ((rc = link_key(kr, imp, &l, k, o, &ch, 0, &found, err)) == 0 && !found)
                rc = tg_err_set(err, TG_E_INVALID,
                                "the private key in %s belongs to no certificate in the files or "
                                "the store; check that you picked the matching key",
                                l.keyfiles[k]);
            if (rc == 0) rc = late_add(&ch, l.keyspki[k], err);
        }
        loaded_free(&l);
    }
    if (rc == 0) rc = give_late_keys(kr, &ch, o, err);
    free(ch.v);
    free(ch.late);
    free(defer);
    return rc;
}

int tg_keyring_cert_import(tg_keyring *kr, const tg_import *imp, json_t **out, tg_err *err)
{
    *out = NULL;
    loaded l = {0};
    outcome o = {json_array(), json_array()};
    int rc = 0;
    if (o.imported == NULL || o.skipped == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    int in_chunks = imp->ninputs > IMPORT_CHUNK && imp->name == NULL && imp->key == NULL;
    if (!in_chunks && (rc = load_some(kr, imp, 0, imp->ninputs, 0, &l, err)) != 0) goto end;
    if ((rc = tg_store_begin(kr->st, err)) != 0) goto end;
    if (!in_chunks && l.nitems == 0) {
        rc = import_keys_only(kr, imp, &l, &o, err);
    } else {
        size_t stored = 0;
        rc = in_chunks ? import_chunked(kr, imp, &o, err)
                       : store_loaded(kr, imp, &l, &o, &stored, l.nitems, NULL, err);
        if (rc == 0 && o.new_ca) rc = kr_refresh_tx(kr, NULL, err);
    }
    if (rc == 0 && imp->as_server && !o.as_server) /* a key alone files nothing either */
        rc = tg_err_fset(err, TG_E_INVALID, "as_server",
                         "filing as a server certificate is for a new self-signed CA "
                         "certificate that names servers (DNS or IP SANs), and the files hold "
                         "none (one already in the store keeps its filing: delete it first)");
    rc = kr_finish(kr, rc, err);
end:
    outcome_end(rc, &o, out);
    loaded_free(&l);
    return rc;
}

int tg_keyring_cert_replace(tg_keyring *kr, const char *name, const tg_import *imp, json_t **out,
                            tg_err *err)
{
    *out = NULL;
    loaded l;
    outcome o = {json_array(), json_array()};
    tg_store_cert old = {0};
    int rc = load_some(kr, imp, 0, imp->ninputs, 0, &l, err);
    if (rc != 0) goto end;
    item *leaf = NULL;
    for (size_t i = 0; i < l.nitems; i++)
        if (l.items[i].leaf) {
            if (leaf != NULL) {
                rc = tg_err_set(err, TG_E_USAGE,
                                "the files hold more than one end-entity "
                                "certificate; give the replacement alone");
                goto end;
            }
            leaf = &l.items[i];
        }
    if (leaf == NULL && l.nitems == 1) leaf = &l.items[0], leaf->leaf = 1;
    if (leaf == NULL) {
        rc = tg_err_set(err, TG_E_INVALID, "the files hold no certificate to put in place of '%s'",
                        name);
        goto end;
    }
    if (!o.imported || !o.skipped) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto end;
    }
    if ((rc = tg_store_begin(kr->st, err)) != 0) goto end;
    if ((rc = kr_cert_get(kr, name, &old, err)) != 0) goto tx;
    /* The new certificate must be servable if the old one was. */
    tg_store_key sk;
    if (old.key_id != 0 && bundle_key_for(&l, leaf) == NULL &&
        tg_store_key_find(kr->st, leaf->spki, &sk, NULL) != 0) {
        rc = tg_err_fset(err, TG_E_INVALID, "key",
                         "the private key of the replacement is neither in the files nor in the "
                         "store; give the key too");
        goto tx;
    }
    char moved[TG_NAME_MAX + 1];
    for (int i = 1; i == 1 || (tg_store_name_taken(kr->st, moved) && i < 1000); i++) {
        /* NAME_REPLACED[_i] stays a valid name: NAME is cut on a character boundary */
        char suffix[24];
        snprintf(suffix, sizeof(suffix), i == 1 ? "_REPLACED" : "_REPLACED_%d", i);
        size_t n = tg_utf8_cut(name, strlen(name), TG_NAME_MAX - strlen(suffix));
        snprintf(moved, sizeof(moved), "%.*s%s", (int)n, name, suffix);
    }
    if ((rc = tg_store_cert_rename(kr->st, old.id, moved, err)) != 0) goto tx;
    for (size_t i = 0; rc == 0 && i < l.nitems; i++) {
        if (&l.items[i] == leaf) continue;
        int64_t id;
        rc = store_one(kr, &l, &l.items[i], imp, &o, &id, err);
    }
    int64_t new_id = 0;
    size_t before = json_array_size(o.imported);
    free(leaf->name);
    leaf->name = tg_strdup(name);
    leaf->explicit_name = 1;
    if (rc == 0 && leaf->name == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0) rc = store_one(kr, &l, leaf, imp, &o, &new_id, err);
    if (rc == 0 && json_array_size(o.imported) == before)
        rc = tg_err_set(err, TG_E_CONFLICT, "the replacement certificate is already in the store");
    if (rc == 0) rc = tg_store_ref_move(kr->st, old.id, new_id, err);
    if (rc == 0) rc = kr_proxy_follow(kr, old.id, new_id, 1, err);
    if (rc == 0 && (o.new_ca || old.is_ca || tg_store_cert_in_chains(kr->st, old.id)))
        rc = kr_refresh_tx(kr, NULL, err);
    if (rc == 0)
        json_array_append_new(o.imported, import_entry(moved, "replaced (kept under this name)",
                                                       old.is_ca, old.key_id != 0, 0));
tx:
    rc = kr_finish(kr, rc, err);
end:
    outcome_end(rc, &o, out);
    tg_store_cert_clear(&old);
    loaded_free(&l);
    return rc;
}
