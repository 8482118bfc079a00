/*
 * cmd_identity.c — "tlsgate identity …" (the appliance's identity, SPEC E1–E3) and
 * "tlsgate enroll-ca …" (tlsgate as the enrollment CA of a fleet, E4): read files,
 * call the keyring or src/enroll, print. README "Identity and enrollment".
 */
#include "opts.h"
#include "../enroll/enroll.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- printing ---- */

static const char *str(json_t *o, const char *k, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : dflt;
}

static void print_identity(json_t *doc)
{
    json_t *set = json_object_get(doc, "settings"), *id = json_object_get(doc, "identity"),
           *at = json_object_get(doc, "attempt");
    printf("Device id:        %s (%s)\n", str(doc, "device_id", "-"),
           str(doc, "device_id_source", "none"));
    if (json_is_object(set)) {
        printf("Server:           %s\n", str(set, "server", "-"));
        printf("Server trust:     %s\n", json_is_true(json_object_get(set, "ca_file"))
                                             ? "the configured CA file"
                                             : "the system's CAs");
        printf("Bootstrap secret: %s\n",
               json_is_true(json_object_get(set, "bootstrap_secret")) ? "held (unspent)" : "none");
    } else {
        printf("Server:           none configured (tlsgate identity enroll --server URL)\n");
    }
    if (json_is_true(json_object_get(id, "certificate"))) {
        printf("Certificate:      %s\n", str(id, "subject", "-"));
        printf("  issuer          %s\n", str(id, "issuer", "-"));
        printf("  serial          %s\n", str(id, "serial", "-"));
        printf("  valid until     %s (renewal due %s)\n", str(id, "not_after", "-"),
               str(id, "renew_at", "-"));
    } else {
        printf("Certificate:      none yet\n");
    }
    if (!json_is_null(json_object_get(id, "pending_request")))
        printf("Request pending:  %s\n", str(id, "pending_request", "-"));
    if (json_is_object(at)) {
        printf("Last attempt:     %s: %s", str(at, "last_attempt", "-"), str(at, "state", "-"));
        json_int_t f = json_integer_value(json_object_get(at, "failures"));
        if (f > 0) printf(" (%lld failed in a row)", (long long)f);
        printf("\n");
        if (json_is_string(json_object_get(at, "last_error")))
            printf("  error           %s\n", str(at, "last_error", ""));
        printf("Next try:         %s\n", str(at, "next_try", "-"));
    }
}

static void print_attempt(json_t *doc)
{
    const char *state = str(doc, "state", "?");
    if (strcmp(state, "enrolled") == 0)
        printf("Enrolled as '%s' with %s; the identity is the certificate '%s'. Renewal is "
               "due %s.\n",
               str(doc, "device_id", "?"), str(doc, "server", "?"), TG_IDENTITY_NAME,
               str(doc, "next_try", "?"));
    else if (strcmp(state, "pending") == 0)
        printf("The request of '%s' waits for an approval at %s; serve asks again from %s.\n",
               str(doc, "device_id", "?"), str(doc, "server", "?"), str(doc, "next_try", "?"));
}

/* ---- identity ---- */

static int read_small(cli *c, const char *path, tg_input **in)
{
    char *paths[1] = {(char *)path};
    return cli_inputs_read(c, paths, 1, "the certificate file", in);
}

static int attempt(cli *c, tg_keyring *kr, int force)
{
    json_t *state = NULL;
    int rc = tg_enroll_identity_now(kr, force, &state, &c->err);
    if (state != NULL) c->audit = json_pack("{s:O}", "state", json_object_get(state, "state"));
    if (rc == 0) {
        cli_emit(c, state, print_attempt);
        return 0;
    }
    json_decref(state);
    if (rc != TG_E_NOTFOUND && rc != TG_E_USAGE)
        fprintf(stderr, "tlsgate: serve keeps trying with the saved settings "
                        "(tlsgate identity show tells the next try)\n");
    return rc;
}

static int identity_enroll(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "identity enroll takes no arguments, only options");
    if (o->enroll.server == NULL)
        return cli_usage(c, "identity enroll needs --server URL (the EST server)");
    tg_input *ca = NULL, *secret = NULL;
    int rc = 0;
    if (o->enroll.ca_file && (rc = read_small(c, o->enroll.ca_file, &ca)) != 0) return rc;
    if (o->enroll.secret_file && (rc = read_small(c, o->enroll.secret_file, &secret)) != 0) {
        cli_inputs_free(ca, 1);
        return rc;
    }
    size_t slen = secret ? secret->len : 0;
    while (slen > 0 && (secret->data[slen - 1] == '\n' || secret->data[slen - 1] == '\r'))
        slen--;
    tg_identity_conf conf = {.server = o->enroll.server,
                             .ca_pem = ca ? (const char *)ca->data : NULL,
                             .serial = o->enroll.serial,
                             .secret = secret ? secret->data : NULL,
                             .secretlen = slen};
    if (ca != NULL && strlen((const char *)ca->data) != ca->len)
        rc = tg_err_fset(&c->err, TG_E_INVALID, "ca_file", "%s is not a PEM text file",
                         o->enroll.ca_file);
    if (rc == 0) rc = tg_keyring_identity_configure(kr, &conf, &c->err);
    cli_inputs_free(ca, ca ? 1 : 0);
    cli_inputs_free(secret, secret ? 1 : 0);
    if (rc != 0) return rc;
    return attempt(c, kr, 1);
}

static int identity_renew(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "identity renew takes no arguments");
    return attempt(c, kr, 1);
}

static int identity_show(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "identity show takes no arguments");
    json_t *doc = NULL;
    int rc = tg_enroll_identity_show(kr, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_identity);
    return rc;
}

static const cli_sub identity_subs[] = {
    {"enroll", O_ENROLL, identity_enroll, "",
     "enroll the appliance's identity certificate with an EST server",
     "identity enroll --server https://est.example.com --ca-file est-ca.pem --secret-file s.txt"},
    {"renew", 0, identity_renew, "", "renew the identity certificate now", "identity renew"},
    {"show", 0, identity_show, "", "the appliance's identity certificate", "identity show"},
};
const cli_group identity_group = CLI_GROUP(identity_subs);

int cmd_identity(cli *c, int argc, char **argv)
{
    const cli_sub *subs = identity_subs;
    return cli_dispatch(c, argc, argv, subs, identity_group.n);
}

/* ---- enroll-ca ---- */

static void print_device_table(json_t *rows)
{
    printf("%-5s %-32s %-9s %-20s %s\n", "ID", "DEVICE", "STATE", "VALID UNTIL", "SERIAL");
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        char *until = cli_time_text(r, "not_after");
        printf("%-5lld %-32.32s %-9s %-20.20s %s\n",
               (long long)json_integer_value(json_object_get(r, "id")), str(r, "device", "-"),
               str(r, "state", "-"), until ? until : "-", str(r, "serial", "-"));
        free(until);
    }
    if (json_array_size(rows) == 0) printf("(no requests yet)\n");
}

static void print_enrollca(json_t *doc)
{
    printf("CA:               %s (%s)\n", str(doc, "ca", "-"), str(doc, "subject", "-"));
    printf("  valid until     %s\n", str(doc, "not_after", "-"));
    printf("  SHA-256         %s\n", str(doc, "sha256", "-"));
    printf("Device validity:  %lld days\n",
           (long long)json_integer_value(json_object_get(doc, "device_days")));
    printf("Approval:         %s\n", strcmp(str(doc, "approval", ""), "manual") == 0
                                         ? "manual (a request without a secret waits)"
                                         : "secret (a request needs a bootstrap secret)");
    json_t *secrets = json_object_get(doc, "secrets");
    size_t i, unspent = 0;
    json_t *s;
    json_array_foreach(secrets, i, s) unspent += json_is_null(json_object_get(s, "used"));
    printf("Retry-After:      %lld s (what a device waiting for an approval is told)\n",
           (long long)json_integer_value(json_object_get(doc, "retry_after")));
    printf("Secrets:          %zu made, %zu unspent\n", json_array_size(secrets), unspent);
    printf("\n");
    print_device_table(json_object_get(doc, "devices"));
}

static int ca_init(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "enroll-ca init takes no arguments, only options");
    tg_enrollca_opts eo = {.cn = o->spec.subject.cn,
                           .keyspec = o->spec.keyspec,
                           .days = o->spec.days_set ? o->spec.days : 0,
                           .device_days = o->enroll.device_days,
                           .approval = o->enroll.approval,
                           .retry_after = o->enroll.retry_after};
    if (o->spec.days_set && o->spec.days == 0)
        return cli_usage(c, "--days needs a number of days from 1");
    json_t *doc = NULL;
    int rc = tg_keyring_enrollca_init(kr, &eo, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_enrollca);
    return rc;
}

static int ca_set(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "enroll-ca set takes no arguments, only options");
    if (o->enroll.device_days == 0 && o->enroll.approval == NULL && o->enroll.retry_after == 0)
        return cli_usage(c, "enroll-ca set needs --device-days N, --approval secret|manual or "
                            "--retry-after SECONDS");
    tg_enrollca_opts eo = {.device_days = o->enroll.device_days,
                           .approval = o->enroll.approval,
                           .retry_after = o->enroll.retry_after};
    json_t *doc = NULL;
    int rc = tg_keyring_enrollca_set(kr, &eo, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_enrollca);
    return rc;
}

static int ca_show(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "enroll-ca show takes no arguments");
    json_t *doc = NULL;
    int rc = tg_keyring_enrollca_show(kr, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_enrollca);
    return rc;
}

static int ca_list(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "enroll-ca list takes no arguments");
    json_t *rows = NULL;
    int rc = tg_keyring_enrollca_list(kr, &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, print_device_table);
    return rc;
}

static int ca_secret(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "enroll-ca secret takes no arguments, only options");
    char *secret = NULL;
    json_t *doc = NULL;
    int days = o->spec.days_set ? o->spec.days : 0;
    if (o->spec.days_set && days == 0) return cli_usage(c, "--days needs a number from 1 to 365");
    int rc = tg_keyring_enrollca_secret(kr, o->label, days, &secret, &doc, &c->err);
    if (rc != 0) return rc;
    c->audit = json_pack("{s:O}", "secret_id", json_object_get(doc, "id"));
    if (c->json) {
        cli_json_secret(doc, "secret", secret);
    } else {
        printf("Bootstrap secret %lld (good once, until %s):\n\n    %s\n\nIt is shown only now; "
               "the CA keeps only its SHA-256. Give it to one device (identity enroll "
               "--secret-file).\n",
               (long long)json_integer_value(json_object_get(doc, "id")), str(doc, "expires", "?"),
               secret);
        json_decref(doc);
    }
    tg_free_secret(secret, strlen(secret) + 1);
    return 0;
}

static int ca_approve(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1) return cli_usage(c, "enroll-ca approve needs one request id");
    char *end;
    long long id = strtoll(o->args[0], &end, 10);
    if (*o->args[0] == '\0' || *end != '\0' || id <= 0)
        return cli_usage(c,
                         "enroll-ca approve: a request id is a number (enroll-ca list shows "
                         "them), not '%s'",
                         o->args[0]);
    json_t *doc = NULL;
    int rc = tg_keyring_enrollca_approve(kr, id, "cli", &doc, &c->err);
    if (rc == 0 && !c->json) {
        printf("Issued a certificate to '%s' (serial %s); the device collects it at its next "
               "try\n",
               str(doc, "device", "?"), str(doc, "serial", "?"));
        json_decref(doc);
    } else if (rc == 0) {
        cli_emit(c, doc, NULL);
    }
    return rc;
}

static int ca_revoke(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 1)
        return cli_usage(c, "enroll-ca revoke needs one request id, device id or serial");
    json_t *rows = NULL;
    int rc = tg_keyring_enrollca_revoke(kr, o->args[0], o->enroll.reason, "cli", &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, print_device_table);
    return rc;
}

static void ready(const char *listen, void *arg)
{
    (void)arg;
    printf("tlsgate enroll-ca: EST server listening on %s (/.well-known/est/)\n", listen);
    fflush(stdout);
}

static int ca_serve(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "enroll-ca serve takes no arguments, only options");
    if (o->enroll.listen == NULL) return cli_usage(c, "enroll-ca serve needs --listen ADDR:PORT");
    tg_log_opts lo = {.sinks = 0, .prefix = "tlsgate enroll-ca", .ident = "tlsgate"};
    tg_log_open(&lo);
    int rc = tg_enroll_estd_run(kr, o->enroll.listen, o->enroll.cert, 0, ready, NULL, &c->err);
    tg_log_close();
    return rc;
}

static const cli_sub enrollca_subs[] = {
    {"init", O_CN | O_KEYSPEC | O_DAYS | O_ECASET, ca_init, "",
     "make tlsgate the enrollment CA of a fleet",
     "enroll-ca init --cn \"Fleet CA\" --key ec:p256 --approval secret"},
    {"set", O_ECASET, ca_set, "", "change the enrollment CA's settings",
     "enroll-ca set --device-days 90"},
    {"show", 0, ca_show, "", "the enrollment CA and its settings", "enroll-ca show"},
    {"list", 0, ca_list, "", "enrolled devices and pending requests", "enroll-ca list"},
    {"secret", O_LABEL | O_DAYS, ca_secret, "", "a one-time bootstrap secret, shown once",
     "enroll-ca secret --label rack-7 --days 7"},
    {"approve", 0, ca_approve, "ID", "issue a pending request", "enroll-ca approve 12"},
    {"revoke", O_REASON, ca_revoke, "ID|DEVICE|SERIAL",
     "reject a pending request or revoke a device's certificates",
     "enroll-ca revoke 12 --reason keyCompromise"},
    {"serve", O_ESTD, ca_serve, "", "the EST server, until SIGTERM",
     "enroll-ca serve --listen 0.0.0.0:8443"},
};
const cli_group enrollca_group = CLI_GROUP(enrollca_subs);

int cmd_enrollca(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, argc, argv, enrollca_subs, enrollca_group.n);
}
