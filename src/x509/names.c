/*
 * names.c — the rules for subject fields and subject alternative names (SPEC K2, K3).
 *
 * Invariants: a DNS name is lower-case LDH labels (A-labels for IDN), a wildcard is "*"
 * as the whole leftmost label over at least two more labels, an IP address is in its
 * canonical text form. Limits are RFC 5280's upper bounds.
 */
#include "x509_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ISO 3166-1 alpha-2, officially assigned codes. */
static const char iso3166[] =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ "
    "BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM "
    "DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS "
    "GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ "
    "MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM "
    "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV "
    "SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
    "VN VU WF WS YE YT ZA ZM ZW";

int tg_strlist_add(tg_strlist *l, const char *s)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof(*v));
    if (v == NULL) return TG_E_INTERNAL;
    l->v = v;
    if ((l->v[l->n] = tg_strdup(s)) == NULL) return TG_E_INTERNAL;
    l->n++;
    return 0;
}

void tg_strlist_free(tg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

char *tg_strlist_join(const tg_strlist *l, const char *sep)
{
    size_t total = 1, seplen = strlen(sep);
    for (size_t i = 0; i < l->n; i++)
        total += strlen(l->v[i]) + seplen;
    char *s = malloc(total);
    if (s == NULL) return NULL;
    s[0] = '\0';
    size_t pos = 0;
    for (size_t i = 0; i < l->n; i++) {
        size_t n = strlen(l->v[i]);
        if (i > 0) memcpy(s + pos, sep, seplen), pos += seplen;
        memcpy(s + pos, l->v[i], n);
        pos += n;
    }
    s[pos] = '\0';
    return s;
}

int tg_dns_name_valid(const char *s, int allow_wildcard)
{
    size_t len = strlen(s);
    if (len == 0 || len > 253) return 0;
    const char *p = s;
    int labels = 0, wildcard = 0;
    if (allow_wildcard && p[0] == '*' && p[1] == '.') {
        wildcard = 1;
        p += 2;
    }
    while (*p) {
        const char *start = p;
        while (*p && *p != '.') {
            unsigned char c = (unsigned char)*p;
            if (!(isalnum(c) || c == '-') || c >= 0x80) return 0;
            p++;
        }
        size_t l = (size_t)(p - start);
        if (l == 0 || l > 63 || start[0] == '-' || p[-1] == '-') return 0;
        labels++;
        if (*p == '.') {
            p++;
            if (*p == '\0') return 0; /* no trailing dot in certificates */
        }
    }
    if (wildcard && labels < 2) return 0;
    return labels > 0;
}

int tg_sanlist_add(tg_sanlist *l, tg_san_type type, const char *value, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        tg_san *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) return TG_E_INTERNAL;
        l->v = v;
        l->cap = cap;
    }
    char *c = malloc(len + 1);
    if (c == NULL) return TG_E_INTERNAL;
    memcpy(c, value, len);
    c[len] = '\0';
    l->v[l->n++] = (tg_san){type, c};
    return 0;
}

void tg_sanlist_free(tg_sanlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].value);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static const char *const san_type_names[] = {"DNS", "IP", "email", "URI", "DirName", "othername"};

const char *tg_san_type_name(tg_san_type t)
{
    return (unsigned)t <= TG_SAN_OTHER ? san_type_names[t] : "othername";
}

int tg_san_type_parse(const char *s, tg_san_type *t)
{
    for (unsigned i = 0; i <= TG_SAN_OTHER; i++)
        if (strcmp(s, san_type_names[i]) == 0) {
            *t = (tg_san_type)i;
            return 0;
        }
    return -1;
}

int tg_sanlist_from_built(const tg_strlist *built, tg_sanlist *out, tg_err *err)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < built->n; i++) {
        const char *e = built->v[i], *colon = strchr(e, ':');
        char type[16];
        tg_san_type t;
        if (colon == NULL || (size_t)(colon - e) >= sizeof(type)) goto bad;
        snprintf(type, sizeof(type), "%.*s", (int)(colon - e), e);
        if (tg_san_type_parse(type, &t) != 0) goto bad;
        if (tg_sanlist_add(out, t, colon + 1, strlen(colon + 1)) != 0) {
            tg_sanlist_free(out);
            return tg_err_set(err, TG_E_INTERNAL, "out of memory");
        }
    }
    return 0;
bad:
    tg_sanlist_free(out);
    return tg_err_set(err, TG_E_INTERNAL, "an alternative name was not built by tg_sans_build");
}

int tg_san_host_name(const char *value)
{
    return tg_dns_name_valid(value, 1);
}

static int has_non_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 1;
    return 0;
}

static int dns_error(const char *value, tg_err *err)
{
    if (has_non_ascii(value))
        return tg_err_set(err, TG_E_INVALID,
                          "DNS name '%s' is not ASCII; give the IDNA A-label form (xn--…)", value);
    if (strchr(value, '*') != NULL)
        return tg_err_set(err, TG_E_INVALID,
                          "wildcard '%s' is not allowed: '*' may only be the whole leftmost label, "
                          "followed by at least two labels (as in *.example.com)",
                          value);
    return tg_err_set(err, TG_E_INVALID,
                      "'%s' is not a valid DNS name (letters, digits and hyphens in labels of 1-63 "
                      "characters, separated by dots)",
                      value);
}

static int email_valid(const char *s)
{
    const char *at = strrchr(s, '@');
    if (at == NULL || at == s || strlen(s) > 255) return 0;
    for (const char *p = s; p < at; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '@') return 0;
    return tg_dns_name_valid(at + 1, 0);
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

int tg_san_normalize(const char *in, char *out, size_t outsize, tg_err *err)
{
    const char *value = in;
    enum { ANY, DNS, IP, EMAIL } kind = ANY;
    if (strncasecmp(in, "DNS:", 4) == 0)
        kind = DNS, value = in + 4;
    else if (strncasecmp(in, "IP:", 3) == 0)
        kind = IP, value = in + 3;
    else if (strncasecmp(in, "email:", 6) == 0)
        kind = EMAIL, value = in + 6;
    else if (strchr(in, ':') != NULL && strchr(in, '.') != NULL &&
             strchr(in, ':') < strchr(in, '.'))
        return tg_err_set(
            err, TG_E_INVALID,
            "subject alternative name '%s' has an unknown type; use DNS:, IP: or email:", in);
    char tmp[300];
    if (strlen(value) >= sizeof(tmp))
        return tg_err_set(err, TG_E_INVALID, "subject alternative name '%.40s…' is too long", in);
    unsigned char addr[16];
    if (kind == IP || kind == ANY) {
        int fam = inet_pton(AF_INET, value, addr) == 1    ? AF_INET
                  : inet_pton(AF_INET6, value, addr) == 1 ? AF_INET6
                                                          : 0;
        if (fam != 0) {
            char buf[INET6_ADDRSTRLEN];
            inet_ntop(fam, addr, buf, sizeof(buf));
            snprintf(out, outsize, "IP:%s", buf);
            return 0;
        }
        if (kind == IP)
            return tg_err_set(err, TG_E_INVALID, "'%s' is not an IPv4 or IPv6 address", value);
    }
    if (kind == EMAIL || (kind == ANY && strchr(value, '@') != NULL)) {
        if (!email_valid(value))
            return tg_err_set(err, TG_E_INVALID,
                              "'%s' is not a valid e-mail address (local-part@domain, ASCII)",
                              value);
        snprintf(out, outsize, "email:%s", value);
        return 0;
    }
    snprintf(tmp, sizeof(tmp), "%s", value);
    lower(tmp);
    if (!tg_dns_name_valid(tmp, 1)) return dns_error(value, err);
    snprintf(out, outsize, "DNS:%s", tmp);
    return 0;
}

static int field_check(const char *label, const char *v, size_t max, tg_err *err)
{
    if (v == NULL) return 0;
    if (v[0] == '\0') return tg_err_set(err, TG_E_INVALID, "%s must not be empty", label);
    if (strlen(v) > max)
        return tg_err_set(err, TG_E_INVALID, "%s is too long (%zu bytes; the limit is %zu)", label,
                          strlen(v), max);
    if (tg_text_check(v, NULL, NULL) != 0)
        return tg_err_set(err, TG_E_INVALID,
                          "%s must be printable UTF-8 text (no control, bidi-override or "
                          "zero-width characters)",
                          label);
    return 0;
}

int tg_subject_check(const tg_subject *s, tg_err *err)
{
    /* not given at all: the command (or request) lacks a required input; given empty: a
     * value that breaks the rule. The same for every face. */
    if (s->cn == NULL) return tg_err_fset(err, TG_E_USAGE, "cn", "a common name is required");
    if (s->cn[0] == '\0')
        return tg_err_fset(err, TG_E_INVALID, "cn", "the common name must not be empty");
    if (s->country != NULL) {
        char cc[3] = {0};
        int ok = strlen(s->country) == 2 && isalpha((unsigned char)s->country[0]) &&
                 isalpha((unsigned char)s->country[1]);
        if (ok) {
            cc[0] = (char)toupper((unsigned char)s->country[0]);
            cc[1] = (char)toupper((unsigned char)s->country[1]);
            ok = strstr(iso3166, cc) != NULL;
        }
        if (!ok)
            return tg_err_set(err, TG_E_INVALID,
                              "country '%s' is not an ISO 3166 two-letter code (for example US, "
                              "DE, GB)",
                              s->country);
    }
    int rc;
    if ((rc = field_check("the common name", s->cn, 64, err)) ||
        (rc = field_check("the state", s->state, 128, err)) ||
        (rc = field_check("the locality", s->locality, 128, err)) ||
        (rc = field_check("the organization", s->org, 64, err)) ||
        (rc = field_check("the organizational unit", s->unit, 64, err)) ||
        (rc = field_check("the e-mail address", s->email, 255, err)))
        return rc;
    if (s->email != NULL && !email_valid(s->email))
        return tg_err_set(err, TG_E_INVALID,
                          "'%s' is not a valid e-mail address (local-part@domain, ASCII)",
                          s->email);
    /* A CN that looks like a host name must be a valid one: it becomes the first SAN. */
    if (strchr(s->cn, '*') != NULL && !tg_dns_name_valid(s->cn, 1)) return dns_error(s->cn, err);
    return 0;
}

/* The SAN a CN stands for, or "" when the CN is a label rather than a name. */
static void cn_as_san(const char *cn, char *out, size_t outsize)
{
    out[0] = '\0';
    unsigned char addr[16];
    if (inet_pton(AF_INET, cn, addr) == 1 || inet_pton(AF_INET6, cn, addr) == 1) {
        tg_san_normalize(cn, out, outsize, NULL);
        return;
    }
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s", cn);
    lower(tmp);
    if (strchr(tmp, '.') != NULL && tg_dns_name_valid(tmp, 1))
        snprintf(out, outsize, "DNS:%s", tmp);
}

int tg_sans_build(const tg_subject *subj, const char *const *sans, size_t n, tg_strlist *out,
                  tg_err *err)
{
    char buf[320];
    out->v = NULL;
    out->n = 0;
    if (subj->cn != NULL) {
        cn_as_san(subj->cn, buf, sizeof(buf));
        if (buf[0] && tg_strlist_add(out, buf) != 0) goto oom;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = tg_san_normalize(sans[i], buf, sizeof(buf), err);
        if (rc != 0) {
            tg_strlist_free(out);
            return rc;
        }
        int dup = 0;
        for (size_t j = 0; j < out->n && !dup; j++)
            dup = strcmp(out->v[j], buf) == 0;
        if (!dup && tg_strlist_add(out, buf) != 0) goto oom;
        /* refused as soon as the list passes the limit: the duplicate search stays
         * bounded by it, whatever the number of values given */
        if (out->n > 1000) {
            tg_strlist_free(out);
            return tg_err_set(err, TG_E_INVALID, "too many subject alternative names (limit 1000)");
        }
    }
    return 0;
oom:
    tg_strlist_free(out);
    return tg_err_set(err, TG_E_INTERNAL, "out of memory");
}
