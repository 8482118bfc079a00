/*
 * cli.c — entry point of the command line: global options, dispatch, error reporting
 * and the commands that are not about one kind of object (init, factory-reset).
 */
#include "cli_int.h"

#include <errno.h>
#include <libgen.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TG_VERSION
#define TG_VERSION "0.1.0"
#endif

static const char usage_text[] =
    "usage: tlsgate [--home DIR] [--json] COMMAND [ARGS]\n"
    "\n"
    "  init                                  create the store (done on first use too)\n"
    "  cert create NAME --cn CN [options]    self-signed certificate\n"
    "  cert import FILE... [--name N] [--key FILE] [--password-file F]\n"
    "  cert list [--expiring DAYS]           the certificates table\n"
    "  cert show NAME                        everything about one certificate\n"
    "  cert export NAME --format pem|der|p7b|p8|pkcs1|p12 [--with-key] [--with-chain]\n"
    "                   [--p12-profile modern|legacy-des|legacy-rc2] [--no-passphrase]\n"
    "                   [--support-bundle] [--passphrase-file F] --out FILE [--force]\n"
    "  cert default NAME                     certificate for clients without (matching) SNI\n"
    "  cert replace NAME FILE [--key FILE]   put FILE in NAME's place; old one -> NAME_REPLACED\n"
    "  cert delete NAME\n"
    "  request create NAME --cn CN [options] [--signing]\n"
    "  request list | show NAME | export NAME [--out F [--force]] | delete NAME\n"
    "  verify LEAF --ca-file FILE [--chain FILE] [--host NAME] [--at UNIX_TIME]\n"
    "         [--purpose server|client]      check path and host name (exit 1: invalid)\n"
    "  ca import FILE... [--name N] | list | show NAME | export NAME --format … --out F\n"
    "  ca replace NAME FILE | delete NAME | reissue NAME --days N [--name NEW]\n"
    "  ca rollover-plan                      every CA's dates and automatic rollover\n"
    "  ca rollover-lead DAYS                 reissue CAs this long before expiry (0: off)\n"
    "  truststore create NAME [--description D] [--include-defaults]\n"
    "  truststore add|remove NAME CA... | list | show NAME | delete NAME | update-defaults\n"
    "  proxy client create NAME --signing CERT --truststore TS --listen ADDR:PORT [proxy options]\n"
    "  proxy client list | show NAME | set NAME [proxy options] | delete NAME\n"
    "  policy create NAME [--description T] [--never-domain D]... [--never-category C]...\n"
    "         [--never-source CIDR]... [--always-source CIDR]... [--no-defaults]\n"
    "  policy set NAME [--description T] [--add-never-domain D|--remove-never-domain D]...\n"
    "         (likewise -never-category, -never-source, -always-source) "
    "[--defaults|--no-defaults]\n"
    "  policy list | show NAME | delete NAME | export NAME --out F [--force]\n"
    "  policy import FILE [--name NEW] [--replace]\n"
    "  policy defaults show | export --out F [--force] | import FILE | reset\n"
    "  category import FILE [--replace] | list | show HOST | clear\n"
    "  serve [--listen ADDR:PORT]... [--backend ADDR:PORT] [--threads N] [--no-tickets]\n"
    "        [--cache N] [--quiet]           TLS front end: certificates chosen by SNI\n"
    "        [--admin ADDR:PORT|--no-admin] [--admin-cert NAME] [--log stderr|syslog|both]\n"
    "        [--log-socket PATH] [--check-every SECONDS]\n"
    "  acme account create --directory URL [--directory-ca F] [--email E] [--name N]\n"
    "         [--eab-kid K --eab-hmac-file F] | account list | show NAME | delete NAME\n"
    "  acme order NAME --domain D... [--challenge http-01|tls-alpn-01|dns-01]\n"
    "         [--dns-hook PROGRAM] [--profile P] [--account N]   order now (serve answers)\n"
    "  acme list | show NAME | renew NAME | delete NAME\n"
    "  config show                           the configuration, and what serve runs\n"
    "  identity enroll --server URL [--ca-file F] [--secret-file F] [--serial ID]\n"
    "  identity show | renew                 the appliance's identity certificate (EST)\n"
    "  enroll-ca init [--cn CN] [--key SPEC] [--days N] [--device-days N]\n"
    "            [--approval secret|manual]  tlsgate as the enrollment CA of a fleet\n"
    "  enroll-ca serve --listen ADDR:PORT [--cert NAME] | secret [--label L] [--days N]\n"
    "  enroll-ca set [--device-days N] [--approval secret|manual] [--retry-after S]\n"
    "  enroll-ca show | list | approve ID | revoke ID|DEVICE|SERIAL [--reason R]\n"
    "  user add NAME --role ROLE [--password-file F] | passwd NAME | del NAME | list\n"
    "  user role NAME ROLE | disable NAME | enable NAME\n"
    "  user token NAME [--label L] [--days N] | tokens NAME | revoke NAME TOKEN_ID\n"
    "  user group NAME GROUP | group NAME --none   a user's group (none: unlimited)\n"
    "  group create NAME | delete NAME | list | show NAME\n"
    "  group deny NAME --proxy P | --policy P | allow NAME --proxy P | --policy P\n"
    "  audit [--since RFC3339|UNIX] [--limit N] [--offset N]   the audit log, newest first\n"
    "  refresh                               recompute every certificate's chain status\n"
    "  factory-reset --yes                   wipe everything, recreate the default certificate\n"
    "\n"
    "subject options: --cn --san DNS:…|IP:…|email:… (repeatable) --country --state --locality\n"
    "                 --org --ou --email --key rsa:2048|rsa:3072|rsa:4096|ec:p256|ec:p384\n"
    "                 --days N --no-export\n"
    "proxy options:   --signing CERT --truststore TS --listen ADDR:PORT\n"
    "                 --mode explicit|transparent --ports 443,8443,10000-10100\n"
    "                 --service https|imaps|pop3s|smtps|other --description TEXT\n"
    "                 --protocols 1.2,1.3 --ciphers LIST|--no-ciphers --min-key-bits N\n"
    "                 --max-conns N --over-max bypass|block, --policy NAME|--no-policy\n"
    "                 --no-sni decrypt|bypass|block --ech decrypt|bypass|block\n"
    "                 --non-tls bypass|block --fail-open SECS, and the switches --block-invalid\n"
    "                 --block-expired --http2-downgrade --tcp-reset --log --keylog (off: --no-…)\n"
    "The store lives in --home, else $TLSGATE_HOME, else $XDG_DATA_HOME/tlsgate\n"
    "(~/.local/share/tlsgate). Passwords come from a file, $TLSGATE_PASSWORD or the terminal.\n";

int cli_usage(cli *c, const char *fmt, ...)
{
    if (c->err.code == 0) {
        va_list ap;
        va_start(ap, fmt);
        c->err.code = TG_E_USAGE;
        vsnprintf(c->err.msg, sizeof(c->err.msg), fmt, ap);
        va_end(ap);
    }
    return TG_E_USAGE;
}

static char *default_home(void)
{
    static char buf[4096];
    const char *h = getenv("TLSGATE_HOME");
    if (h && *h) return (char *)h;
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg && *xdg) {
        snprintf(buf, sizeof(buf), "%s/tlsgate", xdg);
        return buf;
    }
    const char *home = getenv("HOME");
    snprintf(buf, sizeof(buf), "%s/.local/share/tlsgate", home && *home ? home : ".");
    return buf;
}

const char *cli_home(cli *c)
{
    return c->home ? c->home : default_home();
}

tg_keyring *cli_open(cli *c)
{
    tg_keyring *kr = NULL;
    if (tg_keyring_open(cli_home(c), &kr, &c->err) != 0) return NULL;
    return kr;
}

void cli_emit(cli *c, json_t *doc, void (*human)(json_t *doc))
{
    if (doc == NULL) return;
    if (c->json) {
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
    } else if (human != NULL) {
        human(doc);
    }
    json_decref(doc);
}

void cli_emit_export(cli *c, const char *name, const char *out, size_t len)
{
    if (!c->json) return;
    /* built with jansson: the path may hold quotes or backslashes (not UTF-8: no summary) */
    cli_emit(c, json_pack("{s:s?, s:s, s:I}", "name", name, "out", out, "bytes", (json_int_t)len),
             NULL);
}

/* Whether path names something in the store directory (or below it): its directory is
 * resolved (symbolic links, "..") and compared with the store's. */
static int in_store(cli *c, const char *path)
{
    char *copy = tg_strdup(path);
    char *dir = copy ? realpath(dirname(copy), NULL) : NULL;
    char *home = realpath(cli_home(c), NULL);
    int inside = 0;
    if (dir != NULL && home != NULL) {
        size_t n = strlen(home);
        inside = strncmp(dir, home, n) == 0 && (dir[n] == '\0' || dir[n] == '/' || n == 1);
    }
    free(copy);
    free(dir);
    free(home);
    return inside;
}

/* Exports are never written into the store: its own files would be lost. */
static int not_in_store(cli *c, const char *path)
{
    if (!in_store(c, path)) return 0;
    return tg_err_set(&c->err, TG_E_CONFLICT,
                      "%s is in the store directory %s; exports are never written there "
                      "(the store's own files would be lost): choose another place",
                      path, cli_home(c));
}

int cli_out_check(cli *c, const char *path, int force)
{
    if (strcmp(path, "-") == 0) return 0;
    int rc = not_in_store(c, path);
    return rc != 0 ? rc : tg_file_target_check(path, force, &c->err);
}

int cli_write_out(cli *c, const char *path, const unsigned char *data, size_t len, unsigned mode,
                  int force)
{
    if (strcmp(path, "-") == 0) {
        if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
            return tg_err_set(&c->err, TG_E_IO, "cannot write to standard output");
        return 0;
    }
    /* checked again at the moment of writing (tg_file_create checks the target itself) */
    int rc = not_in_store(c, path);
    return rc != 0 ? rc : tg_file_create(path, data, len, mode, force, &c->err);
}

void cli_audit(cli *c, tg_keyring *kr, const char *action, const char *object, int rc,
               json_t *detail)
{
    char actor[TG_AUDIT_TEXT_MAX];
    struct passwd *pw = getpwuid(geteuid());
    if (pw != NULL && pw->pw_name != NULL)
        snprintf(actor, sizeof(actor), "cli:%s", pw->pw_name);
    else
        snprintf(actor, sizeof(actor), "cli:uid %u", (unsigned)geteuid());
    json_t *d = detail ? json_deep_copy(detail) : json_object();
    if (d != NULL && c->audit != NULL) json_object_update(d, c->audit);
    /* why it failed: the sentence the user saw (sentences never hold a secret) */
    if (d != NULL && rc < 0 && c->err.msg[0] != '\0')
        json_object_set_new(d, "error", json_string(c->err.msg));
    if (d != NULL && json_object_size(d) == 0) {
        json_decref(d);
        d = NULL;
    }
    tg_audit_entry e = {.actor = actor,
                        .source = "cli",
                        .action = action,
                        .object = object,
                        .outcome = rc > 0 ? 0 : rc,
                        .detail = d};
    tg_err why = {0};
    if (tg_keyring_audit_add(kr, &e, &why) != 0)
        fprintf(stderr,
                "tlsgate: warning: %s was %s but could not be recorded in the audit log: "
                "%s\n",
                action, rc == 0 ? "done" : "refused", why.msg);
    json_decref(d);
}

void cli_json_secret(json_t *doc, const char *key, const char *secret)
{
    for (const char *p = secret; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
            *p != '-' && *p != '_') {
            json_decref(doc); /* never: the secrets printed this way are base64url */
            return;
        }
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text == NULL) return;
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] != '}')
        n--;
    if (n > 0) n--; /* the closing brace */
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
        n--;
    int empty = n > 0 && text[n - 1] == '{';
    printf("%.*s%s\n  \"%s\": \"%s\"\n}\n", (int)n, text, empty ? "" : ",", key, secret);
    free(text);
}

static void print_init(json_t *doc)
{
    printf("%s %s\n",
           json_is_true(json_object_get(doc, "new_store")) ? "Created the store"
                                                           : "The store is ready:",
           json_string_value(json_object_get(doc, "store")));
    printf("Default certificate: %s\n",
           json_string_value(json_object_get(doc, "default_certificate")));
}

static int cmd_init(cli *c, int argc, char **argv)
{
    (void)argv;
    if (argc > 1) return cli_usage(c, "init takes no arguments");
    tg_keyring *kr = cli_open(c);
    if (kr == NULL) return c->err.code;
    json_t *doc = NULL;
    char *password = NULL;
    int rc = tg_keyring_init(kr, &doc, &c->err);
    /* the first administrator, once: its one-time password is shown now and never again */
    if (rc == 0) rc = tg_keyring_first_admin(kr, &password, &c->err);
    if (rc == 0 && password != NULL) {
        json_object_set_new(doc, "first_admin", json_string(TG_FIRST_ADMIN));
        c->audit = json_pack("{s:s}", "first_admin", TG_FIRST_ADMIN);
    } else if (rc == 0) {
        json_object_set_new(doc, "first_admin", json_null());
    }
    if (rc == 0 && c->json && password != NULL) {
        cli_json_secret(doc, "first_admin_password", password);
        doc = NULL;
    } else if (rc == 0) {
        cli_emit(c, doc, print_init);
        doc = NULL;
        if (password != NULL)
            printf("Created the user '%s' (Administrator) with the one-time password\n\n    %s\n\n"
                   "It is shown only now; it must be changed at the first login (or with "
                   "tlsgate user passwd %s).\n",
                   TG_FIRST_ADMIN, password, TG_FIRST_ADMIN);
    }
    json_decref(doc);
    if (password != NULL) tg_free_secret(password, strlen(password));
    cli_audit(c, kr, "init", NULL, rc, NULL);
    tg_keyring_close(kr);
    return rc;
}

static int cmd_factory_reset(cli *c, int argc, char **argv)
{
    int yes = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--yes") == 0)
            yes = 1;
        else
            return cli_usage(c, "factory-reset: unknown argument '%s'", argv[i]);
    }
    if (!yes)
        return cli_usage(c, "factory-reset deletes every key, certificate and request; add --yes "
                            "to confirm");
    tg_keyring *kr = cli_open(c);
    if (kr == NULL) return c->err.code;
    int rc = tg_keyring_factory_reset(kr, &c->err);
    if (rc == 0 && !c->json)
        printf("Factory reset done; '%s' is the default certificate again. No users remain: "
               "tlsgate init creates the first administrator.\n",
               TG_DEFAULT_CERT_NAME);
    if (rc == 0 && c->json) printf("{\"reset\": true}\n");
    cli_audit(c, kr, "factory-reset", NULL, rc, NULL);
    tg_keyring_close(kr);
    return rc;
}

int tg_cli_main(int argc, char **argv)
{
    /* Any command may unseal keys: no core dump may ever hold them. */
    tg_process_harden();
    cli c = {0};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0)
            c.json = 1;
        else if (strcmp(argv[i], "--home") == 0 && i + 1 < argc)
            c.home = argv[++i];
        else if (strncmp(argv[i], "--home=", 7) == 0)
            c.home = argv[i] + 7;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("tlsgate %s\n", TG_VERSION);
            return 0;
        } else {
            fprintf(stderr, "tlsgate: unknown option '%s'\n%s", argv[i], usage_text);
            return -TG_E_USAGE;
        }
    }
    if (i >= argc) {
        fputs(usage_text, stderr);
        return -TG_E_USAGE;
    }
    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    int rc;
    if (strcmp(cmd, "init") == 0)
        rc = cmd_init(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "cert") == 0)
        rc = cmd_cert(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "request") == 0)
        rc = cmd_request(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "verify") == 0)
        rc = cmd_verify(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "ca") == 0)
        rc = cmd_ca(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "truststore") == 0)
        rc = cmd_truststore(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "proxy") == 0)
        rc = cmd_proxy(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "policy") == 0)
        rc = cmd_policy(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "category") == 0)
        rc = cmd_category(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "serve") == 0)
        rc = cmd_serve(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "user") == 0)
        rc = cmd_user(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "group") == 0)
        rc = cmd_group(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "acme") == 0)
        rc = cmd_acme(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "audit") == 0)
        rc = cmd_audit(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "identity") == 0)
        rc = cmd_identity(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "enroll-ca") == 0)
        rc = cmd_enrollca(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "config") == 0)
        rc = cmd_config(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "refresh") == 0)
        rc = cmd_refresh(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "factory-reset") == 0)
        rc = cmd_factory_reset(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    } else
        rc = cli_usage(&c, "unknown command '%s' (tlsgate --help lists them)", cmd);
    fflush(stdout);
    json_decref(c.audit);
    if (rc > 0) return rc; /* a verdict (verify: 1 = invalid), not an error */
    if (rc != 0) {
        if (c.err.code == 0) tg_err_set(&c.err, rc, "the operation failed");
        /* the library names the input by its field; here it is the option the user typed */
        char flag[40] = "";
        if (strcmp(c.err.field, "password") == 0) {
            snprintf(flag, sizeof(flag), "--password-file"); /* never a password on the line */
        } else if (c.err.field[0] != '\0' && strcmp(c.err.field, "leaf") != 0) {
            /* (leaf: a field the command line takes as an argument, not an option) */
            int n = snprintf(flag, sizeof(flag), "--%s", c.err.field);
            for (int k = 2; k < n && k < (int)sizeof(flag); k++)
                if (flag[k] == '_') flag[k] = '-';
        }
        if (flag[0] != '\0' && strstr(c.err.msg, flag) == NULL)
            fprintf(stderr, "tlsgate: %s (%s)\n", c.err.msg, flag);
        else
            fprintf(stderr, "tlsgate: %s\n", c.err.msg);
        if (c.err.code == TG_E_USAGE) fputs("(tlsgate --help shows the commands)\n", stderr);
        return -c.err.code;
    }
    return 0;
}
