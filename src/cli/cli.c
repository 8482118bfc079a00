/*
 * cli.c — entry point of the command line: global options, dispatch, error reporting
 * and the commands that are not about one kind of object (init, factory-reset).
 */
#include "opts.h"

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

tg_keyring *cli_create(cli *c)
{
    tg_keyring *kr = NULL;
    if (tg_keyring_open(cli_home(c), &kr, &c->err) != 0) return NULL;
    return kr;
}

/* Where the store directory came from, for the sentence that says it is not there. */
static const char *home_source(cli *c)
{
    if (c->home != NULL) return "--home";
    const char *h = getenv("TLSGATE_HOME");
    if (h && *h) return "$TLSGATE_HOME";
    return "the default: $XDG_DATA_HOME/tlsgate, else ~/.local/share/tlsgate";
}

tg_keyring *cli_open(cli *c)
{
    tg_keyring *kr = NULL;
    int rc = tg_keyring_open_existing(cli_home(c), &kr, &c->err);
    if (rc == TG_E_NOTFOUND && strcmp(c->err.field, "home") == 0) { /* no store there */
        tg_err_clear(&c->err);
        tg_err_set(&c->err, TG_E_NOTFOUND,
                   "there is no store in %s (%s): run 'tlsgate init' to create one there, or "
                   "give the directory of the existing store with --home DIR",
                   cli_home(c), home_source(c));
    }
    return rc == 0 ? kr : NULL;
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

/* A streamed array's text goes through one buffer of its own: jansson hands its dump
 * over in pieces of a few bytes, and a stdio call for each cost more than the rows. */
static struct {
    char buf[1 << 16];
    size_t n;
} stream_out;

static void stream_flush(void)
{
    if (stream_out.n) fwrite(stream_out.buf, 1, stream_out.n, stdout);
    stream_out.n = 0;
}

static void stream_put(const char *p, size_t n)
{
    if (stream_out.n + n > sizeof(stream_out.buf)) stream_flush();
    if (n > sizeof(stream_out.buf)) {
        fwrite(p, 1, n, stdout);
        return;
    }
    memcpy(stream_out.buf + stream_out.n, p, n);
    stream_out.n += n;
}

/* One element on a line of its own: a list of 100,000 reads as JSON and as lines alike,
 * and is written straight into the buffer (json_dumpb), a copy less than a layout. */
int cli_json_stream_row(json_t *row, void *arg)
{
    cli_json_stream *js = arg;
    stream_put(js->n++ ? ",\n" : "[\n", 2);
    size_t room = sizeof(stream_out.buf) - stream_out.n;
    size_t need = json_dumpb(row, stream_out.buf + stream_out.n, room, JSON_PRESERVE_ORDER);
    if (need == 0) return js->failed = 1;
    if (need <= room) {
        stream_out.n += need;
        return 0;
    }
    /* it did not fit: what json_dumpb wrote past n is dropped, the row written again */
    char *text = json_dumps(row, JSON_PRESERVE_ORDER);
    if (text == NULL) return js->failed = 1;
    stream_put(text, strlen(text));
    free(text);
    return 0;
}

void cli_json_stream_begin(cli_json_stream *js)
{
    *js = (cli_json_stream){0};
    stream_out.n = 0;
}

void cli_json_stream_end(cli_json_stream *js, int rc)
{
    if (rc == 0)
        stream_put(js->n ? "\n]\n" : "[]\n", 3);
    else if (js->n)
        stream_put("\n", 1); /* the error follows on standard error */
    stream_flush();
    fflush(stdout);
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

const cli_sub init_cmd = {
    "init", 0, NULL, "", "create the store, its default certificate and the first administrator",
    "init"};

static int cmd_init(cli *c, int argc, char **argv)
{
    opts o;
    int bad = opts_parse(c, argc, argv, init_cmd.allowed, &o);
    if (bad == 0 && o.nargs != 0) bad = cli_usage(c, "init takes no arguments");
    opts_free(&o);
    if (bad != 0) return bad;
    tg_keyring *kr = cli_create(c);
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

const cli_sub reset_cmd = {"factory-reset",
                           O_YES,
                           NULL,
                           "",
                           "delete every object and user (not the audit log), recreate the default",
                           "factory-reset --yes"};

static int cmd_factory_reset(cli *c, int argc, char **argv)
{
    opts o;
    int bad = opts_parse(c, argc, argv, reset_cmd.allowed, &o);
    if (bad == 0 && o.nargs != 0)
        bad = cli_usage(c, "factory-reset: unknown argument '%s'", o.args[0]);
    int yes = o.yes;
    opts_free(&o);
    if (bad != 0) return bad;
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

static int cmd_version(cli *c, int argc, char **argv)
{
    (void)c;
    (void)argc;
    (void)argv;
    printf("tlsgate %s\n", TG_VERSION);
    return 0;
}

/* The commands, in the order help lists them; the dispatcher and help read this table. */
const cli_cmd cli_commands[] = {
    {"init", cmd_init, "create the store (only init and serve create one)", NULL, &init_cmd},
    {"cert", cmd_cert, "certificates and their keys", &cert_group, NULL},
    {"request", cmd_request, "certificate requests (CSRs)", &request_group, NULL},
    {"ca", cmd_ca, "CA certificates and their rollover", &ca_group, NULL},
    {"truststore", cmd_truststore, "named sets of CA certificates", &truststore_group, NULL},
    {"verify", cmd_verify, "check a certificate's path and host name (exit 1: invalid)", NULL,
     &verify_cmd},
    {"refresh", cmd_refresh, "recompute every certificate's chain status", NULL, &refresh_cmd},
    {"proxy", cmd_proxy, "client inspection proxies", &proxy_group, NULL},
    {"policy", cmd_policy, "decryption policies", &policy_group, NULL},
    {"category", cmd_category, "the domain-to-category map policies refer to", &category_group,
     NULL},
    {"serve", cmd_serve, "the TLS front end, the client proxies and the management API", NULL,
     &serve_cmd},
    {"config", cmd_config, "the configuration, and what serve runs", &config_group, NULL},
    {"acme", cmd_acme, "certificates ordered and renewed with ACME", &acme_group, NULL},
    {"identity", cmd_identity, "the appliance's identity certificate (EST)", &identity_group, NULL},
    {"enroll-ca", cmd_enrollca, "tlsgate as the enrollment CA (EST) of a fleet", &enrollca_group,
     NULL},
    {"user", cmd_user, "the appliance's users and their API tokens", &users_group, NULL},
    {"group", cmd_group, "user groups: what their users may not change", &group_group, NULL},
    {"audit", cmd_audit, "the audit log, newest first", NULL, &audit_cmd},
    {"factory-reset", cmd_factory_reset, "wipe everything, recreate the default certificate", NULL,
     &reset_cmd},
};
const size_t cli_ncommands = sizeof(cli_commands) / sizeof(cli_commands[0]);

/* Whether the words after the command ask for help (before any "--"). */
static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) return 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    }
    return 0;
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
            cli_help_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("tlsgate %s\n", TG_VERSION);
            return 0;
        } else {
            fprintf(stderr, "tlsgate: unknown option '%s'\n\n", argv[i]);
            cli_help_usage(stderr);
            return -TG_E_USAGE;
        }
    }
    if (i >= argc) {
        cli_help_usage(stderr);
        return -TG_E_USAGE;
    }
    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    int rc;
    const cli_cmd *found = NULL;
    for (size_t k = 0; k < cli_ncommands; k++)
        if (strcmp(cmd, cli_commands[k].name) == 0) found = &cli_commands[k];
    if (strcmp(cmd, "help") == 0) return cli_help(sub_argc - 1, sub_argv + 1);
    if (strcmp(cmd, "version") == 0) return cmd_version(&c, sub_argc, sub_argv);
    if (found != NULL && wants_help(sub_argc, sub_argv)) return cli_help_for(sub_argc, sub_argv);
    /* the words as given, for the hint after a usage error (some commands rename argv[1]) */
    char *words[sub_argc + 1];
    memcpy(words, sub_argv, sizeof(words));
    if (found != NULL) {
        rc = found->run(&c, sub_argc, sub_argv);
    } else {
        const char *names[64];
        size_t n = 0;
        for (size_t k = 0; k < cli_ncommands && n < 64; k++)
            names[n++] = cli_commands[k].name;
        const char *near = cli_nearest(cmd, names, n);
        if (near != NULL)
            rc = cli_usage(&c, "unknown command '%s' (did you mean '%s'?)", cmd, near);
        else
            rc = cli_usage(&c, "unknown command '%s' (tlsgate --help lists them)", cmd);
    }
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
        if (c.err.code == TG_E_USAGE) cli_help_hint(stderr, sub_argc, words);
        return -c.err.code;
    }
    return 0;
}
