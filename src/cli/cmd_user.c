/*
 * cmd_user.c — "tlsgate user …": the appliance's users, roles and API tokens (issue 10,
 * M3). Read the password (a file, $TLSGATE_PASSWORD or the terminal, twice), call the
 * keyring, print; every rule is the keyring's. A new token is printed once and never
 * kept by tlsgate.
 */
#include "opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The keyring names the input by its field; here the user name, a role given as an
 * argument and a token id are arguments, not options, so no option is added to the
 * sentence for them (cli.c maps the others). */
static int positional(cli *c, int rc, const char *also)
{
    if (rc != 0 && (strcmp(c->err.field, "name") == 0 || strcmp(c->err.field, "id") == 0 ||
                    (also && strcmp(c->err.field, also) == 0)))
        c->err.field[0] = '\0';
    return rc;
}

static int one(cli *c, const opts *o, const char *what)
{
    if (o->nargs != 1) return cli_usage(c, "user %s needs exactly one user name", what);
    return 0;
}

/* A new password for name, asked for twice on a terminal; *pw is locked memory of
 * TG_PASS_MAX bytes for the caller to tg_secure_free. */
static int new_password(cli *c, const opts *o, const char *name, char **pw, size_t *len)
{
    char prompt[TG_USER_NAME_MAX + 40];
    snprintf(prompt, sizeof(prompt), "New password for %.*s: ", TG_USER_NAME_MAX, name);
    cli_pass pass;
    const tg_passsrc *src = cli_pass_init(&pass, o->passfile, prompt, 1);
    *pw = tg_secure_alloc(TG_PASS_MAX);
    if (*pw == NULL) return tg_err_set(&c->err, TG_E_INTERNAL, "out of memory");
    return tg_pass_get(src, *pw, TG_PASS_MAX, len, &c->err);
}

static int user_add(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "add") != 0) return TG_E_USAGE;
    if (o->role == NULL)
        return cli_usage(c, "user add needs --role (Administrator, 'Certificate manager', "
                            "'Inspection manager' or Auditor)");
    tg_role role;
    int rc = tg_role_parse(o->role, &role, &c->err);
    if (rc != 0) return rc;
    char *pw = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    rc = new_password(c, o, o->args[0], &pw, &len);
    if (rc == 0)
        rc = tg_keyring_user_add(kr, o->args[0], role, (unsigned char *)pw, len, &doc, &c->err);
    tg_secure_free(pw, TG_PASS_MAX);
    if (rc == 0) cli_emit(c, doc, print_user_doc);
    return positional(c, rc, NULL);
}

static int user_passwd(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "passwd") != 0) return TG_E_USAGE;
    char *pw = NULL;
    size_t len = 0;
    /* an unknown user is refused before a password is asked for */
    json_t *doc = NULL;
    int rc = tg_keyring_user_show(kr, o->args[0], &doc, &c->err);
    json_decref(doc);
    if (rc == 0) rc = new_password(c, o, o->args[0], &pw, &len);
    if (rc == 0) rc = tg_keyring_user_passwd(kr, o->args[0], (unsigned char *)pw, len, &c->err);
    tg_secure_free(pw, TG_PASS_MAX);
    if (rc == 0 && !c->json) printf("Changed the password of '%s'\n", o->args[0]);
    if (rc == 0 && c->json) printf("{\"changed\": true}\n");
    return positional(c, rc, NULL);
}

static int user_del(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "del") != 0) return TG_E_USAGE;
    int rc = tg_keyring_user_delete(kr, o->args[0], &c->err);
    if (rc == 0 && !c->json) printf("Deleted the user '%s' and its tokens\n", o->args[0]);
    if (rc == 0 && c->json) printf("{\"deleted\": true}\n");
    return positional(c, rc, NULL);
}

static int user_list(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 0) return cli_usage(c, "user list takes no arguments");
    json_t *rows = NULL;
    int rc = tg_keyring_user_list(kr, &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, print_user_table);
    return rc;
}

static int user_role(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 2) return cli_usage(c, "user role needs a user name and a role");
    tg_role role;
    json_t *doc = NULL;
    int rc = tg_role_parse(o->args[1], &role, &c->err);
    if (rc == 0) rc = tg_keyring_user_set_role(kr, o->args[0], role, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_user_doc);
    return positional(c, rc, "role");
}

static int set_disabled(cli *c, tg_keyring *kr, opts *o, int disabled)
{
    if (one(c, o, disabled ? "disable" : "enable") != 0) return TG_E_USAGE;
    json_t *doc = NULL;
    int rc = tg_keyring_user_set_disabled(kr, o->args[0], disabled, &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_user_doc);
    return positional(c, rc, NULL);
}

static int user_disable(cli *c, tg_keyring *kr, opts *o)
{
    return set_disabled(c, kr, o, 1);
}

static int user_enable(cli *c, tg_keyring *kr, opts *o)
{
    return set_disabled(c, kr, o, 0);
}

static int user_token(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "token") != 0) return TG_E_USAGE;
    char *token = NULL;
    json_t *doc = NULL;
    int days = o->spec.days_set ? o->spec.days : 0;
    int rc = tg_keyring_token_create(kr, o->args[0], o->label, days, &token, &doc, &c->err);
    if (rc != 0) return positional(c, rc, NULL);
    json_int_t id = json_integer_value(json_object_get(doc, "id"));
    c->audit = json_pack("{s:I}", "token_id", id);
    if (c->json) {
        cli_json_secret(doc, "token", token);
    } else {
        const char *exp = json_string_value(json_object_get(doc, "expires"));
        printf("Token %lld for '%s' (%s):\n\n    %s\n\nIt is shown only now; tlsgate keeps only "
               "its SHA-256. Send it as 'Authorization: Bearer TOKEN'.\n",
               (long long)id, o->args[0], exp ? exp : "never expires", token);
        json_decref(doc);
    }
    tg_free_secret(token, strlen(token));
    return 0;
}

static int user_tokens(cli *c, tg_keyring *kr, opts *o)
{
    if (one(c, o, "tokens") != 0) return TG_E_USAGE;
    json_t *rows = NULL;
    int rc = tg_keyring_token_list(kr, o->args[0], &rows, &c->err);
    if (rc == 0) cli_emit(c, rows, print_token_table);
    return positional(c, rc, NULL);
}

static int user_revoke(cli *c, tg_keyring *kr, opts *o)
{
    if (o->nargs != 2) return cli_usage(c, "user revoke needs a user name and a token id");
    char *end;
    long long id = strtoll(o->args[1], &end, 10);
    if (*o->args[1] == '\0' || *end != '\0' || id <= 0)
        return cli_usage(c, "user revoke: a token id is a number ('user tokens %s' lists them)",
                         o->args[0]);
    int rc = tg_keyring_token_revoke(kr, o->args[0], id, &c->err);
    if (rc == 0 && !c->json) printf("Revoked token %lld of '%s'\n", id, o->args[0]);
    if (rc == 0 && c->json) printf("{\"revoked\": %lld}\n", id);
    return positional(c, rc, NULL);
}

/* user group NAME GROUP | user group NAME --none */
static int user_group(cli *c, tg_keyring *kr, opts *o)
{
    if (o->none ? o->nargs != 1 : o->nargs != 2)
        return cli_usage(c, "user group needs a user name and a group, or a user name and --none");
    json_t *doc = NULL;
    int rc = tg_keyring_user_set_group(kr, o->args[0], o->none ? NULL : o->args[1], &doc, &c->err);
    if (rc == 0) cli_emit(c, doc, print_user_doc);
    return positional(c, rc, "group");
}

static const cli_sub subs[] = {
    {"add", O_ROLE | O_PASSFILE, user_add, "NAME", "add a user",
     "user add alice --role auditor --password-file pw.txt"},
    {"passwd", O_PASSFILE, user_passwd, "NAME", "set a user's password", "user passwd alice"},
    {"del", 0, user_del, "NAME", "delete a user", "user del alice"},
    {"list", 0, user_list, "", "the users", "user list"},
    {"role", 0, user_role, "NAME ROLE", "change a user's role", "user role alice auditor"},
    {"disable", 0, user_disable, "NAME", "a user may no longer log in", "user disable alice"},
    {"enable", 0, user_enable, "NAME", "a disabled user may log in again", "user enable alice"},
    {"token", O_LABEL | O_DAYS, user_token, "NAME", "a new API bearer token, printed once",
     "user token alice --label ci --days 30"},
    {"tokens", 0, user_tokens, "NAME", "a user's API tokens", "user tokens alice"},
    {"revoke", 0, user_revoke, "NAME TOKEN_ID", "revoke an API token", "user revoke alice 3"},
    {"group", O_NONE, user_group, "NAME [GROUP]", "a user's group (--none: unlimited)",
     "user group alice ops"},
};
const cli_group users_group = CLI_GROUP(subs);

int cmd_user(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, argc, argv, subs, sizeof(subs) / sizeof(subs[0]));
}
