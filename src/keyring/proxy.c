/*
 * proxy.c — the configuration of inspection proxies (issue 9, item 2): create, set,
 * list, show and delete, each one transaction.
 *
 * A client proxy names a signing certificate (a CA whose key is in the store: it signs
 * the certificates shown to clients) and a trust store (upstream servers are verified
 * against it); both are stored as ids, so renaming by replacement keeps them, and
 * deleting either is refused while a proxy uses it (manage.c, trust.c). The rest of the
 * configuration is one JSON document in the store (proxies.config), written only here
 * and only in canonical form: ports sorted and merged, addresses as getnameinfo prints
 * them, protocols in order. A client proxy may name a decryption policy (policy.c), also
 * a column. Invariants checked across proxies in the same transaction as the write: names
 * are unique across kinds and apart from policies' names, no two proxies share a listen
 * address and port, and no two client proxies intercept the same port.
 */
#include "keyring_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Services and their default port lists (0: other, which needs --ports). */
static const char *const services[] = {"https", "imaps", "pop3s", "smtps", "other"};
static const unsigned service_port[] = {443, 993, 995, 465, 0};
#define NSERVICES (sizeof(services) / sizeof(services[0]))

static const char *const modes[] = {"explicit", "transparent"};
static const char *const over_max[] = {"bypass", "block"};
/* What to do with a flow the policy cannot judge by its SNI (no SNI, Encrypted
 * ClientHello) or that is not TLS at all. */
static const char *const hello_actions[] = {"decrypt", "bypass", "block"};
static const char *const non_tls_actions[] = {"bypass", "block"};
#define ECH_DEFAULT 1 /* bypass: the real server name is hidden, so no rule can apply */
static const char *const versions[] = {"1.0", "1.1", "1.2", "1.3"};
#define NVERSIONS         4
#define PROTOCOLS_DEFAULT ((1u << 2) | (1u << 3)) /* 1.2, 1.3 */

/* The configuration in C, decoded from the stored document or built from options. */
typedef struct pconf {
    char *description; /* owned */
    char listen[TG_LISTEN_MAX];
    int mode, service, over_max_block;
    tg_portlist ports;
    int block_invalid, block_expired, http2_downgrade, tcp_reset, log;
    int no_sni, ech, non_tls; /* indexes into hello_actions, non_tls_actions */
    int keylog;
    long min_key_bits, max_conns, fail_open;
    unsigned protocols; /* bit i: TLS 1.i */
    char *ciphers;      /* owned; NULL: none */
    int server;         /* a server proxy (issue 12): the fields below, not the client's */
    kr_cidrs dest, except;
    char upstream[TG_LISTEN_MAX];
} pconf;

static void conf_clear(pconf *c)
{
    free(c->description);
    free(c->ciphers);
    kr_cidrs_clear(&c->dest);
    kr_cidrs_clear(&c->except);
    memset(c, 0, sizeof(*c));
}

static int choose(const char *const *names, size_t n, const char *v, const char *what, int *out,
                  tg_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    char list[128] = "";
    for (size_t i = 0; i < n; i++) {
        const char *sep = i == 0 ? "" : i + 1 < n ? ", " : " or ";
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", sep, names[i]);
    }
    return tg_err_set(err, TG_E_USAGE, "unknown %s '%s'; use %s", what, v, list);
}

/* ---- rules ---- */

void tg_proxy_opts_init(tg_proxy_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->block_invalid = o->block_expired = o->http2_downgrade = TG_UNSET;
    o->tcp_reset = o->log = o->keylog = TG_UNSET;
}

int kr_conf_name_check(const char *what, const char *name, tg_err *err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0) return tg_err_set(err, TG_E_INVALID, "a %s's name must not be empty", what);
    if (n > TG_PROXY_NAME_MAX)
        return tg_err_set(err, TG_E_INVALID, "a %s's name has at most %d characters (%zu given)",
                          what, TG_PROXY_NAME_MAX, n);
    for (const char *p = name; *p; p++)
        if (!(isalnum((unsigned char)*p) && (unsigned char)*p < 0x80) && *p != '-' && *p != '_' &&
            *p != ' ')
            return tg_err_set(err, TG_E_INVALID,
                              "a %s's name may hold letters, digits, hyphens, underscores and "
                              "spaces only ('%s' does not)",
                              what, tg_text_check(name, NULL, NULL) == 0 ? name : "?");
    if (name[0] == ' ' || name[n - 1] == ' ')
        return tg_err_set(err, TG_E_INVALID, "a %s's name must not begin or end with a space",
                          what);
    return 0;
}

int kr_description_check(const char *d, tg_err *err)
{
    char why[160];
    if (kr_text_problem(d, why, sizeof(why)) != NULL)
        return tg_err_set(err, TG_E_INVALID, "the description %s", why);
    size_t chars = 0;
    for (const char *p = d; *p; p++)
        chars += ((unsigned char)*p & 0xc0) != 0x80;
    if (chars > TG_PROXY_DESC_MAX)
        return tg_err_set(err, TG_E_INVALID,
                          "the description has at most %d characters (this one has %zu)",
                          TG_PROXY_DESC_MAX, chars);
    return 0;
}

/* "1.2,1.3" into bits; the versions must be contiguous (a TLS library offers a range). */
static int protocols_parse(const char *s, unsigned *out, tg_err *err)
{
    unsigned bits = 0;
    const char *p = s;
    if (*p == '\0') return tg_err_set(err, TG_E_INVALID, "the protocol list is empty");
    for (;;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, ",");
        size_t len = n;
        while (len > 0 && p[len - 1] == ' ')
            len--;
        int found = -1;
        for (int i = 0; i < NVERSIONS; i++)
            if (len == strlen(versions[i]) && strncmp(p, versions[i], len) == 0) found = i;
        if (found < 0)
            return tg_err_set(err, TG_E_INVALID,
                              "'%.*s' in the protocol list is not a TLS version; use 1.0, 1.1, "
                              "1.2 and 1.3, separated by commas",
                              (int)(len > 20 ? 20 : len), p);
        bits |= 1u << found;
        p += n;
        if (*p == '\0') break;
        p++;
    }
    unsigned low = bits & -bits;
    if (((bits / low) & ((bits / low) + 1)) != 0) {
        int first = 0, last = NVERSIONS - 1;
        while (!(bits & (1u << first)))
            first++;
        while (!(bits & (1u << last)))
            last--;
        return tg_err_set(err, TG_E_INVALID,
                          "the protocols must be a contiguous range of TLS versions (%s to %s "
                          "leaves one out); name every version between them",
                          versions[first], versions[last]);
    }
    *out = bits;
    return 0;
}

static int replace_text(char **field, const char *v, tg_err *err)
{
    char *copy = v ? tg_strdup(v) : NULL;
    if (v != NULL && copy == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    free(*field);
    *field = copy;
    return 0;
}

static int flag(const char *what, int v, int *field, tg_err *err)
{
    if (v == TG_UNSET) return 0;
    if (v != 0 && v != 1) return tg_err_set(err, TG_E_INTERNAL, "%s must be 0 or 1", what);
    *field = v;
    return 0;
}

/* How many settings o gives. */
static int count_given(const tg_proxy_opts *o)
{
    const void *texts[] = {o->description, o->signing, o->truststore, o->listen,  o->mode,
                           o->ports,       o->service, o->protocols,  o->ciphers, o->over_max,
                           o->policy,      o->no_sni,  o->ech,        o->non_tls};
    const int flags[] = {o->block_invalid, o->block_expired, o->http2_downgrade,
                         o->tcp_reset,     o->log,           o->keylog};
    int n =
        o->no_ciphers + o->min_key_bits_set + o->max_conns_set + o->no_policy + o->fail_open_set;
    const tg_textlist *lists[] = {
        &o->certs,         &o->add_certs,         &o->remove_certs,
        &o->dest,          &o->add_dest,          &o->remove_dest,
        &o->source_except, &o->add_source_except, &o->remove_source_except};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        n += lists[i]->v != NULL || lists[i]->n > 0;
    n += o->upstream != NULL || o->no_truststore;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        n += texts[i] != NULL;
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        n += flags[i] != TG_UNSET;
    return n;
}

/* The settings of the other kind, refused rather than ignored: the first given. */
static const char *foreign_setting(const pconf *c, const tg_proxy_opts *o)
{
    if (c->server) {
        const struct {
            int given;
            const char *name;
        } client_only[] = {{o->signing != NULL, "signing"},
                           {o->over_max != NULL, "over_max"},
                           {o->policy != NULL || o->no_policy, "policy"},
                           {o->no_sni != NULL, "no_sni"},
                           {o->ech != NULL, "ech"},
                           {o->non_tls != NULL, "non_tls"},
                           {o->block_invalid != TG_UNSET, "block_invalid"},
                           {o->block_expired != TG_UNSET, "block_expired"},
                           {o->keylog != TG_UNSET, "keylog"},
                           {o->min_key_bits_set, "min_key_bits"},
                           {o->max_conns_set, "max_conns"},
                           {o->fail_open_set, "fail_open"}};
        for (size_t i = 0; i < sizeof(client_only) / sizeof(client_only[0]); i++)
            if (client_only[i].given) return client_only[i].name;
        return NULL;
    }
    const struct {
        int given;
        const char *name;
    } server_only[] = {
        {o->certs.v != NULL || o->add_certs.n || o->remove_certs.n, "cert"},
        {o->dest.v != NULL || o->add_dest.n || o->remove_dest.n, "dest"},
        {o->source_except.v != NULL || o->add_source_except.n || o->remove_source_except.n,
         "source_except"},
        {o->upstream != NULL, "upstream"},
        {o->no_truststore, "no_truststore"}};
    for (size_t i = 0; i < sizeof(server_only) / sizeof(server_only[0]); i++)
        if (server_only[i].given) return server_only[i].name;
    return NULL;
}

/* A server proxy's mode and the settings that go with it: transparent intercepts
 * connections to its destinations (no listen address, no upstream), explicit listens on
 * its own address and forwards to one upstream (no destinations). Changing the mode drops
 * the other mode's settings; giving them with it is refused. */
static int server_modes(pconf *c, const tg_proxy_opts *o, int was_mode, tg_err *err)
{
    int rc = 0;
    if (c->mode != was_mode) {
        if (c->mode == 1) c->listen[0] = c->upstream[0] = '\0';
        if (c->mode == 0) c->dest.n = 0;
    }
    if (o->upstream != NULL &&
        (rc = tg_listen_parse(o->upstream, c->upstream, sizeof(c->upstream), err)) != 0)
        return rc;
    if ((rc = kr_cidrs_edit(&c->dest, &o->dest, &o->add_dest, &o->remove_dest, TG_SRV_DEST_MAX,
                            "destinations", err)) != 0 ||
        (rc = kr_cidrs_edit(&c->except, &o->source_except, &o->add_source_except,
                            &o->remove_source_except, TG_SRV_EXCEPT_MAX, "source exceptions",
                            err)) != 0)
        return rc;
    if (c->mode == 1 && (o->listen != NULL || o->upstream != NULL))
        return tg_err_fset(err, TG_E_USAGE, o->listen ? "listen" : "upstream",
                           "a transparent server proxy intercepts the connections to its "
                           "destinations and has no listen address or upstream; those are "
                           "explicit mode's (--mode explicit)");
    if (c->mode == 0 && (o->dest.n > 0 || o->add_dest.n > 0))
        return tg_err_fset(err, TG_E_USAGE, "dest",
                           "an explicit server proxy forwards what reaches its listen address "
                           "to its upstream and has no destinations; those are transparent "
                           "mode's (--mode transparent)");
    return 0;
}

/* Applies the settings o gives to c (the defaults or the stored configuration), each
 * checked. The references (signing, truststore, certificates) are resolved in the
 * transaction, not here: nothing here reads the store. */
static int conf_apply(pconf *c, const tg_proxy_opts *o, tg_err *err)
{
    int rc = 0;
    const char *foreign = foreign_setting(c, o);
    if (foreign != NULL)
        return tg_err_fset(err, TG_E_USAGE, foreign,
                           "'%s' is a setting of %s proxies, not of %s proxies", foreign,
                           c->server ? "client" : "server", c->server ? "server" : "client");
    if (o->no_truststore && o->truststore != NULL)
        return tg_err_fset(err, TG_E_USAGE, "truststore",
                           "give a trust store or ask for none, not both");
    int was_mode = c->mode;
    if (o->description != NULL && ((rc = kr_description_check(o->description, err)) != 0 ||
                                   (rc = replace_text(&c->description, o->description, err)) != 0))
        return rc;
    if (o->listen != NULL && (rc = tg_listen_parse(o->listen, c->listen, sizeof(c->listen), err)))
        return rc;
    if (o->mode != NULL && (rc = choose(modes, 2, o->mode, "mode", &c->mode, err)) != 0) return rc;
    if (o->service != NULL &&
        (rc = choose(services, NSERVICES, o->service, "service", &c->service, err)) != 0)
        return rc;
    if (o->ports != NULL && (rc = tg_ports_parse(o->ports, &c->ports, err)) != 0) return rc;
    if (o->protocols != NULL && (rc = protocols_parse(o->protocols, &c->protocols, err)) != 0)
        return rc;
    if (o->ciphers != NULL && o->no_ciphers)
        return tg_err_set(err, TG_E_USAGE, "give a cipher list or ask for none, not both");
    if (o->ciphers != NULL && ((rc = tg_tls_ciphers_check(o->ciphers, err)) != 0 ||
                               (rc = replace_text(&c->ciphers, o->ciphers, err)) != 0))
        return rc;
    if (o->no_ciphers) replace_text(&c->ciphers, NULL, err);
    if (o->over_max != NULL &&
        (rc = choose(over_max, 2, o->over_max, "over-max action", &c->over_max_block, err)) != 0)
        return rc;
    if (o->no_sni != NULL &&
        (rc = choose(hello_actions, 3, o->no_sni, "action for no SNI", &c->no_sni, err)) != 0)
        return rc;
    if (o->ech != NULL &&
        (rc = choose(hello_actions, 3, o->ech, "action for ECH", &c->ech, err)) != 0)
        return rc;
    if (o->non_tls != NULL &&
        (rc = choose(non_tls_actions, 2, o->non_tls, "action for non-TLS", &c->non_tls, err)) != 0)
        return rc;
    if (o->policy != NULL && o->no_policy)
        return tg_err_set(err, TG_E_USAGE, "give a policy or ask for none, not both");
    if (o->fail_open_set) {
        if (o->fail_open != 0 &&
            (o->fail_open < TG_FAIL_OPEN_LOW || o->fail_open > TG_FAIL_OPEN_HIGH))
            return tg_err_set(err, TG_E_INVALID,
                              "the fail-open time is 0 (off) or %d to %d seconds, not %ld",
                              TG_FAIL_OPEN_LOW, TG_FAIL_OPEN_HIGH, o->fail_open);
        c->fail_open = o->fail_open;
    }
    if (o->min_key_bits_set) {
        if (o->min_key_bits != 0 &&
            (o->min_key_bits < TG_KEY_BITS_LOW || o->min_key_bits > TG_KEY_BITS_HIGH))
            return tg_err_set(err, TG_E_INVALID,
                              "the minimum key size is 0 (no minimum) or %d to %d bits, not %ld",
                              TG_KEY_BITS_LOW, TG_KEY_BITS_HIGH, o->min_key_bits);
        c->min_key_bits = o->min_key_bits;
    }
    if (o->max_conns_set) {
        if (o->max_conns < 0 || o->max_conns > TG_MAX_CONNS_MAX)
            return tg_err_set(err, TG_E_INVALID,
                              "the connection limit is 0 (none) or 1 to %d, not %ld",
                              TG_MAX_CONNS_MAX, o->max_conns);
        c->max_conns = o->max_conns;
    }
    const struct {
        const char *what;
        int v, *field;
    } flags[] = {{"block_invalid", o->block_invalid, &c->block_invalid},
                 {"block_expired", o->block_expired, &c->block_expired},
                 {"http2_downgrade", o->http2_downgrade, &c->http2_downgrade},
                 {"tcp_reset", o->tcp_reset, &c->tcp_reset},
                 {"log", o->log, &c->log},
                 {"keylog", o->keylog, &c->keylog}};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if ((rc = flag(flags[i].what, flags[i].v, flags[i].field, err)) != 0) return rc;
    return c->server ? server_modes(c, o, was_mode, err) : 0;
}

/* ---- the stored document ---- */

/* The settings as JSON: what is stored, and (with name, references and times around
 * them) what show gives. */
static json_t *conf_json(const pconf *c)
{
    char ports[TG_PORTS_TEXT_MAX];
    tg_ports_format(&c->ports, ports, sizeof(ports));
    json_t *protocols = json_array();
    for (int i = 0; i < NVERSIONS && protocols != NULL; i++)
        if (c->protocols & (1u << i)) json_array_append_new(protocols, json_string(versions[i]));
    if (c->server) /* issue 12: a server proxy's own form ("" for a setting of the other mode) */
        return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:s?, s:b, s:b, s:b}",
                         "description", c->description ? c->description : "", "mode",
                         modes[c->mode], "listen", c->listen, "upstream", c->upstream, "dest",
                         kr_cidrs_json(&c->dest), "ports", ports, "service", services[c->service],
                         "source_except", kr_cidrs_json(&c->except), "protocols", protocols,
                         "ciphers", c->ciphers, "http2_downgrade", c->http2_downgrade, "tcp_reset",
                         c->tcp_reset, "log", c->log);
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:I, s:o, s:s?, s:b, s:I, s:s, s:b, s:b}",
        "description", c->description ? c->description : "", "listen", c->listen, "mode",
        modes[c->mode], "ports", ports, "service", services[c->service], "block_invalid",
        c->block_invalid, "block_expired", c->block_expired, "min_key_bits",
        (json_int_t)c->min_key_bits, "protocols", protocols, "ciphers", c->ciphers,
        "http2_downgrade", c->http2_downgrade, "max_conns", (json_int_t)c->max_conns, "over_max",
        over_max[c->over_max_block], "tcp_reset", c->tcp_reset, "log", c->log);
    /* item 6's switches (schema 6 and later; older documents lack them: see conf_decode) */
    json_t *more = json_pack("{s:s, s:s, s:s, s:I, s:b}", "no_sni", hello_actions[c->no_sni], "ech",
                             hello_actions[c->ech], "non_tls", non_tls_actions[c->non_tls],
                             "fail_open_secs", (json_int_t)c->fail_open, "keylog", c->keylog);
    if (doc == NULL || more == NULL || json_object_update(doc, more) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    json_decref(more);
    return doc;
}

static char *conf_encode(const pconf *c)
{
    json_t *doc = conf_json(c);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    return text;
}

/* A stored document's "protocols" list as the option writes it: "1.2,1.3". */
static void protocols_join(json_t *protocols, char *out, size_t size)
{
    size_t i;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(protocols, i, v)
    {
        const char *s = json_string_value(v);
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? "," : "", s ? s : "?");
    }
}

/* The stored document back into C, every value checked again as on input: a row edited
 * behind our back is refused rather than run. */
static int server_decode(const tg_store_proxy *p, pconf *c, tg_err *err);

static int conf_decode(const tg_store_proxy *p, pconf *c, tg_err *err)
{
    memset(c, 0, sizeof(*c));
    if (strcmp(p->kind, "server") == 0) return server_decode(p, c, err);
    json_t *doc = json_loads(p->config, 0, NULL), *protocols = NULL, *ciphers = NULL;
    const char *description = NULL, *listen = NULL, *mode = NULL, *ports = NULL, *service = NULL,
               *over = NULL, *no_sni = hello_actions[0], *ech = hello_actions[ECH_DEFAULT],
               *non_tls = non_tls_actions[0];
    json_int_t min_bits = 0, max_conns = 0, fail_open = 0;
    int keylog = 0;
    int rc = TG_E_STORE;
    tg_err why = {0};
    if (doc != NULL &&
        json_unpack(
            doc, "{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:I, s:o, s:o, s:b, s:I, s:s, s:b, s:b}",
            "description", &description, "listen", &listen, "mode", &mode, "ports", &ports,
            "service", &service, "block_invalid", &c->block_invalid, "block_expired",
            &c->block_expired, "min_key_bits", &min_bits, "protocols", &protocols, "ciphers",
            &ciphers, "http2_downgrade", &c->http2_downgrade, "max_conns", &max_conns, "over_max",
            &over, "tcp_reset", &c->tcp_reset, "log", &c->log) == 0 &&
        /* written by an older tlsgate without them: their defaults */
        json_unpack(doc, "{s?:s, s?:s, s?:s, s?:I, s?:b}", "no_sni", &no_sni, "ech", &ech,
                    "non_tls", &non_tls, "fail_open_secs", &fail_open, "keylog", &keylog) == 0 &&
        json_is_array(protocols) && (json_is_null(ciphers) || json_is_string(ciphers))) {
        char list[64];
        protocols_join(protocols, list, sizeof(list));
        tg_proxy_opts o = {.description = description,
                           .listen = listen,
                           .mode = mode,
                           .ports = ports,
                           .service = service,
                           .protocols = list,
                           .ciphers = json_string_value(ciphers),
                           .over_max = over,
                           .block_invalid = TG_UNSET,
                           .block_expired = TG_UNSET,
                           .http2_downgrade = TG_UNSET,
                           .tcp_reset = TG_UNSET,
                           .log = TG_UNSET,
                           .min_key_bits_set = 1,
                           .min_key_bits = (long)min_bits,
                           .max_conns_set = 1,
                           .max_conns = (long)max_conns,
                           .no_sni = no_sni,
                           .ech = ech,
                           .non_tls = non_tls,
                           .fail_open_set = 1,
                           .fail_open = (long)fail_open,
                           .keylog = keylog};
        rc = conf_apply(c, &o, &why) == 0 ? 0 : TG_E_STORE;
    }
    json_decref(doc);
    if (rc != 0) {
        conf_clear(c);
        return tg_err_set(err, TG_E_STORE,
                          "the stored configuration of %s proxy '%s' is damaged%s%s; delete the "
                          "proxy and create it again",
                          p->kind, p->name, why.msg[0] ? ": " : "", why.msg);
    }
    return 0;
}

/* A JSON array of strings as a text list (its strings belong to the array). */
static int textlist_of(json_t *a, tg_textlist *l, const char ***room)
{
    size_t n = json_array_size(a);
    *room = calloc(n + 1, sizeof(**room));
    if (*room == NULL) return TG_E_INTERNAL;
    for (size_t i = 0; i < n; i++)
        if (((*room)[i] = json_string_value(json_array_get(a, i))) == NULL) return TG_E_STORE;
    l->v = *room;
    l->n = n;
    return 0;
}

static int server_decode(const tg_store_proxy *p, pconf *c, tg_err *err)
{
    c->server = 1;
    json_t *doc = json_loads(p->config, 0, NULL), *protocols = NULL, *ciphers = NULL, *dest = NULL,
           *except = NULL;
    const char *description = NULL, *listen = NULL, *upstream = NULL, *mode = NULL, *ports = NULL,
               *service = NULL;
    const char **droom = NULL, **eroom = NULL;
    int rc = TG_E_STORE;
    tg_err why = {0};
    tg_proxy_opts o;
    tg_proxy_opts_init(&o);
    if (doc != NULL &&
        json_unpack(doc, "{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:o, s:b, s:b, s:b}",
                    "description", &description, "mode", &mode, "listen", &listen, "upstream",
                    &upstream, "dest", &dest, "ports", &ports, "service", &service, "source_except",
                    &except, "protocols", &protocols, "ciphers", &ciphers, "http2_downgrade",
                    &c->http2_downgrade, "tcp_reset", &c->tcp_reset, "log", &c->log) == 0 &&
        json_is_array(protocols) && json_is_array(dest) && json_is_array(except) &&
        (json_is_null(ciphers) || json_is_string(ciphers)) &&
        textlist_of(dest, &o.dest, &droom) == 0 &&
        textlist_of(except, &o.source_except, &eroom) == 0) {
        char list[64];
        protocols_join(protocols, list, sizeof(list));
        o.description = description;
        o.mode = mode;
        o.listen = listen[0] ? listen : NULL;
        o.upstream = upstream[0] ? upstream : NULL;
        o.ports = ports;
        o.service = service;
        o.protocols = list;
        o.ciphers = json_string_value(ciphers);
        /* from the zero mode (explicit) to the stored one: dest is taken after the change */
        rc = conf_apply(c, &o, &why) == 0 ? 0 : TG_E_STORE;
    }
    free(droom);
    free(eroom);
    json_decref(doc);
    if (rc != 0) {
        conf_clear(c);
        return tg_err_set(err, TG_E_STORE,
                          "the stored configuration of server proxy '%s' is damaged%s%s; delete "
                          "the proxy and create it again",
                          p->name, why.msg[0] ? ": " : "", why.msg);
    }
    return 0;
}

/* A server proxy's document: the order documented in docs/json.md. */
static int server_doc(tg_keyring *kr, const tg_store_proxy *p, const pconf *c, json_t *settings,
                      json_t *ranges, int unseal, json_t **doc, tg_err *err)
{
    json_t *certs = NULL;
    int rc = kr_srv_certs_doc(kr, p->id, unseal, &certs, err);
    if (rc != 0) return rc;
    json_t *out = json_pack(
        "{s:o, s:s, s:o, s:o?, s:b, s:o, s:O, s:o?, s:o?, s:O, s:O, s:O, s:O, s:O, s:O, s:O, "
        "s:O, s:O}",
        "name", kr_json_text(p->name), "kind", p->kind, "description", kr_json_opt(c->description),
        "truststore", p->truststore_name ? kr_json_text(p->truststore_name) : NULL,
        "verify_upstream", p->truststore_id != 0, "certificates", certs, "mode",
        json_object_get(settings, "mode"), "listen", c->listen[0] ? json_string(c->listen) : NULL,
        "upstream", c->upstream[0] ? json_string(c->upstream) : NULL, "dest",
        json_object_get(settings, "dest"), "ports", ranges, "service",
        json_object_get(settings, "service"), "source_except",
        json_object_get(settings, "source_except"), "protocols",
        json_object_get(settings, "protocols"), "ciphers", json_object_get(settings, "ciphers"),
        "http2_downgrade", json_object_get(settings, "http2_downgrade"), "tcp_reset",
        json_object_get(settings, "tcp_reset"), "log", json_object_get(settings, "log"));
    if (out != NULL && (kr_json_time(out, "created", p->created) != 0 ||
                        kr_json_time(out, "updated", p->updated) != 0)) {
        json_decref(out);
        out = NULL;
    }
    if (out == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    *doc = out;
    return 0;
}

int kr_proxy_doc(tg_keyring *kr, const tg_store_proxy *p, int unseal, json_t **doc_out, tg_err *err)
{
    *doc_out = NULL;
    pconf c;
    int rc = conf_decode(p, &c, err);
    if (rc != 0) return rc;
    json_t *settings = conf_json(&c), *ranges = json_array();
    for (size_t i = 0; ranges != NULL && i < c.ports.n; i++)
        json_array_append_new(
            ranges, json_pack("[I, I]", (json_int_t)c.ports.v[i].lo, (json_int_t)c.ports.v[i].hi));
    /* the documented order: name and references first, then the settings, then times.
     * Not the stored form (conf_json): there ports is the option's text and description
     * "" when there is none; here ports is the list of ranges and description null. */
    if (c.server) {
        rc = settings && ranges ? server_doc(kr, p, &c, settings, ranges, unseal, doc_out, err)
                                : tg_err_set(err, TG_E_INTERNAL, "out of memory");
        json_decref(settings);
        json_decref(ranges);
        conf_clear(&c);
        return rc;
    }
    json_t *out = json_pack("{s:o, s:s, s:o, s:o?, s:o?, s:o?}", "name", kr_json_text(p->name),
                            "kind", p->kind, "description", kr_json_opt(c.description), "signing",
                            p->signing_name ? kr_json_text(p->signing_name) : NULL, "truststore",
                            p->truststore_name ? kr_json_text(p->truststore_name) : NULL, "policy",
                            p->policy_name ? kr_json_text(p->policy_name) : NULL);
    static const char *const order[] = {
        "listen",        "mode",         "ports",          "service", "block_invalid",
        "block_expired", "min_key_bits", "protocols",      "ciphers", "http2_downgrade",
        "max_conns",     "over_max",     "tcp_reset",      "log",     "no_sni",
        "ech",           "non_tls",      "fail_open_secs", "keylog"};
    for (size_t i = 0; out != NULL && settings != NULL && i < sizeof(order) / sizeof(order[0]);
         i++) {
        json_t *v = strcmp(order[i], "ports") == 0 ? ranges : json_object_get(settings, order[i]);
        if (v == NULL || json_object_set(out, order[i], v) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    if (out != NULL && (kr_json_time(out, "created", p->created) != 0 ||
                        kr_json_time(out, "updated", p->updated) != 0)) {
        json_decref(out);
        out = NULL;
    }
    if (settings == NULL || ranges == NULL) {
        json_decref(out);
        out = NULL;
    }
    json_decref(settings);
    json_decref(ranges);
    conf_clear(&c);
    if (out == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    *doc_out = out;
    return 0;
}

/* ---- references ---- */

/* The signing certificate: a CA whose key is in the store. */
static int signing_get(tg_keyring *kr, const char *name, tg_store_cert *c, tg_err *err)
{
    int rc = kr_cert_get(kr, name, c, err);
    if (rc != 0) return rc;
    if (!c->is_ca)
        rc = tg_err_set(err, TG_E_CONFLICT,
                        "'%s' is not a CA certificate, so it cannot sign the certificates a "
                        "client proxy shows its clients; use a signing certificate (one created "
                        "as a signing certificate, or a CA imported with its key)",
                        name);
    else if (c->key_id == 0)
        rc = tg_err_set(err, TG_E_CONFLICT,
                        "the private key of the CA certificate '%s' is not in the store, so it "
                        "cannot sign; import its key or use another signing certificate",
                        name);
    if (rc != 0) tg_store_cert_clear(c);
    return rc;
}

/* The server proxies that show certificate from show to instead, if it is not a CA. */
static int server_follow(tg_keyring *kr, int64_t from, int64_t to, int strict, tg_err *err)
{
    tg_store_proxy p;
    if (tg_store_proxy_by_server_cert(kr->st, from, &p, NULL) != 0) return 0;
    tg_store_cert c;
    int rc = tg_store_cert_get(kr->st, to, &c, err);
    if (rc == 0) {
        if (!c.is_ca)
            rc = tg_store_proxy_certs_move(kr->st, from, to, err);
        else if (strict)
            rc = tg_err_set(err, TG_E_CONFLICT,
                            "server proxy '%s' shows the certificate being replaced to its "
                            "clients: its replacement must not be a CA certificate (or remove "
                            "it from the proxy first)",
                            p.name);
        tg_store_cert_clear(&c);
    }
    tg_store_proxy_clear(&p);
    return rc;
}

int kr_proxy_follow(tg_keyring *kr, int64_t from, int64_t to, int strict, tg_err *err)
{
    int rc = server_follow(kr, from, to, strict, err);
    if (rc != 0) return rc;
    tg_store_proxy p;
    if (tg_store_proxy_by_cert(kr->st, from, &p, NULL) != 0) return 0;
    tg_store_cert c;
    rc = tg_store_cert_get(kr->st, to, &c, err);
    if (rc == 0) {
        if (c.is_ca && c.key_id != 0)
            rc = tg_store_proxy_move_signing(kr->st, from, to, err);
        else if (strict)
            rc = tg_err_set(err, TG_E_CONFLICT,
                            "%s proxy '%s' signs with the certificate being replaced: its "
                            "replacement must be a CA certificate whose private key is in the "
                            "store (or give the proxy another signing certificate first)",
                            p.kind, p.name);
        tg_store_cert_clear(&c);
    }
    tg_store_proxy_clear(&p);
    return rc;
}

/* ---- checks across proxies ---- */

typedef struct crossctx {
    const char *kind, *name;
    int64_t self;
    const pconf *c;
    tg_err *err;
    int rc;
} crossctx;

static int cross_one(const tg_store_proxy *p, void *arg)
{
    crossctx *x = arg;
    if (p->id == x->self) return 0;
    pconf other;
    if ((x->rc = conf_decode(p, &other, x->err)) != 0) return 1;
    char nets[2 * TG_CIDR_TEXT_MAX + 8];
    unsigned port = 0;
    if (other.listen[0] != '\0' && strcmp(other.listen, x->c->listen) == 0) {
        x->rc = tg_err_set(x->err, TG_E_CONFLICT,
                           "%s proxy '%s' already listens on %s: %s proxy '%s' needs another "
                           "listen address or port",
                           p->kind, p->name, other.listen, x->kind, x->name);
    } else if (other.server && x->c->server && other.mode == 1 && x->c->mode == 1 &&
               (port = tg_ports_overlap(&other.ports, &x->c->ports)) != 0 &&
               kr_cidrs_overlap(&x->c->dest, &other.dest, nets, sizeof(nets))) {
        x->rc = tg_err_set(x->err, TG_E_CONFLICT,
                           "the destinations of server proxy '%s' overlap those of server proxy "
                           "'%s' (%s) at port %u: a server's address and port belong to one "
                           "server proxy only",
                           x->name, p->name, nets, port);
    } else if (strcmp(p->kind, "client") == 0 && strcmp(x->kind, "client") == 0) {
        port = tg_ports_overlap(&other.ports, &x->c->ports);
        if (port != 0)
            x->rc = tg_err_set(x->err, TG_E_CONFLICT,
                               "the ports of client proxy '%s' overlap those of client proxy "
                               "'%s' at port %u: a port is intercepted by one client proxy only",
                               x->name, p->name, port);
    }
    conf_clear(&other);
    return x->rc != 0;
}

static int cross_check(tg_keyring *kr, const char *kind, const char *name, int64_t self,
                       const pconf *c, tg_err *err)
{
    crossctx x = {kind, name, self, c, err, 0};
    int rc = tg_store_proxy_each(kr->st, NULL, cross_one, &x, err);
    return rc != 0 ? rc : x.rc;
}

/* ---- operations ---- */

static int kind_check(const char *kind, tg_err *err)
{
    if (kind != NULL && (strcmp(kind, "client") == 0 || strcmp(kind, "server") == 0)) return 0;
    return tg_err_set(err, TG_E_USAGE, "unknown kind of proxy '%s'; use client or server",
                      kind ? kind : "");
}

static int proxy_get(tg_keyring *kr, const char *kind, const char *name, tg_store_proxy *p,
                     tg_err *err)
{
    int rc = tg_store_proxy_by_name(kr->st, name, p, err);
    if (rc == 0 && strcmp(p->kind, kind) != 0) {
        tg_store_proxy_clear(p);
        rc = TG_E_NOTFOUND;
    }
    if (rc == TG_E_NOTFOUND)
        return tg_err_set(err, TG_E_NOTFOUND,
                          "no %s proxy is named '%s' (the list of %s proxies shows them)", kind,
                          name, kind);
    return rc;
}

/* Resolves the references given in o into p (in the transaction). */
static int resolve(tg_keyring *kr, const tg_proxy_opts *o, tg_store_proxy *p, tg_err *err)
{
    int rc = 0;
    if (o->signing != NULL) {
        tg_store_cert c;
        if ((rc = signing_get(kr, o->signing, &c, err)) != 0) return rc;
        p->signing_cert_id = c.id;
        tg_store_cert_clear(&c);
    }
    if (o->truststore != NULL) {
        tg_store_ts t;
        if ((rc = kr_ts_get(kr, o->truststore, &t, err)) != 0) return rc;
        p->truststore_id = t.id;
        tg_store_ts_clear(&t);
    }
    if (o->policy != NULL) {
        tg_store_policy y;
        if ((rc = tg_store_policy_by_name(kr->st, o->policy, &y, err)) == TG_E_NOTFOUND)
            return tg_err_set(err, TG_E_NOTFOUND,
                              "no policy is named '%s' (the list of policies shows them)",
                              o->policy);
        if (rc != 0) return rc;
        p->policy_id = y.id;
        tg_store_policy_clear(&y);
    }
    if (o->no_policy) p->policy_id = 0;
    if (o->no_truststore) p->truststore_id = 0;
    return 0;
}

static int show_after(tg_keyring *kr, int rc, const char *kind, const char *name, json_t **out,
                      tg_err *err)
{
    if ((rc = kr_finish(kr, rc, err)) != 0) return rc;
    return tg_keyring_proxy_show(kr, kind, name, out, err);
}

/* Everything create can check before the store is asked. */
/* A server proxy has what its mode needs: destinations (transparent), or a listen
 * address and an upstream (explicit). name: set's proxy, NULL on create; a list emptied
 * by removals is refused as such, a mode given without its settings as a usage error. */
static int server_complete(const pconf *c, const char *name, const tg_proxy_opts *o, tg_err *err)
{
    if (!c->server) return 0;
    const char *with = name != NULL ? ": give them with the mode" : "";
    if (c->mode == 1 && c->dest.n == 0)
        return name == NULL || o->mode != NULL
                   ? tg_err_fset(err, TG_E_USAGE, "dest",
                                 "a transparent server proxy needs the networks of the servers "
                                 "it protects (their addresses or CIDR ranges)%s",
                                 with)
                   : tg_err_set(err, TG_E_INVALID,
                                "transparent server proxy '%s' would have no destination left; "
                                "add another before removing the last, or delete the proxy",
                                name);
    if (c->mode == 0 && (c->listen[0] == '\0' || c->upstream[0] == '\0'))
        return tg_err_fset(err, TG_E_USAGE, c->listen[0] ? "upstream" : "listen",
                           "an explicit server proxy needs a listen address and the upstream "
                           "server it forwards to%s",
                           with);
    return 0;
}

static int create_prepare(const char *kind, const char *name, const tg_proxy_opts *o, pconf *c,
                          tg_err *err)
{
    int rc;
    if ((rc = kind_check(kind, err)) != 0 || (rc = kr_conf_name_check("proxy", name, err)) != 0)
        return rc;
    c->server = strcmp(kind, "server") == 0;
    if (c->server) c->mode = 1; /* transparent unless told otherwise */
    if ((rc = conf_apply(c, o, err)) != 0) return rc;
    if (c->server && o->no_truststore)
        return tg_err_fset(err, TG_E_USAGE, "no_truststore",
                           "a new server proxy has no trust store unless one is given");
    if (c->server && o->certs.n == 0 && o->add_certs.n == 0)
        return tg_err_fset(err, TG_E_USAGE, "cert",
                           "a server proxy needs at least one certificate: give the protected "
                           "servers' certificates");
    if (c->server && (o->add_certs.n || o->remove_certs.n || o->add_dest.n || o->remove_dest.n ||
                      o->add_source_except.n || o->remove_source_except.n))
        return tg_err_set(err, TG_E_USAGE,
                          "a new server proxy takes its lists whole; adding and removing "
                          "entries is for set");
    if ((rc = server_complete(c, NULL, o, err)) != 0) return rc;
    if (!c->server && (o->signing == NULL || o->truststore == NULL || o->listen == NULL))
        return tg_err_fset(err, TG_E_USAGE,
                           !o->signing      ? "signing"
                           : !o->truststore ? "truststore"
                                            : "listen",
                           "a client proxy needs a signing certificate, a trust store and a "
                           "listen address");
    if (o->ports == NULL) {
        if (service_port[c->service] == 0)
            return tg_err_fset(err, TG_E_USAGE, "ports",
                               "the service 'other' has no port of its own: give the ports to "
                               "intercept");
        c->ports.v[0].lo = c->ports.v[0].hi = service_port[c->service];
        c->ports.n = 1;
    }
    return 0;
}

int tg_keyring_proxy_create(tg_keyring *kr, const char *kind, const char *name,
                            const tg_proxy_opts *o, json_t **out, tg_err *err)
{
    *out = NULL;
    pconf c = {.protocols = PROTOCOLS_DEFAULT, .ech = ECH_DEFAULT};
    int rc = create_prepare(kind, name, o, &c, err);
    if (rc == 0) rc = tg_store_begin(kr->st, err);
    if (rc != 0) {
        conf_clear(&c);
        return rc;
    }
    tg_store_proxy p = {.name = (char *)name}, have;
    tg_store_policy pol;
    snprintf(p.kind, sizeof(p.kind), "%s", kind);
    if (tg_store_proxy_by_name(kr->st, name, &have, NULL) == 0) {
        rc = tg_err_set(err, TG_E_CONFLICT,
                        "a proxy named '%s' already exists (a %s proxy); choose another name", name,
                        have.kind);
        tg_store_proxy_clear(&have);
    } else if (tg_store_policy_by_name(kr->st, name, &pol, NULL) == 0) {
        rc = tg_err_set(err, TG_E_CONFLICT,
                        "'%s' is the name of a policy, and proxies and policies are named apart; "
                        "choose another name",
                        name);
        tg_store_policy_clear(&pol);
    }
    if (rc == 0) rc = resolve(kr, o, &p, err);
    if (rc == 0) rc = cross_check(kr, kind, name, 0, &c, err);
    if (rc == 0 && (p.config = conf_encode(&c)) == NULL)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0) rc = tg_store_proxy_add(kr->st, &p, err);
    if (rc == 0 && c.server) rc = kr_srv_certs_write(kr, &p, o, 1, err);
    free(p.config);
    conf_clear(&c);
    return show_after(kr, rc, kind, name, out, err);
}

/* A changed server proxy still has what its mode needs. */
int tg_keyring_proxy_set(tg_keyring *kr, const char *kind, const char *name, const tg_proxy_opts *o,
                         json_t **out, tg_err *err)
{
    *out = NULL;
    int rc = kind_check(kind, err);
    if (rc == 0 && count_given(o) == 0)
        rc = tg_err_set(err, TG_E_USAGE, "nothing to change: give the settings to change");
    if (rc != 0 || (rc = tg_store_begin(kr->st, err)) != 0) return rc;
    tg_store_proxy p = {0};
    pconf c = {0};
    if ((rc = proxy_get(kr, kind, name, &p, err)) == 0 && (rc = conf_decode(&p, &c, err)) == 0 &&
        (rc = conf_apply(&c, o, err)) == 0 && (rc = server_complete(&c, name, o, err)) == 0 &&
        (rc = resolve(kr, o, &p, err)) == 0 &&
        (rc = cross_check(kr, kind, name, p.id, &c, err)) == 0) {
        free(p.config);
        p.config = conf_encode(&c);
        rc = p.config ? tg_store_proxy_update(kr->st, &p, err)
                      : tg_err_set(err, TG_E_INTERNAL, "out of memory");
        if (rc == 0 && c.server) rc = kr_srv_certs_write(kr, &p, o, 0, err);
    }
    tg_store_proxy_clear(&p);
    conf_clear(&c);
    return show_after(kr, rc, kind, name, out, err);
}

typedef struct listctx {
    tg_keyring *kr;
    json_t *rows;
    tg_err *err;
    int rc;
} listctx;

static int add_row(const tg_store_proxy *p, void *arg)
{
    listctx *l = arg;
    json_t *doc = NULL;
    if ((l->rc = kr_proxy_doc(l->kr, p, 0, &doc, l->err)) == 0 &&
        json_array_append_new(l->rows, doc) != 0)
        l->rc = tg_err_set(l->err, TG_E_INTERNAL, "out of memory");
    return l->rc != 0; /* a list never drops a row */
}

int tg_keyring_proxy_list(tg_keyring *kr, const char *kind, json_t **out, tg_err *err)
{
    *out = NULL;
    int rc = kind_check(kind, err);
    if (rc != 0) return rc;
    listctx l = {kr, json_array(), err, 0};
    if (l.rows == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    rc = tg_store_proxy_each(kr->st, kind, add_row, &l, err);
    if (rc == 0) rc = l.rc;
    if (rc != 0) {
        json_decref(l.rows);
        return rc;
    }
    *out = l.rows;
    return 0;
}

int tg_keyring_proxy_show(tg_keyring *kr, const char *kind, const char *name, json_t **out,
                          tg_err *err)
{
    *out = NULL;
    tg_store_proxy p;
    int rc = kind_check(kind, err);
    if (rc == 0) rc = proxy_get(kr, kind, name, &p, err);
    if (rc != 0) return rc;
    rc = kr_proxy_doc(kr, &p, 1, out, err); /* one proxy: each key opened to judge it */
    tg_store_proxy_clear(&p);
    return rc;
}

int tg_keyring_proxy_delete(tg_keyring *kr, const char *kind, const char *name, tg_err *err)
{
    int rc = kind_check(kind, err);
    if (rc != 0 || (rc = tg_store_begin(kr->st, err)) != 0) return rc;
    tg_store_proxy p = {0};
    if ((rc = proxy_get(kr, kind, name, &p, err)) == 0)
        rc = tg_store_proxy_delete(kr->st, p.id, err);
    tg_store_proxy_clear(&p);
    return kr_finish(kr, rc, err);
}
