/*
 * opts.h — one option parser for every subcommand; each subcommand names the options
 * it accepts, so that a misplaced option is a usage error and not silently ignored.
 */
#ifndef TG_CLI_OPTS_H
#define TG_CLI_OPTS_H

#include "cli_int.h"
#include "../keyring/verify.h"
#include "../tls/tls.h"

#include <stdio.h>

/* Which options a subcommand takes: a mask of these (64 bits: there is room). */
typedef unsigned long long opt_mask;
#define O_CN               (1ULL << 0)
#define O_SAN              (1ULL << 1)
#define O_SUBJ             (1ULL << 2) /* country state locality org ou email */
#define O_KEYSPEC          (1ULL << 3)
#define O_DAYS             (1ULL << 4)
#define O_NOEXPORT         (1ULL << 5)
#define O_SIGNING          (1ULL << 6)
#define O_NAME             (1ULL << 7)
#define O_KEYFILE          (1ULL << 8)
#define O_PASSFILE         (1ULL << 9)
#define O_FORMAT           (1ULL << 10)
#define O_WITHKEY          (1ULL << 11)
#define O_WITHCHAIN        (1ULL << 12)
#define O_OUT              (1ULL << 13)
#define O_EXPIRING         (1ULL << 14)
#define O_EXPORTX          (1ULL << 15) /* --p12-profile --support-bundle --no-passphrase */
#define O_INCLUDE_DEFAULTS (1ULL << 16)
#define O_FORCE            (1ULL << 17) /* --force: an export may replace an existing file */
#define O_DESCRIPTION      (1ULL << 18)
/* a proxy's settings (--signing CERT is not cert create's --signing) */
#define O_PROXY     (1ULL << 19)
#define O_POLICY    (1ULL << 20) /* a new policy's lists: --never-domain … --always-source */
#define O_POLICYSET (1ULL << 21) /* changes to a policy: --add-… --remove-… --defaults */
#define O_REPLACE   (1ULL << 22) /* --replace: an import replaces what is there */
#define O_VERIFY    (1ULL << 23) /* --chain --ca-file --host --at --purpose --truststore */
#define O_SERVE     (1ULL << 24) /* serve's listeners, threads, cache and logs */
#define O_GROUPOBJ  (1ULL << 25) /* --proxy P | --policy P: what a group denies or allows */
#define O_NONE      (1ULL << 26) /* --none: user group NAME --none */
#define O_ENROLL    (1ULL << 27) /* identity enroll: --server --ca-file --secret-file --serial */
#define O_ROLE      (1ULL << 28) /* --role: a user's role */
#define O_LABEL     (1ULL << 29) /* --label: an API token's label */
#define O_AUDIT     (1ULL << 30) /* --since --limit --offset: which audit rows */
/* acme account create: --directory --directory-ca --email --eab-kid --eab-hmac-file */
#define O_ACME   (1ULL << 31)
#define O_YES    (1ULL << 32) /* --yes: factory-reset's confirmation */
#define O_ESTD   (1ULL << 33) /* enroll-ca serve: --listen --cert */
#define O_ECASET (1ULL << 34) /* enroll-ca init|set: --approval --device-days --retry-after */
#define O_REASON (1ULL << 35) /* enroll-ca revoke: --reason */
#define O_ACMEORD                                                                                  \
    (1ULL << 36)                /* acme order: --account --domain --challenge --dns-hook --profile \
                                 */
#define O_LISTX    (1ULL << 37) /* cert list, ca list: --wide --filter */
#define O_ASSERVER (1ULL << 38) /* cert import: --as-server */
/* a server proxy's own settings (--cert --dest --source-except --upstream --no-truststore);
 * the settings both kinds share are entries of O_PROXY | O_SPROXY */
#define O_SPROXY    (1ULL << 39)
#define O_SPROXYSET (1ULL << 40) /* changes to a server proxy's lists: --add-… --remove-… */
#define O_TRUST     (O_DESCRIPTION | O_INCLUDE_DEFAULTS)
#define O_ALWAYS    (~0ULL) /* --json --home */
#define O_NEWCERT   (O_CN | O_SAN | O_SUBJ | O_KEYSPEC | O_DAYS | O_NOEXPORT)

/* serve's numbers given on the command line (0 is a value of its own there) */
#define SG_THREADS     1u
#define SG_CACHE       2u
#define SG_CHECK_EVERY 4u

typedef struct opts {
    tg_newcert spec;
    const char **sans;
    const char *name, *keyfile, *passfile, *format, *out;
    const char *profile, *description;
    int include_defaults;
    int with_key, with_chain, expiring, support_bundle, no_passphrase, force, as_server;
    tg_proxy_opts proxy;    /* O_PROXY (and --description); switches start as TG_UNSET */
    const char **slists[9]; /* O_SPROXY, O_SPROXYSET: room for proxy.certs … remove_… */
    tg_policy_opts policy;  /* O_POLICY, O_POLICYSET (and --description) */
    const char **plists[2][TG_POLICY_LISTS]; /* room for policy.add and policy.remove */
    int replace;
    tg_verify_opts verify;          /* O_VERIFY: files are cli_inputs_read by cmd_verify */
    const char **chains, **cas;     /* O_VERIFY: --chain and --ca-file, in order */
    tg_serve_opts serve;            /* O_SERVE (.listen: every --listen) */
    const char **listens;           /* room for serve.listen */
    const char *pcap, *content_log; /* O_SERVE: --pcap, --content-log */
    const char **intercepts;        /* O_SERVE: room for every --intercept */
    const char *const *intercept;   /* O_SERVE: the --intercept list (or the file's) */
    size_t nintercepts;
    int pcap_max_mb, content_max_mb;  /* O_SERVE: 0 when not given */
    const char *admin, *admin_cert;   /* O_SERVE: --admin ADDR:PORT, --admin-cert NAME */
    int no_admin;                     /* O_SERVE: --no-admin */
    const char *log, *log_socket;     /* O_SERVE: --log stderr|syslog|both, --log-socket PATH */
    const char *role, *label, *since; /* O_ROLE, O_LABEL, O_AUDIT */
    long long limit, offset;          /* O_AUDIT */
    const char *gproxy, *gpolicy;     /* O_GROUPOBJ: --proxy, --policy */
    int none;                         /* O_NONE */
    int yes;                          /* O_YES */
    int wide;                         /* O_LISTX: --wide */
    const char *filter;               /* O_LISTX: --filter TEXT */
    struct {
        const char *server, *ca_file, *secret_file, *serial; /* identity enroll */
        const char *listen, *cert, *approval, *reason;       /* enroll-ca */
        int device_days, retry_after;
    } enroll;                                                       /* O_ENROLL */
    const char *directory, *directory_ca, *eab_kid, *eab_hmac_file; /* O_ACME */
    const char *account, *challenge, *dns_hook, *acme_profile;      /* O_ACME */
    const char **domains;                                           /* O_ACME: every --domain */
    int ndomains;
    const char *http;     /* O_SERVE: --http ADDR:PORT (ACME http-01) */
    const char *config;   /* O_SERVE: --config FILE (conf.c) */
    unsigned serve_given; /* O_SERVE: SG_* bits, the numbers given on the command line */
    char **args;          /* positional arguments after the subcommand */
    int nargs;
} opts;

/* Parses argv[1..] (argv[0] is the subcommand). Returns 0 or TG_E_USAGE. */
int opts_parse(cli *c, int argc, char **argv, opt_mask allowed, opts *o);
void opts_free(opts *o);

/* One option of the parser's table: the getopt entry, the group it belongs to, and what
 * help shows of it (help.c): its value's name (NULL: a switch), a short description and,
 * for a value from a fixed set, its choices (space-separated: bash completion offers them). */
typedef struct opt_entry {
    struct option opt;
    opt_mask bit;
    const char *arg, *desc, *values;
} opt_entry;
/* The parser's table itself (*n: its length); help walks it with a subcommand's mask. */
const opt_entry *opts_table(size_t *n);

struct cli_group;
/* One subcommand of a group ("cert", "request"): its options and its handler, and what help
 * shows of it: its positional arguments, a one-line summary and one example (the command
 * line after "tlsgate "). A kind with subcommands of its own ("proxy client") has kind
 * set instead of fn. */
typedef struct cli_sub {
    const char *name;
    opt_mask allowed;
    int (*fn)(cli *, tg_keyring *, opts *);
    const char *args, *summary, *example;
    const struct cli_group *kind;
} cli_sub;
typedef struct cli_group {
    const cli_sub *subs;
    size_t n;
} cli_group;
#define CLI_GROUP(subs)                                                                            \
    {                                                                                              \
        (subs), sizeof(subs) / sizeof((subs)[0])                                                   \
    }

/* The tables of each command (cmd_*.c): the dispatcher and help read the same ones. */
extern const cli_group cert_group, request_group, ca_group, truststore_group, proxy_group,
    policy_group, category_group, users_group, group_group, acme_group, identity_group,
    enrollca_group, config_group;
/* Commands without subcommands: their options and help. */
extern const cli_sub init_cmd, verify_cmd, serve_cmd, audit_cmd, refresh_cmd, reset_cmd;

/* The commands (cli.c): a group of subcommands, or one without (self: its options and help). */
typedef struct cli_cmd {
    const char *name;
    int (*run)(cli *, int, char **);
    const char *summary;
    const cli_group *group;
    const cli_sub *self;
} cli_cmd;
extern const cli_cmd cli_commands[];
extern const size_t cli_ncommands;

/* help.c: "tlsgate help [--json|--man|--bash-completion] [CMD [SUB...]]" (words: what follows
 * "help"); returns the exit status. */
int cli_help(int argc, char **argv);
/* "tlsgate CMD ... --help": help for the subcommand named by the words of argv (options are
 * skipped); returns the exit status. */
int cli_help_for(int argc, char **argv);
/* After a usage error: where help for the words of argv is ("tlsgate help cert create"). */
void cli_help_hint(FILE *f, int argc, char **argv);
/* The command list (tlsgate --help, and on a usage error). */
void cli_help_usage(FILE *f);
/* help.c: "did you mean": the candidate nearest to word (edit distance <= 2, or the only one
 * word is a prefix of), else NULL. */
const char *cli_nearest(const char *word, const char *const *names, size_t n);
/* Finds argv[1] among subs, parses its options, opens the keyring and runs it. */
/* cert export and ca export (the same options). */
int cli_cert_export(cli *c, tg_keyring *kr, opts *o);
int cli_ca_export(cli *c, tg_keyring *kr, opts *o);
/* cert list (ca 0) and ca list (ca 1): the same options (cmd_cert.c). */
int cli_cert_list(cli *c, tg_keyring *kr, opts *o, int ca);
int cli_dispatch(cli *c, int argc, char **argv, const cli_sub *subs, size_t nsubs);

#endif
