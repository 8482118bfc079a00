/*
 * policy_text.c — the text forms of a decryption policy's entries: domains ("bank.example",
 * "*.example.com"), categories ("finance") and source networks ("10.0.0.0/8",
 * "2001:db8::/32"), and the line files they come in (the category map, the default
 * never-decrypt list).
 *
 * Everything is stored only in its canonical form, so that two spellings of one entry
 * are one entry: domains lower-cased, categories lower-cased, networks as inet_ntop
 * prints them with the prefix length, host bits zero (a network with host bits set is
 * refused rather than silently widened: "10.1.2.3/8" is more likely a typo than a wish).
 * Numeric only: nothing here asks a resolver. Files are bounded before anything is stored:
 * their size by the caller, their lines and each line's length here.
 */
#include "keyring_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define LINE_MAX_BYTES 4096 /* one line of a list file */

/* The input as it may be shown in a sentence: printable, cut to 64 bytes. */
static const char *shown(const char *s, char *buf, size_t size)
{
    return tg_text_clean(s, buf, size, size - 1 < 64 ? size - 1 : 64);
}

int tg_domain_parse(const char *s, char *out, size_t outsize, tg_err *err)
{
    char show[80], low[TG_DOMAIN_MAX + 2];
    size_t n = s ? strlen(s) : 0;
    if (n == 0) return tg_err_set(err, TG_E_INVALID, "a domain must not be empty");
    if (n > TG_DOMAIN_MAX)
        return tg_err_set(err, TG_E_INVALID,
                          "the domain '%s…' is longer than %d characters, the longest a DNS "
                          "name can be",
                          shown(s, show, sizeof(show)), TG_DOMAIN_MAX);
    for (size_t i = 0; i <= n; i++)
        low[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
    unsigned char addr[4];
    if (inet_pton(AF_INET, low, addr) == 1)
        return tg_err_set(err, TG_E_INVALID,
                          "'%s' is an IPv4 address, not a domain (addresses and networks are a "
                          "policy's sources, e.g. %s/32)",
                          low, low);
    if (n > 1 && low[n - 1] == '.') {
        low[n - 1] = '\0';
        int valid = tg_dns_name_valid(low, 1);
        low[n - 1] = '.';
        if (valid)
            return tg_err_set(err, TG_E_INVALID, "write the domain '%s' without its final dot",
                              shown(s, show, sizeof(show)));
    }
    if (strncmp(low, "*.", 2) == 0 && strchr(low + 2, '.') == NULL && tg_dns_name_valid(low + 2, 0))
        return tg_err_set(err, TG_E_INVALID,
                          "'%s' would cover a whole top-level domain; a wildcard needs at least "
                          "two labels after '*.' (e.g. *.example.com)",
                          shown(s, show, sizeof(show)));
    if (!tg_dns_name_valid(low, 1))
        return tg_err_set(err, TG_E_INVALID,
                          "'%s' is neither a host name nor '*.' and a domain: use labels of "
                          "letters, digits and hyphens separated by dots, e.g. bank.example or "
                          "*.example.com (internationalised names as xn--…)",
                          shown(s, show, sizeof(show)));
    if (n + 1 > outsize) return tg_err_set(err, TG_E_INTERNAL, "a domain buffer is too small");
    memcpy(out, low, n + 1);
    return 0;
}

int tg_domain_matches(const char *pattern, const char *host)
{
    if (strncmp(pattern, "*.", 2) != 0) return strcmp(pattern, host) == 0;
    size_t pl = strlen(pattern + 1), hl = strlen(host); /* ".example.com" */
    return hl > pl && strcmp(host + hl - pl, pattern + 1) == 0;
}

int tg_category_parse(const char *s, char *out, size_t outsize, tg_err *err)
{
    char show[80];
    size_t n = s ? strlen(s) : 0;
    if (n == 0) return tg_err_set(err, TG_E_INVALID, "a category must not be empty");
    if (n > TG_CATEGORY_MAX)
        return tg_err_set(err, TG_E_INVALID,
                          "the category '%s…' is longer than %d characters; use a short name",
                          shown(s, show, sizeof(show)), TG_CATEGORY_MAX);
    if (n + 1 > outsize) return tg_err_set(err, TG_E_INTERNAL, "a category buffer is too small");
    for (size_t i = 0; i <= n; i++) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
        if (c != '\0' && !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '-')
            return tg_err_set(err, TG_E_INVALID,
                              "the category '%s' may hold letters, digits and hyphens only "
                              "(e.g. finance, health-care)",
                              shown(s, show, sizeof(show)));
        out[i] = c;
    }
    return 0;
}

/* The network mask's byte i for a prefix length. */
static unsigned char mask_at(unsigned prefix, size_t i)
{
    if (prefix >= (i + 1) * 8) return 0xff;
    if (prefix <= i * 8) return 0;
    return (unsigned char)(0xff00u >> (prefix - i * 8));
}

int tg_cidr_parse(const char *s, tg_cidr *out, tg_err *err)
{
    char show[80], host[INET6_ADDRSTRLEN + 1];
    memset(out, 0, sizeof(*out));
    size_t n = s ? strlen(s) : 0;
    if (n == 0) return tg_err_set(err, TG_E_INVALID, "a source network must not be empty");
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : n;
    out->family = memchr(s, ':', hl) != NULL ? AF_INET6 : AF_INET;
    unsigned max = out->family == AF_INET6 ? 128 : 32;
    if (hl == 0 || hl >= sizeof(host) ||
        (memcpy(host, s, hl), host[hl] = '\0', inet_pton(out->family, host, out->addr) != 1))
        return tg_err_set(err, TG_E_INVALID,
                          "'%s' is not a source network: write an IPv4 or IPv6 address with an "
                          "optional prefix length, e.g. 192.0.2.0/24, 2001:db8::/32 or 192.0.2.7",
                          shown(s, show, sizeof(show)));
    out->prefix = max;
    if (slash != NULL) {
        const char *p = slash + 1;
        unsigned v = 0;
        size_t digits = 0;
        while (p[digits] >= '0' && p[digits] <= '9' && digits < 4)
            v = v * 10 + (unsigned)(p[digits++] - '0');
        if (digits == 0 || digits > 3 || p[digits] != '\0' || v > max)
            return tg_err_set(err, TG_E_INVALID,
                              "the prefix length of '%s' must be a number from 0 to %u",
                              shown(s, show, sizeof(show)), max);
        out->prefix = v;
    }
    for (size_t i = 0; i < max / 8; i++) {
        if ((out->addr[i] & (unsigned char)~mask_at(out->prefix, i)) == 0) continue;
        tg_cidr net = *out;
        for (size_t j = 0; j < max / 8; j++)
            net.addr[j] &= mask_at(net.prefix, j);
        char canon[TG_CIDR_TEXT_MAX], whole[TG_CIDR_TEXT_MAX];
        tg_cidr_format(&net, canon, sizeof(canon));
        net = *out;
        net.prefix = max;
        tg_cidr_format(&net, whole, sizeof(whole));
        return tg_err_set(err, TG_E_INVALID,
                          "'%s' has host bits set: the network is %s (for the one address, "
                          "write %s)",
                          shown(s, show, sizeof(show)), canon, whole);
    }
    return 0;
}

void tg_cidr_format(const tg_cidr *c, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    if (inet_ntop(c->family, c->addr, host, sizeof(host)) == NULL) host[0] = '\0';
    snprintf(buf, size, "%s/%u", host, c->prefix);
}

int tg_cidr_contains(const tg_cidr *c, int family, const unsigned char *addr)
{
    if (family != c->family) return 0;
    for (size_t i = 0; i < (c->family == AF_INET6 ? 16u : 4u); i++)
        if ((addr[i] & mask_at(c->prefix, i)) != c->addr[i]) return 0;
    return 1;
}

int kr_lines_each(const char *text, size_t len, size_t max_lines, const char *what, kr_line_fn fn,
                  void *arg, tg_err *err)
{
    size_t lines = 0;
    for (const char *p = text, *end = text + len; p < end; lines++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    if (lines > max_lines)
        return tg_err_set(err, TG_E_INVALID,
                          "the %s has %zu lines; at most %zu are read: split it, or remove "
                          "comments and blank lines",
                          what, lines, max_lines);
    if (memchr(text, '\0', len) != NULL) {
        size_t at = (size_t)((const char *)memchr(text, '\0', len) - text), line = 1;
        for (size_t i = 0; i < at; i++)
            line += text[i] == '\n';
        return tg_err_set(err, TG_E_INVALID,
                          "line %zu of the %s holds a NUL byte: it is not a text file", line, what);
    }
    char buf[LINE_MAX_BYTES + 1];
    const char *p = text, *end = text + len;
    for (size_t line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        const char *next = nl ? nl + 1 : end;
        if (n > 0 && p[n - 1] == '\r') n--;
        if (n > LINE_MAX_BYTES)
            return tg_err_set(err, TG_E_INVALID, "line %zu of the %s is longer than %d bytes", line,
                              what, LINE_MAX_BYTES);
        memcpy(buf, p, n);
        buf[n] = '\0';
        p = next;
        char *hash = strchr(buf, '#');
        if (hash != NULL) *hash = '\0';
        char *fields[KR_LINE_FIELDS];
        int nf = 0;
        char *save = NULL;
        for (char *t = strtok_r(buf, " \t", &save); t != NULL && nf < KR_LINE_FIELDS;
             t = strtok_r(NULL, " \t", &save))
            fields[nf++] = t;
        if (nf == 0) continue;
        int rc = fn(line, fields, nf, arg, err);
        if (rc != 0) return rc;
    }
    return 0;
}
