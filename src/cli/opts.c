/*
 * opts.c — the shared option parser (see opts.h).
 */
#include "opts.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    L_COUNTRY = 256,
    L_STATE,
    L_LOCALITY,
    L_ORG,
    L_OU,
    L_EMAIL,
    L_JSON,
    L_HOME,
    /* a proxy's settings */
    L_SIGNCERT,
    L_TRUSTSTORE,
    L_LISTEN,
    L_MODE,
    L_PORTS,
    L_SERVICE,
    L_PROTOCOLS,
    L_CIPHERS,
    L_NO_CIPHERS,
    L_OVER_MAX,
    L_MIN_KEY_BITS,
    L_MAX_CONNS,
    L_POLICY,
    L_NO_POLICY,
    L_NO_SNI,
    L_ECH,
    L_NON_TLS,
    L_FAIL_OPEN,
    L_SWITCH, /* --block-invalid … --keylog: L_SWITCH + 2*i, the --no- form + 1 */
    L_SWITCH_END = L_SWITCH + 12,
    /* a policy's lists: L_LIST + list for create, L_ADD + list, L_REMOVE + list for set */
    L_LIST,
    L_ADD = L_LIST + TG_POLICY_LISTS,
    L_REMOVE = L_ADD + TG_POLICY_LISTS,
    L_DEFAULTS = L_REMOVE + TG_POLICY_LISTS,
    L_NO_DEFAULTS,
    L_REPLACE,
    /* verify */
    L_CHAIN,
    L_CA_FILE,
    L_HOST,
    L_AT,
    L_PURPOSE,
    /* serve */
    L_BACKEND,
    L_THREADS,
    L_NO_TICKETS,
    L_CACHE,
    L_QUIET,
    L_PCAP,
    L_INTERCEPT,
    L_PCAP_MAX,
    L_CONTENT,
    L_CONTENT_MAX,
    L_ADMIN,
    L_ADMIN_CERT,
    L_NO_ADMIN,
    L_ROLE = 400, /* users and audit (numbered apart, so that other additions merge) */
    L_LABEL,
    L_SINCE,
    L_LIMIT,
    L_OFFSET,
    L_GROUP_PROXY = 450, /* groups (numbered apart, so that other additions merge) */
    L_GROUP_POLICY,
    L_NONE,
    L_LOG = 500, /* serve's log and checks (numbered apart, so that other additions merge) */
    L_LOG_SOCKET,
    L_CHECK_EVERY,
    L_SERVER = 550, /* enrollment (numbered apart, so that other additions merge) */
    L_ENROLL_CA_FILE,
    L_SECRET_FILE,
    L_SERIAL,
    L_ENROLL_LISTEN,
    L_ENROLL_CERT,
    L_APPROVAL,
    L_DEVICE_DAYS,
    L_REASON,
    L_RETRY_AFTER,
    L_DIRECTORY = 600, /* ACME (numbered apart, so that other additions merge) */
    L_DIRECTORY_CA,
    L_EAB_KID,
    L_EAB_HMAC_FILE,
    L_ACCOUNT,
    L_DOMAIN,
    L_CHALLENGE,
    L_DNS_HOOK,
    L_ACME_PROFILE,
    L_HTTP,
    L_CONFIG = 650, /* serve's configuration file (numbered apart, so that other additions merge) */
    L_YES = 700,    /* factory-reset */
    L_WIDE = 710,   /* the certificates tables (numbered apart, so that other additions merge) */
    L_FILTER,
    L_AS_SERVER = 750, /* cert import */
    L_SRV_CERT = 800,  /* server proxies: L_SRV_CERT + 3*list (+1 add, +2 remove) */
    L_SRV_LISTS_END = L_SRV_CERT + 9,
    L_UPSTREAM = 810,
    L_NO_TRUSTSTORE
};

/* The parser's table; help (help.c) shows it: the value's name and the description. */
static const opt_entry table[] = {
    {{"cn", required_argument, NULL, 'c'}, O_CN, "CN", "the subject's common name"},
    {{"san", required_argument, NULL, 's'},
     O_SAN,
     "SAN",
     "a subject alternative name: DNS:NAME, IP:ADDR or email:ADDR (repeatable)"},
    {{"country", required_argument, NULL, L_COUNTRY},
     O_SUBJ,
     "CC",
     "the subject's country (two letters)"},
    {{"state", required_argument, NULL, L_STATE},
     O_SUBJ,
     "STATE",
     "the subject's state or province"},
    {{"locality", required_argument, NULL, L_LOCALITY}, O_SUBJ, "CITY", "the subject's locality"},
    {{"org", required_argument, NULL, L_ORG}, O_SUBJ, "ORG", "the subject's organisation"},
    {{"ou", required_argument, NULL, L_OU}, O_SUBJ, "UNIT", "the subject's organisational unit"},
    /* (one long name in two groups: two entries, each with its own help) */
    {{"email", required_argument, NULL, L_EMAIL}, O_SUBJ, "ADDR", "the subject's e-mail address"},
    {{"email", required_argument, NULL, L_EMAIL}, O_ACME, "ADDR", "the account's contact address"},
    {{"key", required_argument, NULL, 'k'},
     O_KEYSPEC,
     "SPEC",
     "the new key: rsa:2048, rsa:3072, rsa:4096, ec:p256 or ec:p384",
     "rsa:2048 rsa:3072 rsa:4096 ec:p256 ec:p384"},
    {{"key", required_argument, NULL, 'k'}, O_KEYFILE, "FILE", "the private key's file"},
    {{"days", required_argument, NULL, 'd'}, O_DAYS, "N", "validity in days"},
    {{"no-export", no_argument, NULL, 'X'},
     O_NOEXPORT,
     NULL,
     "the private key can never be exported"},
    {{"signing", no_argument, NULL, 'S'},
     O_SIGNING,
     NULL,
     "a signing certificate (a CA: for client inspection)"},
    {{"name", required_argument, NULL, 'n'}, O_NAME, "NAME", "the friendly name to store it under"},
    {{"password-file", required_argument, NULL, 'p'},
     O_PASSFILE,
     "FILE",
     "read the password from FILE (else $TLSGATE_PASSWORD or the terminal)"},
    {{"passphrase-file", required_argument, NULL, 'p'},
     O_PASSFILE,
     "FILE",
     "the same as --password-file"},
    {{"format", required_argument, NULL, 'f'},
     O_FORMAT,
     "FMT",
     "pem, der, p7b, p8, pkcs1 or p12",
     "pem der p7b p8 pkcs1 p12"},
    {{"with-key", no_argument, NULL, 'K'}, O_WITHKEY, NULL, "include the private key"},
    {{"with-chain", no_argument, NULL, 'C'}, O_WITHCHAIN, NULL, "include the chain"},
    {{"out", required_argument, NULL, 'o'}, O_OUT, "FILE", "where to write (- is standard output)"},
    {{"force", no_argument, NULL, 'F'}, O_FORCE, NULL, "replace an existing --out file"},
    {{"expiring", required_argument, NULL, 'e'},
     O_EXPIRING,
     "DAYS",
     "only those that expire within DAYS, soonest first"},
    {{"p12-profile", required_argument, NULL, 'P'},
     O_EXPORTX,
     "PROFILE",
     "PKCS#12 encryption: modern, legacy-des or legacy-rc2",
     "modern legacy-des legacy-rc2"},
    {{"support-bundle", no_argument, NULL, 'B'},
     O_EXPORTX,
     NULL,
     "certificate and chain as PEM and PKCS#7, never a key"},
    {{"no-passphrase", no_argument, NULL, 'N'}, O_EXPORTX, NULL, "a PKCS#12 without a passphrase"},
    {{"description", required_argument, NULL, 'D'},
     O_DESCRIPTION,
     "TEXT",
     "a free text description"},
    {{"include-defaults", no_argument, NULL, 'I'},
     O_INCLUDE_DEFAULTS,
     NULL,
     "include the system's public root CAs"},
    {{"signing", required_argument, NULL, L_SIGNCERT},
     O_PROXY,
     "CERT",
     "the signing certificate that mints the proxy's certificates"},
    {{"truststore", required_argument, NULL, L_TRUSTSTORE},
     O_PROXY | O_SPROXY,
     "TS",
     "the trust store that judges servers' certificates"},
    {{"truststore", required_argument, NULL, L_TRUSTSTORE},
     O_VERIFY,
     "TS",
     "verify against this stored trust store (instead of --ca-file)"},
    {{"listen", required_argument, NULL, L_LISTEN},
     O_PROXY | O_SPROXY,
     "ADDR:PORT",
     "the proxy's address"},
    {{"listen", required_argument, NULL, L_LISTEN},
     O_SERVE,
     "ADDR:PORT",
     "an address to listen on (repeatable)"},
    {{"mode", required_argument, NULL, L_MODE},
     O_PROXY | O_SPROXY,
     "MODE",
     "explicit or transparent",
     "explicit transparent"},
    {{"ports", required_argument, NULL, L_PORTS},
     O_PROXY | O_SPROXY,
     "LIST",
     "transparent mode's ports: 443,8443,10000-10100"},
    {{"service", required_argument, NULL, L_SERVICE},
     O_PROXY | O_SPROXY,
     "SERVICE",
     "https, imaps, pop3s, smtps or other",
     "https imaps pop3s smtps other"},
    {{"protocols", required_argument, NULL, L_PROTOCOLS},
     O_PROXY | O_SPROXY,
     "LIST",
     "TLS versions towards servers: 1.2,1.3 (a contiguous range)",
     "1.2,1.3 1.3 1.0,1.1,1.2,1.3"},
    {{"ciphers", required_argument, NULL, L_CIPHERS},
     O_PROXY | O_SPROXY,
     "LIST",
     "OpenSSL cipher list towards servers (TLS 1.2)"},
    {{"no-ciphers", no_argument, NULL, L_NO_CIPHERS},
     O_PROXY | O_SPROXY,
     NULL,
     "back to the default cipher list"},
    {{"over-max", required_argument, NULL, L_OVER_MAX},
     O_PROXY,
     "ACTION",
     "above --max-conns: bypass or block",
     "bypass block"},
    {{"min-key-bits", required_argument, NULL, L_MIN_KEY_BITS},
     O_PROXY,
     "N",
     "the smallest server key accepted (0: no minimum)"},
    {{"max-conns", required_argument, NULL, L_MAX_CONNS},
     O_PROXY,
     "N",
     "the most connections at once"},
    {{"block-invalid", no_argument, NULL, L_SWITCH + 0},
     O_PROXY,
     NULL,
     "block servers whose certificate is invalid"},
    {{"no-block-invalid", no_argument, NULL, L_SWITCH + 1},
     O_PROXY,
     NULL,
     "turn --block-invalid off"},
    {{"block-expired", no_argument, NULL, L_SWITCH + 2},
     O_PROXY,
     NULL,
     "block servers whose certificate has expired"},
    {{"no-block-expired", no_argument, NULL, L_SWITCH + 3},
     O_PROXY,
     NULL,
     "turn --block-expired off"},
    {{"http2-downgrade", no_argument, NULL, L_SWITCH + 4},
     O_PROXY | O_SPROXY,
     NULL,
     "offer clients HTTP/1.1 only"},
    {{"no-http2-downgrade", no_argument, NULL, L_SWITCH + 5},
     O_PROXY | O_SPROXY,
     NULL,
     "turn --http2-downgrade off"},
    {{"tcp-reset", no_argument, NULL, L_SWITCH + 6},
     O_PROXY | O_SPROXY,
     NULL,
     "end refused connections with a TCP reset"},
    {{"no-tcp-reset", no_argument, NULL, L_SWITCH + 7},
     O_PROXY | O_SPROXY,
     NULL,
     "turn --tcp-reset off"},
    {{"log", no_argument, NULL, L_SWITCH + 8}, O_PROXY | O_SPROXY, NULL, "log each connection"},
    {{"no-log", no_argument, NULL, L_SWITCH + 9}, O_PROXY | O_SPROXY, NULL, "turn --log off"},
    {{"keylog", no_argument, NULL, L_SWITCH + 10},
     O_PROXY,
     NULL,
     "write the TLS secrets in NSS key log format (troubleshooting only)"},
    {{"no-keylog", no_argument, NULL, L_SWITCH + 11}, O_PROXY, NULL, "turn --keylog off"},
    {{"policy", required_argument, NULL, L_POLICY},
     O_PROXY,
     "NAME",
     "the decryption policy the proxy applies"},
    {{"no-policy", no_argument, NULL, L_NO_POLICY}, O_PROXY, NULL, "no decryption policy"},
    {{"no-sni", required_argument, NULL, L_NO_SNI},
     O_PROXY,
     "ACTION",
     "clients without SNI: decrypt, bypass or block",
     "decrypt bypass block"},
    {{"ech", required_argument, NULL, L_ECH},
     O_PROXY,
     "ACTION",
     "clients offering ECH: decrypt, bypass or block",
     "decrypt bypass block"},
    {{"non-tls", required_argument, NULL, L_NON_TLS},
     O_PROXY,
     "ACTION",
     "traffic that is not TLS: bypass or block",
     "bypass block"},
    {{"fail-open", required_argument, NULL, L_FAIL_OPEN},
     O_PROXY,
     "SECS",
     "after a client rejects the forged certificate, pass that host through for SECS (0: off)"},
    {{"cert", required_argument, NULL, L_SRV_CERT + 0},
     O_SPROXY,
     "CERT",
     "a protected server's certificate, chosen by SNI (repeatable, up to 1,000; on set: the "
     "new list whole)"},
    {{"add-cert", required_argument, NULL, L_SRV_CERT + 1},
     O_SPROXYSET,
     "CERT",
     "add a certificate (repeatable)"},
    {{"remove-cert", required_argument, NULL, L_SRV_CERT + 2},
     O_SPROXYSET,
     "CERT",
     "remove a certificate (repeatable)"},
    {{"dest", required_argument, NULL, L_SRV_CERT + 3},
     O_SPROXY,
     "CIDR",
     "a protected servers' network, IPv4 or IPv6 (repeatable; on set: the new list whole)"},
    {{"add-dest", required_argument, NULL, L_SRV_CERT + 4},
     O_SPROXYSET,
     "CIDR",
     "add a destination network (repeatable)"},
    {{"remove-dest", required_argument, NULL, L_SRV_CERT + 5},
     O_SPROXYSET,
     "CIDR",
     "remove a destination network (repeatable)"},
    {{"source-except", required_argument, NULL, L_SRV_CERT + 6},
     O_SPROXY,
     "CIDR",
     "clients whose flows pass untouched (repeatable; on set: the new list whole)"},
    {{"add-source-except", required_argument, NULL, L_SRV_CERT + 7},
     O_SPROXYSET,
     "CIDR",
     "add a source exception (repeatable)"},
    {{"remove-source-except", required_argument, NULL, L_SRV_CERT + 8},
     O_SPROXYSET,
     "CIDR",
     "remove a source exception (repeatable)"},
    {{"upstream", required_argument, NULL, L_UPSTREAM},
     O_SPROXY,
     "ADDR:PORT",
     "explicit mode: the real server the proxy forwards to"},
    {{"no-truststore", no_argument, NULL, L_NO_TRUSTSTORE},
     O_SPROXYSET,
     NULL,
     "stop verifying the real servers (no trust store)"},
    {{"never-domain", required_argument, NULL, L_LIST + TG_NEVER_DOMAINS},
     O_POLICY,
     "DOMAIN",
     "never decrypt this domain (repeatable)"},
    {{"never-category", required_argument, NULL, L_LIST + TG_NEVER_CATEGORIES},
     O_POLICY,
     "CATEGORY",
     "never decrypt this category (repeatable)"},
    {{"never-source", required_argument, NULL, L_LIST + TG_NEVER_SOURCES},
     O_POLICY,
     "CIDR",
     "never decrypt for these clients (repeatable)"},
    {{"always-source", required_argument, NULL, L_LIST + TG_ALWAYS_SOURCES},
     O_POLICY,
     "CIDR",
     "always decrypt for these clients (repeatable)"},
    {{"add-never-domain", required_argument, NULL, L_ADD + TG_NEVER_DOMAINS},
     O_POLICYSET,
     "DOMAIN",
     "add to the never-decrypt domains"},
    {{"add-never-category", required_argument, NULL, L_ADD + TG_NEVER_CATEGORIES},
     O_POLICYSET,
     "CATEGORY",
     "add to the never-decrypt categories"},
    {{"add-never-source", required_argument, NULL, L_ADD + TG_NEVER_SOURCES},
     O_POLICYSET,
     "CIDR",
     "add to the never-decrypt sources"},
    {{"add-always-source", required_argument, NULL, L_ADD + TG_ALWAYS_SOURCES},
     O_POLICYSET,
     "CIDR",
     "add to the always-decrypt sources"},
    {{"remove-never-domain", required_argument, NULL, L_REMOVE + TG_NEVER_DOMAINS},
     O_POLICYSET,
     "DOMAIN",
     "remove from the never-decrypt domains"},
    {{"remove-never-category", required_argument, NULL, L_REMOVE + TG_NEVER_CATEGORIES},
     O_POLICYSET,
     "CATEGORY",
     "remove from the never-decrypt categories"},
    {{"remove-never-source", required_argument, NULL, L_REMOVE + TG_NEVER_SOURCES},
     O_POLICYSET,
     "CIDR",
     "remove from the never-decrypt sources"},
    {{"remove-always-source", required_argument, NULL, L_REMOVE + TG_ALWAYS_SOURCES},
     O_POLICYSET,
     "CIDR",
     "remove from the always-decrypt sources"},
    {{"defaults", no_argument, NULL, L_DEFAULTS},
     O_POLICYSET,
     NULL,
     "include the default never-decrypt list"},
    {{"no-defaults", no_argument, NULL, L_NO_DEFAULTS},
     O_POLICY | O_POLICYSET,
     NULL,
     "leave the default never-decrypt list out"},
    {{"replace", no_argument, NULL, L_REPLACE}, O_REPLACE, NULL, "replace what is there"},
    {{"chain", required_argument, NULL, L_CHAIN},
     O_VERIFY,
     "FILE",
     "intermediate certificates (repeatable)"},
    {{"ca-file", required_argument, NULL, L_CA_FILE},
     O_VERIFY,
     "FILE",
     "trusted root certificates (repeatable)"},
    {{"host", required_argument, NULL, L_HOST},
     O_VERIFY,
     "NAME",
     "the host name the certificate must match"},
    {{"at", required_argument, NULL, L_AT},
     O_VERIFY,
     "TIME",
     "verify at this time: RFC 3339 or Unix seconds"},
    {{"purpose", required_argument, NULL, L_PURPOSE},
     O_VERIFY,
     "PURPOSE",
     "server or client",
     "server client"},
    {{"backend", required_argument, NULL, L_BACKEND},
     O_SERVE,
     "ADDR:PORT",
     "where decrypted connections go"},
    {{"threads", required_argument, NULL, L_THREADS},
     O_SERVE,
     "N",
     "worker threads (0: one per core)"},
    {{"no-tickets", no_argument, NULL, L_NO_TICKETS}, O_SERVE, NULL, "no TLS session tickets"},
    {{"cache", required_argument, NULL, L_CACHE},
     O_SERVE,
     "N",
     "certificates held parsed in memory (0: 10,000)"},
    {{"quiet", no_argument, NULL, L_QUIET},
     O_SERVE,
     NULL,
     "only warnings and errors: no info lines"},
    {{"intercept", required_argument, NULL, L_INTERCEPT},
     O_SERVE,
     "ADDR:PORT",
     "where transparent server proxies' flows are redirected (repeatable; 0.0.0.0:8444)"},
    {{"pcap", required_argument, NULL, L_PCAP},
     O_SERVE,
     "FILE",
     "write decrypted traffic as pcap (- is standard output)"},
    {{"pcap-max-mb", required_argument, NULL, L_PCAP_MAX},
     O_SERVE,
     "N",
     "the largest --pcap file, in MB"},
    {{"content-log", required_argument, NULL, L_CONTENT},
     O_SERVE,
     "DIR",
     "write decrypted content to DIR"},
    {{"content-max-mb", required_argument, NULL, L_CONTENT_MAX},
     O_SERVE,
     "N",
     "the most --content-log may hold, in MB"},
    {{"admin", required_argument, NULL, L_ADMIN},
     O_SERVE,
     "ADDR:PORT",
     "the management API's listener"},
    {{"admin-cert", required_argument, NULL, L_ADMIN_CERT},
     O_SERVE,
     "NAME",
     "the management API's certificate"},
    {{"no-admin", no_argument, NULL, L_NO_ADMIN}, O_SERVE, NULL, "no management API"},
    {{"log", required_argument, NULL, L_LOG},
     O_SERVE,
     "SINKS",
     "where the log goes: stderr, syslog or both",
     "stderr syslog both"},
    {{"log-socket", required_argument, NULL, L_LOG_SOCKET}, O_SERVE, "PATH", "the syslog socket"},
    {{"check-every", required_argument, NULL, L_CHECK_EVERY},
     O_SERVE,
     "SECONDS",
     "the expiry check's interval (default: daily)"},
    {{"role", required_argument, NULL, L_ROLE},
     O_ROLE,
     "ROLE",
     "Administrator, Certificate manager, Inspection manager or Auditor",
     "administrator certificate-manager inspection-manager auditor"},
    {{"label", required_argument, NULL, L_LABEL}, O_LABEL, "LABEL", "a label to recognise it by"},
    {{"since", required_argument, NULL, L_SINCE},
     O_AUDIT,
     "TIME",
     "only rows since TIME: RFC 3339 or Unix seconds"},
    {{"limit", required_argument, NULL, L_LIMIT}, O_AUDIT, "N", "at most N rows"},
    {{"offset", required_argument, NULL, L_OFFSET}, O_AUDIT, "N", "skip the first N rows"},
    {{"proxy", required_argument, NULL, L_GROUP_PROXY}, O_GROUPOBJ, "PROXY", "a client proxy"},
    {{"policy", required_argument, NULL, L_GROUP_POLICY},
     O_GROUPOBJ,
     "POLICY",
     "a decryption policy"},
    {{"none", no_argument, NULL, L_NONE}, O_NONE, NULL, "no group (no limits)"},
    {{"server", required_argument, NULL, L_SERVER}, O_ENROLL, "URL", "the EST server"},
    {{"ca-file", required_argument, NULL, L_ENROLL_CA_FILE},
     O_ENROLL,
     "FILE",
     "the CA certificates that authenticate the server"},
    {{"secret-file", required_argument, NULL, L_SECRET_FILE},
     O_ENROLL,
     "FILE",
     "the enrollment secret"},
    {{"serial", required_argument, NULL, L_SERIAL}, O_ENROLL, "ID", "the device's serial number"},
    {{"listen", required_argument, NULL, L_ENROLL_LISTEN}, O_ESTD, "ADDR:PORT", "the EST listener"},
    {{"cert", required_argument, NULL, L_ENROLL_CERT},
     O_ESTD,
     "NAME",
     "the EST listener's certificate"},
    {{"approval", required_argument, NULL, L_APPROVAL},
     O_ECASET,
     "MODE",
     "secret or manual",
     "secret manual"},
    {{"device-days", required_argument, NULL, L_DEVICE_DAYS},
     O_ECASET,
     "N",
     "devices' certificate validity in days"},
    {{"reason", required_argument, NULL, L_REASON}, O_REASON, "REASON", "the revocation reason"},
    {{"retry-after", required_argument, NULL, L_RETRY_AFTER},
     O_ECASET,
     "SECS",
     "the Retry-After devices waiting for approval are told"},
    {{"directory", required_argument, NULL, L_DIRECTORY}, O_ACME, "URL", "the ACME directory"},
    {{"directory-ca", required_argument, NULL, L_DIRECTORY_CA},
     O_ACME,
     "FILE",
     "the CA certificates that authenticate the directory"},
    {{"eab-kid", required_argument, NULL, L_EAB_KID},
     O_ACME,
     "KID",
     "external account binding: the key identifier"},
    {{"eab-hmac-file", required_argument, NULL, L_EAB_HMAC_FILE},
     O_ACME,
     "FILE",
     "external account binding: the HMAC key's file"},
    {{"account", required_argument, NULL, L_ACCOUNT}, O_ACMEORD, "NAME", "the ACME account to use"},
    {{"domain", required_argument, NULL, L_DOMAIN},
     O_ACMEORD,
     "DOMAIN",
     "a domain to order (repeatable)"},
    {{"challenge", required_argument, NULL, L_CHALLENGE},
     O_ACMEORD,
     "TYPE",
     "http-01, tls-alpn-01 or dns-01",
     "http-01 tls-alpn-01 dns-01"},
    {{"dns-hook", required_argument, NULL, L_DNS_HOOK},
     O_ACMEORD,
     "PROGRAM",
     "the program that publishes dns-01 records"},
    {{"profile", required_argument, NULL, L_ACME_PROFILE},
     O_ACMEORD,
     "PROFILE",
     "the ACME certificate profile"},
    {{"http", required_argument, NULL, L_HTTP},
     O_SERVE,
     "ADDR:PORT",
     "the HTTP listener for ACME http-01 challenges"},
    {{"config", required_argument, NULL, L_CONFIG},
     O_SERVE,
     "FILE",
     "the configuration file (flags override it)"},
    {{"yes", no_argument, NULL, L_YES}, O_YES, NULL, "confirm: everything is deleted"},
    {{"as-server", no_argument, NULL, L_AS_SERVER},
     O_ASSERVER,
     NULL,
     "file a self-signed CA certificate that names servers as a server certificate"},
    {{"wide", no_argument, NULL, L_WIDE},
     O_LISTX,
     NULL,
     "every column, nothing cut (else the table fits the terminal)"},
    {{"filter", required_argument, NULL, L_FILTER},
     O_LISTX,
     "TEXT",
     "only those whose name, common name or an alternative name contains TEXT (any case)"},
    {{"json", no_argument, NULL, L_JSON}, O_ALWAYS, NULL, "output as JSON"},
    {{"home", required_argument, NULL, L_HOME}, O_ALWAYS, "DIR", "the store directory"},
};
#define NOPTS (sizeof(table) / sizeof(table[0]))

const opt_entry *opts_table(size_t *n)
{
    *n = NOPTS;
    return table;
}

static int number(cli *c, const char *opt, const char *v, int *out)
{
    *out = 0; /* set on every path: callers read it only on success */
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < INT_MIN || n > INT_MAX)
        return cli_usage(c, "%s needs a whole number, not '%s'", opt, v);
    *out = (int)n;
    return 0;
}

int opts_parse(cli *c, int argc, char **argv, opt_mask allowed, opts *o)
{
    memset(o, 0, sizeof(*o));
    o->expiring = -1;
    tg_proxy_opts *px = &o->proxy;
    int *switches[] = {&px->block_invalid, &px->block_expired, &px->http2_downgrade,
                       &px->tcp_reset,     &px->log,           &px->keylog};
    for (size_t i = 0; i < sizeof(switches) / sizeof(switches[0]); i++)
        *switches[i] = TG_UNSET;
    o->policy.no_defaults = TG_UNSET;
    o->sans = calloc((size_t)argc + 1, sizeof(*o->sans));
    o->args = calloc((size_t)argc + 1, sizeof(*o->args));
    o->chains = calloc((size_t)argc + 1, sizeof(*o->chains));
    o->cas = calloc((size_t)argc + 1, sizeof(*o->cas));
    o->listens = calloc((size_t)argc + 1, sizeof(*o->listens));
    o->domains = calloc((size_t)argc + 1, sizeof(*o->domains));
    o->intercepts = calloc((size_t)argc + 1, sizeof(*o->intercepts));
    if (o->sans == NULL || o->args == NULL || o->chains == NULL || o->cas == NULL ||
        o->listens == NULL || o->domains == NULL || o->intercepts == NULL)
        return cli_usage(c, "out of memory");
    o->serve.listen = o->listens;
    o->intercept = o->intercepts;
    if (allowed & (O_POLICY | O_POLICYSET))
        for (int w = 0; w < 2; w++)
            for (int k = 0; k < TG_POLICY_LISTS; k++) {
                o->plists[w][k] = calloc((size_t)argc + 1, sizeof(char *));
                if (o->plists[w][k] == NULL) return cli_usage(c, "out of memory");
                (w ? o->policy.remove : o->policy.add)[k].v = o->plists[w][k];
            }
    if (allowed & (O_SPROXY | O_SPROXYSET))
        for (int k = 0; k < 9; k++)
            if ((o->slists[k] = calloc((size_t)argc + 1, sizeof(char *))) == NULL)
                return cli_usage(c, "out of memory");
    struct option longs[NOPTS + 1];
    size_t n = 0;
    for (size_t i = 0; i < NOPTS; i++)
        if (table[i].bit == O_ALWAYS || (table[i].bit & allowed)) longs[n++] = table[i].opt;
    memset(&longs[n], 0, sizeof(longs[n]));
    optind = 0; /* GNU: reinitialise; "-" first keeps positional arguments in order */
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "-:", longs, NULL)) != -1) {
        tg_subject *s = &o->spec.subject;
        switch (ch) {
        case 1:
            o->args[o->nargs++] = optarg;
            break;
        case 'c':
            s->cn = optarg;
            break;
        case 's':
            o->sans[o->spec.nsans++] = optarg;
            break;
        case L_COUNTRY:
            s->country = optarg;
            break;
        case L_STATE:
            s->state = optarg;
            break;
        case L_LOCALITY:
            s->locality = optarg;
            break;
        case L_ORG:
            s->org = optarg;
            break;
        case L_OU:
            s->unit = optarg;
            break;
        case L_EMAIL:
            s->email = optarg;
            break;
        case 'k':
            if (allowed & O_KEYSPEC)
                o->spec.keyspec = optarg;
            else
                o->keyfile = optarg;
            break;
        case 'd':
            if (number(c, "--days", optarg, &o->spec.days) != 0) return TG_E_USAGE;
            o->spec.days_set = 1;
            break;
        case 'X':
            o->spec.no_export = 1;
            break;
        case 'S':
            o->spec.signing = 1;
            break;
        case 'n':
            o->name = optarg;
            break;
        case 'p':
            o->passfile = optarg;
            break;
        case 'f':
            o->format = optarg;
            break;
        case 'K':
            o->with_key = 1;
            break;
        case 'C':
            o->with_chain = 1;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'F':
            o->force = 1;
            break;
        case 'P':
            o->profile = optarg;
            break;
        case 'B':
            o->support_bundle = 1;
            break;
        case 'N':
            o->no_passphrase = 1;
            break;
        case 'D':
            o->description = px->description = o->policy.description = optarg;
            break;
        case L_POLICY:
            px->policy = optarg;
            break;
        case L_NO_POLICY:
            px->no_policy = 1;
            break;
        case L_NO_SNI:
            px->no_sni = optarg;
            break;
        case L_ECH:
            px->ech = optarg;
            break;
        case L_NON_TLS:
            px->non_tls = optarg;
            break;
        case L_FAIL_OPEN: {
            int v;
            if (number(c, "--fail-open", optarg, &v) != 0) return TG_E_USAGE;
            px->fail_open_set = 1;
            px->fail_open = v;
            break;
        }
        case L_DEFAULTS:
        case L_NO_DEFAULTS:
            if (o->policy.no_defaults != TG_UNSET)
                return cli_usage(c, "%s: give --defaults or --no-defaults, once", argv[0]);
            o->policy.no_defaults = ch == L_NO_DEFAULTS;
            break;
        case L_REPLACE:
            o->replace = 1;
            break;
        case L_SIGNCERT:
            px->signing = optarg;
            break;
        case L_TRUSTSTORE:
            px->truststore = o->verify.truststore = optarg;
            break;
        case L_UPSTREAM:
            px->upstream = optarg;
            break;
        case L_NO_TRUSTSTORE:
            px->no_truststore = 1;
            break;
        case L_LISTEN:
            px->listen = o->listens[o->serve.nlisten++] = optarg;
            break;
        case L_CHAIN:
            o->chains[o->verify.nchains++] = optarg;
            break;
        case L_CA_FILE:
            o->cas[o->verify.ncas++] = optarg;
            break;
        case L_HOST:
            o->verify.host = optarg;
            break;
        case L_AT:
            o->verify.at = optarg;
            break;
        case L_PURPOSE:
            o->verify.purpose = optarg;
            break;
        case L_BACKEND:
            o->serve.backend = optarg;
            break;
        case L_NO_TICKETS:
            o->serve.no_tickets = 1;
            break;
        case L_QUIET:
            o->serve.quiet = 1;
            break;
        case L_PCAP:
            o->pcap = optarg;
            break;
        case L_INTERCEPT:
            o->intercepts[o->nintercepts++] = optarg;
            break;
        case L_CONTENT:
            o->content_log = optarg;
            break;
        case L_ADMIN:
            o->admin = optarg;
            break;
        case L_ADMIN_CERT:
            o->admin_cert = optarg;
            break;
        case L_DIRECTORY:
            o->directory = optarg;
            break;
        case L_DIRECTORY_CA:
            o->directory_ca = optarg;
            break;
        case L_EAB_KID:
            o->eab_kid = optarg;
            break;
        case L_EAB_HMAC_FILE:
            o->eab_hmac_file = optarg;
            break;
        case L_ACCOUNT:
            o->account = optarg;
            break;
        case L_DOMAIN:
            o->domains[o->ndomains++] = optarg;
            break;
        case L_CHALLENGE:
            o->challenge = optarg;
            break;
        case L_DNS_HOOK:
            o->dns_hook = optarg;
            break;
        case L_ACME_PROFILE:
            o->acme_profile = optarg;
            break;
        case L_HTTP:
            o->http = optarg;
            break;
        case L_CONFIG:
            o->config = optarg;
            break;
        case L_AS_SERVER:
            o->as_server = 1;
            break;
        case L_NO_ADMIN:
            o->no_admin = 1;
            break;
        case L_LOG:
            o->log = optarg;
            break;
        case L_LOG_SOCKET:
            o->log_socket = optarg;
            break;
        case L_CHECK_EVERY:
            if (number(c, "--check-every", optarg, &o->serve.check_every) != 0) return TG_E_USAGE;
            o->serve_given |= SG_CHECK_EVERY;
            break;
        case L_THREADS:
            if (number(c, "--threads", optarg, &o->serve.threads) != 0) return TG_E_USAGE;
            o->serve_given |= SG_THREADS;
            break;
        case L_CACHE: {
            int v;
            if (number(c, "--cache", optarg, &v) != 0) return TG_E_USAGE;
            o->serve.cache = v;
            o->serve_given |= SG_CACHE;
            break;
        }
        case L_PCAP_MAX:
            if (number(c, "--pcap-max-mb", optarg, &o->pcap_max_mb) != 0) return TG_E_USAGE;
            break;
        case L_CONTENT_MAX:
            if (number(c, "--content-max-mb", optarg, &o->content_max_mb) != 0) return TG_E_USAGE;
            break;
        case L_MODE:
            px->mode = optarg;
            break;
        case L_PORTS:
            px->ports = optarg;
            break;
        case L_SERVICE:
            px->service = optarg;
            break;
        case L_PROTOCOLS:
            px->protocols = optarg;
            break;
        case L_CIPHERS:
            px->ciphers = optarg;
            break;
        case L_NO_CIPHERS:
            px->no_ciphers = 1;
            break;
        case L_OVER_MAX:
            px->over_max = optarg;
            break;
        case L_MIN_KEY_BITS:
        case L_MAX_CONNS: {
            int v;
            const char *opt = ch == L_MIN_KEY_BITS ? "--min-key-bits" : "--max-conns";
            if (number(c, opt, optarg, &v) != 0) return TG_E_USAGE;
            if (ch == L_MIN_KEY_BITS) {
                px->min_key_bits_set = 1;
                px->min_key_bits = v;
            } else {
                px->max_conns_set = 1;
                px->max_conns = v;
            }
            break;
        }
        case 'I':
            o->include_defaults = 1;
            break;
        case 'e':
            if (number(c, "--expiring", optarg, &o->expiring) != 0) return TG_E_USAGE;
            break;
        case L_ROLE:
            o->role = optarg;
            break;
        case L_LABEL:
            o->label = optarg;
            break;
        case L_GROUP_PROXY:
            o->gproxy = optarg;
            break;
        case L_GROUP_POLICY:
            o->gpolicy = optarg;
            break;
        case L_SERVER:
            o->enroll.server = optarg;
            break;
        case L_ENROLL_CA_FILE:
            o->enroll.ca_file = optarg;
            break;
        case L_SECRET_FILE:
            o->enroll.secret_file = optarg;
            break;
        case L_SERIAL:
            o->enroll.serial = optarg;
            break;
        case L_ENROLL_LISTEN:
            o->enroll.listen = optarg;
            break;
        case L_ENROLL_CERT:
            o->enroll.cert = optarg;
            break;
        case L_APPROVAL:
            o->enroll.approval = optarg;
            break;
        case L_DEVICE_DAYS:
            if (number(c, "--device-days", optarg, &o->enroll.device_days) != 0) return TG_E_USAGE;
            break;
        case L_REASON:
            o->enroll.reason = optarg;
            break;
        case L_RETRY_AFTER:
            if (number(c, "--retry-after", optarg, &o->enroll.retry_after) != 0) return TG_E_USAGE;
            break;
        case L_NONE:
            o->none = 1;
            break;
        case L_SINCE:
            o->since = optarg;
            break;
        case L_LIMIT:
        case L_OFFSET: {
            int v;
            if (number(c, ch == L_LIMIT ? "--limit" : "--offset", optarg, &v) != 0)
                return TG_E_USAGE;
            /* a limit of 0 is not "the default": the keyring refuses it (exit 3) */
            *(ch == L_LIMIT ? &o->limit : &o->offset) = ch == L_LIMIT && v == 0 ? -1 : v;
            break;
        }
        case L_YES:
            o->yes = 1;
            break;
        case L_WIDE:
            o->wide = 1;
            break;
        case L_FILTER:
            o->filter = optarg;
            break;
        case L_JSON:
            c->json = 1;
            break;
        case L_HOME:
            c->home = optarg;
            break;
        case ':':
            return cli_usage(c, "%s: option '%s' needs a value", argv[0], argv[optind - 1]);
        default:
            if (ch >= L_SWITCH && ch < L_SWITCH_END) {
                *switches[(ch - L_SWITCH) / 2] = (ch - L_SWITCH) % 2 == 0;
                break;
            }
            if (ch >= L_SRV_CERT && ch < L_SRV_LISTS_END) {
                /* the whole lists get v only when given: v NULL is "not given" on set */
                tg_textlist *sl[9] = {
                    &px->certs,         &px->add_certs,         &px->remove_certs,
                    &px->dest,          &px->add_dest,          &px->remove_dest,
                    &px->source_except, &px->add_source_except, &px->remove_source_except};
                int k = ch - L_SRV_CERT;
                sl[k]->v = o->slists[k];
                o->slists[k][sl[k]->n++] = optarg;
                break;
            }
            if (ch >= L_LIST && ch < L_DEFAULTS) {
                int w = ch >= L_REMOVE;
                int k = (ch - L_LIST) % TG_POLICY_LISTS;
                tg_textlist *l = &(ch >= L_REMOVE ? o->policy.remove : o->policy.add)[k];
                o->plists[w][k][l->n++] = optarg;
                break;
            }
            return cli_usage(c, "%s: option '%s' is not known here", argv[0], argv[optind - 1]);
        }
    }
    o->spec.sans = o->sans;
    return 0;
}

void opts_free(opts *o)
{
    free(o->sans);
    free(o->args);
    free(o->chains);
    free(o->cas);
    free(o->listens);
    free(o->domains);
    free(o->intercepts);
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < TG_POLICY_LISTS; k++)
            free(o->plists[w][k]);
    for (int k = 0; k < 9; k++)
        free(o->slists[k]);
}

/* Subcommands that only read are not audited; every other one is (a change, or an export:
 * not a change, but a copy leaving the store), whether it succeeds or fails. A new
 * subcommand is audited unless it is named here. */
static int read_only(const char *sub)
{
    static const char *const names[] = {"list",  "show",  "tokens",
                                        "stats", "serve", "rollover-plan"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(sub, names[i]) == 0) return 1;
    return 0;
}

/* The audit row of a subcommand: action "group.sub" ("proxy client" -> "proxy.client"),
 * object its first argument, detail the other arguments and the options that name things
 * (never a file's content or a password: those never are arguments). */
static void audit_sub(cli *c, tg_keyring *kr, const char *group, const char *sub, const opts *o,
                      int rc)
{
    char action[128];
    snprintf(action, sizeof(action), "%s.%s", group, sub);
    for (char *p = action; *p; p++)
        if (*p == ' ') *p = '.';
    json_t *detail = json_object(), *args = json_array();
    for (int i = 1; args != NULL && i < o->nargs; i++)
        json_array_append_new(args, json_string(o->args[i]));
    if (detail != NULL && json_array_size(args) > 0) json_object_set(detail, "args", args);
    json_decref(args);
    const char *named[][2] = {{"name", o->name},
                              {"role", o->role},
                              {"label", o->label},
                              {"proxy", o->gproxy},
                              {"policy", o->gpolicy}};
    for (size_t i = 0; detail != NULL && i < sizeof(named) / sizeof(named[0]); i++)
        if (named[i][1] != NULL) json_object_set_new(detail, named[i][0], json_string(named[i][1]));
    cli_audit(c, kr, action, o->nargs > 0 ? o->args[0] : NULL, rc, detail);
    json_decref(detail);
}

int cli_dispatch(cli *c, int argc, char **argv, const cli_sub *subs, size_t nsubs)
{
    if (argc < 2) {
        char names[256] = "";
        for (size_t i = 0; i < nsubs; i++)
            snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? ", " : "",
                     subs[i].name);
        return cli_usage(c, "%s needs a subcommand: %s", argv[0], names);
    }
    for (size_t i = 0; i < nsubs; i++) {
        if (strcmp(argv[1], subs[i].name) != 0) continue;
        opts o;
        int rc = opts_parse(c, argc - 1, argv + 1, subs[i].allowed, &o);
        if (rc == 0) {
            tg_keyring *kr = cli_open(c);
            rc = kr ? subs[i].fn(c, kr, &o) : c->err.code;
            if (kr != NULL && !read_only(subs[i].name))
                audit_sub(c, kr, argv[0], subs[i].name, &o, rc);
            tg_keyring_close(kr);
        }
        opts_free(&o);
        return rc;
    }
    const char *names[64];
    size_t n = 0;
    for (size_t i = 0; i < nsubs && n < 64; i++)
        names[n++] = subs[i].name;
    const char *near = cli_nearest(argv[1], names, n);
    if (near != NULL)
        return cli_usage(c, "unknown subcommand '%s %s' (did you mean '%s %s'?)", argv[0], argv[1],
                         argv[0], near);
    return cli_usage(c, "unknown subcommand '%s %s'", argv[0], argv[1]);
}
