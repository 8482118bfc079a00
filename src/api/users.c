/*
 * users.c — users, their tokens, the audit log and the factory reset through the API
 * (docs/api.md): the keyring calls of src/cli/cmd_user.c, cmd_audit.c and cli.c's
 * factory-reset. A user's own password, tokens and document need only a token of that user;
 * anyone else's need TG_CAP_USERS. Passwords arrive in JSON bodies only, are handed to the
 * keyring as bytes and overwritten in the parsed body; a new token is answered once, spliced
 * into the answer's text so that no JSON value ever holds it, and never recorded.
 */
#include "api_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The path's user is the caller (names are unique without regard to ASCII case), or the
 * caller may manage users. */
static int self_or_users(api_req *r)
{
    if (strcasecmp(r->who.name, r->params[0]) == 0) return 0;
    return api_authorize(r, TG_CAP_USERS);
}

/* The body's "password" through tg_pass_get, as the CLI's file or prompt: the same
 * sentences ("none was given", too long) and the same bound. *pw: locked memory of
 * TG_PASS_MAX bytes for the caller to tg_secure_free. */
static int password_of(api_req *r, char **pw, size_t *len)
{
    const char *data = NULL;
    size_t dlen = 0;
    api_secret sec;
    *pw = NULL;
    *len = 0;
    int rc = api_member_secret(r, "password", &data, &dlen);
    if (rc != 0) return rc;
    if ((*pw = tg_secure_alloc(TG_PASS_MAX)) == NULL)
        return api_fail(r, TG_E_INTERNAL, NULL, "out of memory");
    rc = tg_pass_get(api_secret_src(&sec, data, dlen), *pw, TG_PASS_MAX, len, &r->err);
    if (rc != 0 && r->err.field[0] == '\0')
        snprintf(r->err.field, sizeof(r->err.field), "password");
    return rc;
}

int api_users_list(api_req *r)
{
    json_t *doc = NULL;
    int rc = tg_keyring_user_list(r->kr, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

int api_user_add(api_req *r)
{
    static const char *const allowed[] = {"name", "role", "password", NULL};
    const char *name = NULL, *rolename = NULL;
    tg_role role = TG_ROLE_AUDITOR;
    char *pw = NULL;
    size_t len = 0;
    int rc = api_members_only(r, allowed);
    if (rc == 0) rc = api_member_str(r, "name", 1, &name);
    if (rc == 0) rc = api_member_str(r, "role", 1, &rolename);
    if (rc == 0) rc = tg_role_parse(rolename, &role, &r->err);
    if (rc == 0) r->detail = json_pack("{s:s}", "role", tg_role_name(role));
    if (rc == 0) rc = password_of(r, &pw, &len);
    json_t *doc = NULL;
    if (rc == 0)
        rc = tg_keyring_user_add(r->kr, name, role, (unsigned char *)pw, len, &doc, &r->err);
    tg_secure_free(pw, TG_PASS_MAX);
    api_member_wipe(r, "password");
    return api_done(r, rc, 201, doc);
}

int api_user_get(api_req *r)
{
    int rc = self_or_users(r);
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_user_show(r->kr, r->params[0], &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

int api_user_delete(api_req *r)
{
    int rc = tg_keyring_user_delete(r->kr, r->params[0], &r->err);
    return api_done(r, rc, 200, json_pack("{s:s}", "deleted", r->params[0]));
}

int api_user_role(api_req *r)
{
    static const char *const allowed[] = {"role", NULL};
    const char *rolename = NULL;
    tg_role role = TG_ROLE_AUDITOR;
    int rc = api_members_only(r, allowed);
    if (rc == 0) rc = api_member_str(r, "role", 1, &rolename);
    if (rc == 0) rc = tg_role_parse(rolename, &role, &r->err);
    if (rc == 0) r->detail = json_pack("{s:s}", "role", tg_role_name(role));
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_user_set_role(r->kr, r->params[0], role, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

/* One's own password changes only with the current one: a session or a token that was
 * stolen must not be able to lock its user out. Checked as a login is (the same work, the
 * same rate limits per address). */
static int current_password(api_req *r)
{
    const char *cur = NULL;
    size_t clen = 0;
    int rc = api_member_secret(r, "current_password", &cur, &clen);
    if (rc == 0 && cur == NULL)
        rc = api_fail(r, TG_E_USAGE, "current_password",
                      "changing one's own password needs the current one (current_password)");
    if (rc == 0) rc = api_password_guard(r);
    if (rc != 0) return rc;
    tg_principal who;
    tg_err e = {0};
    rc = tg_keyring_login(r->kr, r->who.name, (const unsigned char *)cur, clen, &who, &e);
    api_password_outcome(r, rc == 0);
    if (rc == TG_E_PASSWORD)
        return api_fail(r, TG_E_PASSWORD, "current_password", "the current password is wrong");
    return rc != 0 ? api_fail(r, rc, NULL, "%s", e.msg) : 0;
}

int api_user_password(api_req *r)
{
    static const char *const allowed[] = {"password", "current_password", NULL};
    char *pw = NULL;
    size_t len = 0;
    int self = strcasecmp(r->who.name, r->params[0]) == 0;
    int rc = self_or_users(r);
    if (rc == 0) rc = api_members_only(r, allowed);
    if (rc == 0 && self) rc = current_password(r);
    if (rc == 0) rc = password_of(r, &pw, &len);
    if (rc == 0)
        rc = tg_keyring_user_passwd(r->kr, r->params[0], (unsigned char *)pw, len, &r->err);
    tg_secure_free(pw, TG_PASS_MAX);
    api_member_wipe(r, "password");
    api_member_wipe(r, "current_password");
    return api_done(r, rc, 200, json_pack("{s:b}", "changed", 1));
}

static int set_disabled(api_req *r, int disabled)
{
    json_t *doc = NULL;
    int rc = tg_keyring_user_set_disabled(r->kr, r->params[0], disabled, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

int api_user_disable(api_req *r)
{
    return set_disabled(r, 1);
}

int api_user_enable(api_req *r)
{
    return set_disabled(r, 0);
}

int api_tokens_list(api_req *r)
{
    int rc = self_or_users(r);
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_token_list(r->kr, r->params[0], &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

/* The token's row with "token" added as text (cli_json_secret's way): the token is
 * base64url after "tg_", so it needs no escaping. *out is malloc'd, for api_send_bytes. */
int api_splice_secret(json_t *doc, const char *key, const char *token, unsigned char **out,
                      size_t *outlen)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
    size_t n = text ? strlen(text) : 0;
    if (n < 2 || text[n - 1] != '}') {
        free(text);
        return TG_E_INTERNAL;
    }
    size_t size = n + strlen(key) + strlen(token) + 16;
    char *buf = malloc(size);
    if (buf != NULL)
        *outlen = (size_t)snprintf(buf, size, "%.*s%s\"%s\":\"%s\"}\n", (int)(n - 1), text,
                                   n > 2 ? "," : "", key, token);
    free(text);
    *out = (unsigned char *)buf;
    return buf ? 0 : TG_E_INTERNAL;
}

int api_token_create(api_req *r)
{
    static const char *const allowed[] = {"label", "days", NULL};
    const char *label = NULL;
    int days = 0;
    int rc = self_or_users(r);
    if (rc == 0) rc = api_members_only(r, allowed);
    if (rc == 0) rc = api_member_str(r, "label", 0, &label);
    if (rc == 0) rc = api_member_int(r, "days", &days, NULL);
    if (rc == 0 && label) r->detail = json_pack("{s:s}", "label", label);
    char *token = NULL;
    json_t *doc = NULL;
    if (rc == 0)
        rc = tg_keyring_token_create(r->kr, r->params[0], label, days, &token, &doc, &r->err);
    if (rc != 0) return rc;
    /* the audit row knows the token by its id, never by its text */
    json_t *id = json_object_get(doc, "id");
    if (r->detail == NULL) r->detail = json_object();
    if (r->detail) json_object_set(r->detail, "token_id", id);
    unsigned char *body = NULL;
    size_t len = 0;
    rc = api_splice_secret(doc, "token", token, &body, &len);
    json_decref(doc);
    tg_free_secret(token, strlen(token));
    if (rc != 0) return api_fail(r, TG_E_INTERNAL, NULL, "out of memory");
    api_send_bytes(r, 201, "application/json", NULL, body, len);
    return 0;
}

int api_token_revoke(api_req *r)
{
    int rc = self_or_users(r);
    char *end;
    long long id = strtoll(r->params[1], &end, 10);
    if (rc == 0 && (*r->params[1] == '\0' || *end != '\0' || id <= 0))
        rc =
            api_fail(r, TG_E_USAGE, "id", "a token id is a number (the list of tokens shows them)");
    if (rc == 0) r->detail = json_pack("{s:I}", "token_id", (json_int_t)id);
    if (rc == 0) rc = tg_keyring_token_revoke(r->kr, r->params[0], id, &r->err);
    return api_done(r, rc, 200, json_pack("{s:I}", "revoked", (json_int_t)id));
}

/* audit [--since] [--limit] [--offset] as query parameters; the keyring judges them */
int api_audit_list(api_req *r)
{
    tg_audit_filter f = {0};
    int limit = 0, offset = 0, given = 0;
    int rc = api_query_int(r, "limit", INT_MIN, INT_MAX, &limit, &given);
    /* a limit of 0 is not "the default": the keyring refuses it, as for the CLI */
    if (rc == 0 && given) f.limit = limit == 0 ? -1 : limit;
    if (rc == 0) rc = api_query_int(r, "offset", INT_MIN, INT_MAX, &offset, NULL);
    f.offset = offset;
    const char *since = api_query(r, "since");
    if (rc == 0 && since) rc = tg_keyring_time_parse(since, "since", &f.since, &r->err);
    json_t *doc = NULL;
    if (rc == 0) rc = tg_keyring_audit_list(r->kr, &f, &doc, &r->err);
    return api_done(r, rc, 200, doc);
}

/* factory-reset --yes: {"confirm": true} */
int api_factory_reset(api_req *r)
{
    static const char *const allowed[] = {"confirm", NULL};
    int confirm = 0;
    int rc = api_members_only(r, allowed);
    if (rc == 0) rc = api_member_bool(r, "confirm", &confirm);
    if (rc == 0 && !confirm)
        rc = api_fail(r, TG_E_USAGE, "confirm",
                      "a factory reset deletes every key, certificate, request and user; send "
                      "{\"confirm\": true} to confirm");
    if (rc == 0) rc = tg_keyring_factory_reset(r->kr, &r->err);
    return api_done(r, rc, 200, json_pack("{s:b}", "reset", 1));
}
