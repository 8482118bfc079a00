/*
 * opts.h — one option parser for every subcommand; each subcommand names the options
 * it accepts, so that a misplaced option is a usage error and not silently ignored.
 */
#ifndef TG_CLI_OPTS_H
#define TG_CLI_OPTS_H

#include "cli_int.h"
#include "../keyring/verify.h"
#include "../tls/tls.h"

enum {
    O_CN = 1 << 0,
    O_SAN = 1 << 1,
    O_SUBJ = 1 << 2, /* country state locality org ou email */
    O_KEYSPEC = 1 << 3,
    O_DAYS = 1 << 4,
    O_NOEXPORT = 1 << 5,
    O_SIGNING = 1 << 6,
    O_NAME = 1 << 7,
    O_KEYFILE = 1 << 8,
    O_PASSFILE = 1 << 9,
    O_FORMAT = 1 << 10,
    O_WITHKEY = 1 << 11,
    O_WITHCHAIN = 1 << 12,
    O_OUT = 1 << 13,
    O_EXPIRING = 1 << 14,
    O_EXPORTX = 1 << 15, /* --p12-profile --support-bundle --no-passphrase */
    O_INCLUDE_DEFAULTS = 1 << 16,
    O_FORCE = 1 << 17, /* --force: an export may replace an existing file */
    O_DESCRIPTION = 1 << 18,
    O_PROXY = 1 << 19,     /* a proxy's settings (--signing CERT is not cert create's --signing) */
    O_POLICY = 1 << 20,    /* a new policy's lists: --never-domain … --always-source */
    O_POLICYSET = 1 << 21, /* changes to a policy: --add-… --remove-… --defaults */
    O_REPLACE = 1 << 22,   /* --replace: an import replaces what is there */
    O_VERIFY = 1 << 23,    /* --chain --ca-file --host --at --purpose --truststore */
    O_SERVE = 1 << 24,     /* serve's listeners, threads, cache and logs */
    O_GROUPOBJ = 1 << 25,  /* --proxy P | --policy P: what a group denies or allows */
    O_NONE = 1 << 26,      /* --none: user group NAME --none */
    O_ACME = 1 << 27,      /* ACME: --directory --directory-ca --email --eab-kid --eab-hmac-file
                            * --account --domain --challenge --dns-hook --profile */
    O_ROLE = 1 << 28,      /* --role: a user's role */
    O_LABEL = 1 << 29,     /* --label: an API token's label */
    O_AUDIT = 1 << 30,     /* --since --limit --offset: which audit rows */
    O_TRUST = O_DESCRIPTION | O_INCLUDE_DEFAULTS,
    O_ALWAYS = ~0u /* --json --home */
};
#define O_NEWCERT (O_CN | O_SAN | O_SUBJ | O_KEYSPEC | O_DAYS | O_NOEXPORT)

typedef struct opts {
    tg_newcert spec;
    const char **sans;
    const char *name, *keyfile, *passfile, *format, *out;
    const char *profile, *description;
    int include_defaults;
    int with_key, with_chain, expiring, support_bundle, no_passphrase, force;
    tg_proxy_opts proxy;   /* O_PROXY (and --description); switches start as TG_UNSET */
    tg_policy_opts policy; /* O_POLICY, O_POLICYSET (and --description) */
    const char **plists[2][TG_POLICY_LISTS]; /* room for policy.add and policy.remove */
    int replace;
    tg_verify_opts verify;            /* O_VERIFY: files are cli_inputs_read by cmd_verify */
    const char **chains, **cas;       /* O_VERIFY: --chain and --ca-file, in order */
    tg_serve_opts serve;              /* O_SERVE (.listen: every --listen) */
    const char **listens;             /* room for serve.listen */
    const char *pcap, *content_log;   /* O_SERVE: --pcap, --content-log */
    int pcap_max_mb, content_max_mb;  /* O_SERVE: 0 when not given */
    const char *admin, *admin_cert;   /* O_SERVE: --admin ADDR:PORT, --admin-cert NAME */
    int no_admin;                     /* O_SERVE: --no-admin */
    const char *log, *log_socket;     /* O_SERVE: --log stderr|syslog|both, --log-socket PATH */
    const char *role, *label, *since; /* O_ROLE, O_LABEL, O_AUDIT */
    long long limit, offset;          /* O_AUDIT */
    const char *gproxy, *gpolicy;     /* O_GROUPOBJ: --proxy, --policy */
    int none;                         /* O_NONE */
    const char *directory, *directory_ca, *eab_kid, *eab_hmac_file; /* O_ACME */
    const char *account, *challenge, *dns_hook, *acme_profile;      /* O_ACME */
    const char **domains;                                           /* O_ACME: every --domain */
    int ndomains;
    const char *http; /* O_SERVE: --http ADDR:PORT (ACME http-01) */
    char **args;      /* positional arguments after the subcommand */
    int nargs;
} opts;

/* Parses argv[1..] (argv[0] is the subcommand). Returns 0 or TG_E_USAGE. */
int opts_parse(cli *c, int argc, char **argv, unsigned allowed, opts *o);
void opts_free(opts *o);

/* One subcommand of a group ("cert", "request"): its options and its handler. */
typedef struct cli_sub {
    const char *name;
    unsigned allowed;
    int (*fn)(cli *, tg_keyring *, opts *);
} cli_sub;
/* Finds argv[1] among subs, parses its options, opens the keyring and runs it. */
/* cert export and ca export (the same options). */
int cli_cert_export(cli *c, tg_keyring *kr, opts *o);
int cli_ca_export(cli *c, tg_keyring *kr, opts *o);
int cli_dispatch(cli *c, int argc, char **argv, const cli_sub *subs, size_t nsubs);

#endif
