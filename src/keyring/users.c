/*
 * users.c — the appliance's users (issue 10, M3): roles and what they allow, passwords
 * (scrypt, x509/passwd.c), login, the first administrator, and API tokens. One
 * transaction per write; the slow part (hashing, ~0.1 s) runs before the transaction, so
 * the write lock is not held meanwhile.
 *
 * Invariants: at least one enabled Administrator exists once any user does (deleting,
 * demoting or disabling the last one is refused); a password is kept only as its hash and
 * a token only as its SHA-256; login and token checks fail with one sentence whatever
 * the reason (unknown, disabled, wrong, expired), and a login for an unknown user does
 * the same scrypt work as one with a wrong password.
 */
#include "keyring_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- roles ---- */

static const char *const role_names[TG_ROLES] = {"Administrator", "Certificate manager",
                                                 "Inspection manager", "Auditor"};

const char *tg_role_name(tg_role r)
{
    return (unsigned)r < TG_ROLES ? role_names[r] : NULL;
}

/* Whether s names role (case and the word separators ' ', '-', '_' aside). */
static int role_matches(const char *s, const char *role)
{
    for (; *s && *role; s++, role++) {
        int a = *s == '-' || *s == '_' ? ' ' : tolower((unsigned char)*s);
        if (a != tolower((unsigned char)*role)) return 0;
    }
    return *s == '\0' && *role == '\0';
}

int tg_role_parse(const char *s, tg_role *out, tg_err *err)
{
    for (int r = 0; s != NULL && r < TG_ROLES; r++)
        if (role_matches(s, role_names[r])) {
            *out = (tg_role)r;
            return 0;
        }
    return tg_err_fset(err, TG_E_INVALID, "role",
                       "the role must be Administrator, Certificate manager, Inspection manager or "
                       "Auditor (case does not matter)");
}

int tg_role_allows(tg_role r, tg_cap cap)
{
    switch (cap) {
    case TG_CAP_READ:
        return (unsigned)r < TG_ROLES;
    case TG_CAP_CERTS:
        return r == TG_ROLE_ADMIN || r == TG_ROLE_CERTS;
    case TG_CAP_INSPECTION:
        return r == TG_ROLE_ADMIN || r == TG_ROLE_INSPECTION;
    case TG_CAP_USERS:
        return r == TG_ROLE_ADMIN;
    case TG_CAP_AUDIT:
        return r == TG_ROLE_ADMIN || r == TG_ROLE_AUDITOR;
    }
    return 0;
}

static int role_of(const char *stored, tg_role *out)
{
    for (int r = 0; r < TG_ROLES; r++)
        if (strcmp(stored, role_names[r]) == 0) {
            *out = (tg_role)r;
            return 0;
        }
    return -1;
}

/* ---- rules ---- */

static int name_check(const char *name, tg_err *err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0) return tg_err_fset(err, TG_E_INVALID, "name", "a user name must not be empty");
    char why[160];
    if (kr_text_problem(name, why, sizeof(why)) != NULL)
        return tg_err_fset(err, TG_E_INVALID, "name", "the user name %s", why);
    if (n > TG_USER_NAME_MAX)
        return tg_err_fset(err, TG_E_INVALID, "name",
                           "the user name is too long (%zu bytes; the limit is %d)", n,
                           TG_USER_NAME_MAX);
    if (name[0] == ' ' || name[n - 1] == ' ')
        return tg_err_fset(err, TG_E_INVALID, "name",
                           "the user name must not begin or end with a space");
    if (strchr(name, ':') != NULL)
        return tg_err_fset(err, TG_E_INVALID, "name",
                           "a user name must not hold ':' (the audit log names the command line's "
                           "users 'cli:LOGIN')");
    return 0;
}

/* Characters of a UTF-8 password (bytes when it is not UTF-8). */
static size_t pw_chars(const unsigned char *pw, size_t len)
{
    size_t n = 0, i = 0;
    while (i < len) {
        uint32_t cp;
        size_t k = pw[i] != 0 ? tg_utf8_next((const char *)pw + i, &cp) : 0;
        if (k == 0 || i + k > len) return len;
        i += k;
        n++;
    }
    return n;
}

static int pw_check(const unsigned char *pw, size_t len, tg_err *err)
{
    if (pw == NULL || len == 0)
        return tg_err_fset(err, TG_E_PASSWORD, "password", "a password is needed");
    if (len > TG_PASS_MAX - 1)
        return tg_err_fset(err, TG_E_PASSWORD, "password",
                           "the password is too long (%zu bytes; the limit is %d)", len,
                           TG_PASS_MAX - 1);
    if (pw_chars(pw, len) < TG_PASSWORD_MIN)
        return tg_err_fset(err, TG_E_PASSWORD, "password",
                           "the password is too short: it needs at least %d characters",
                           TG_PASSWORD_MIN);
    return 0;
}

static void rfc3339(long long t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "name" (text) and "name_unix" (number) into doc; null both when t is 0 and nullable. */
static int set_time(json_t *doc, const char *name, long long t, int nullable)
{
    char key[40], text[40];
    snprintf(key, sizeof(key), "%s_unix", name);
    if (t == 0 && nullable)
        return json_object_set_new(doc, name, json_null()) ||
               json_object_set_new(doc, key, json_null());
    rfc3339(t, text, sizeof(text));
    return json_object_set_new(doc, name, json_string(text)) ||
           json_object_set_new(doc, key, json_integer(t));
}

static json_t *user_doc(const tg_store_user *u)
{
    json_t *doc = json_pack("{s:o, s:s, s:o, s:b, s:b, s:I}", "name", kr_json_text(u->name), "role",
                            u->role, "group", kr_json_opt(u->group), "must_change", u->must_change,
                            "disabled", u->disabled, "token_count", (json_int_t)u->ntokens);
    if (doc != NULL &&
        (set_time(doc, "created", u->created, 0) || set_time(doc, "changed", u->changed, 0))) {
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}

/* The user by name, with a sentence when there is none. */
static int user_get(tg_keyring *kr, const char *name, tg_store_user *out, tg_err *err)
{
    int rc = tg_store_user_by_name(kr->st, name ? name : "", out, err);
    if (rc == TG_E_NOTFOUND)
        return tg_err_fset(err, TG_E_NOTFOUND, "name", "no user is named '%s'", name ? name : "");
    return rc;
}

/* Refuses to take the Administrator role from u (delete, demote, disable) when u is the
 * last enabled one. */
static int last_admin(tg_keyring *kr, const tg_store_user *u, const char *what, tg_err *err)
{
    if (strcmp(u->role, role_names[TG_ROLE_ADMIN]) != 0 || u->disabled) return 0;
    long long n = tg_store_user_count(kr->st, role_names[TG_ROLE_ADMIN]);
    if (n < 0) return tg_err_set(err, TG_E_STORE, "cannot count the administrators");
    if (n > 1) return 0;
    return tg_err_fset(err, TG_E_CONFLICT, "name",
                       "'%s' is the last Administrator and cannot be %s: make another user an "
                       "Administrator first",
                       u->name, what);
}

static int doc_out(tg_keyring *kr, int64_t id, json_t **out, tg_err *err)
{
    if (out == NULL) return 0;
    tg_store_user u;
    int rc = tg_store_user_get(kr->st, id, &u, err);
    if (rc != 0) return rc;
    *out = user_doc(&u);
    tg_store_user_clear(&u);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

/* ---- users ---- */

int tg_keyring_user_add(tg_keyring *kr, const char *name, tg_role role, const unsigned char *pw,
                        size_t pwlen, json_t **out, tg_err *err)
{
    if (out) *out = NULL;
    char hash[TG_PWHASH_MAX];
    int rc = name_check(name, err);
    if (rc == 0 && tg_role_name(role) == NULL)
        rc = tg_err_fset(err, TG_E_INVALID, "role", "unknown role");
    if (rc == 0) rc = pw_check(pw, pwlen, err);
    if (rc == 0) rc = tg_pwhash(pw, pwlen, hash, sizeof(hash), err);
    if (rc != 0) return rc;
    if ((rc = tg_store_begin(kr->st, err)) != 0) return rc;
    tg_store_user have;
    if (tg_store_user_by_name(kr->st, name, &have, NULL) == 0) {
        rc = tg_err_fset(err, TG_E_CONFLICT, "name",
                         "a user named '%s' exists already (names are alike without regard to "
                         "case)",
                         have.name);
        tg_store_user_clear(&have);
    }
    tg_store_user u = {.name = (char *)name, .password = hash};
    snprintf(u.role, sizeof(u.role), "%s", role_names[(unsigned)role % TG_ROLES]);
    if (rc == 0) rc = tg_store_user_add(kr->st, &u, err);
    if (rc == 0) rc = doc_out(kr, u.id, out, err);
    tg_wipe(hash, sizeof(hash));
    rc = kr_finish(kr, rc, err);
    if (rc != 0 && out && *out) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int tg_keyring_user_passwd(tg_keyring *kr, const char *name, const unsigned char *pw, size_t pwlen,
                           tg_err *err)
{
    char hash[TG_PWHASH_MAX];
    tg_store_user u = {0};
    /* the user first (a cheap refusal), the hash outside the transaction */
    int rc = user_get(kr, name, &u, err);
    tg_store_user_clear(&u);
    if (rc == 0) rc = pw_check(pw, pwlen, err);
    if (rc == 0) rc = tg_pwhash(pw, pwlen, hash, sizeof(hash), err);
    if (rc != 0) return rc;
    if ((rc = tg_store_begin(kr->st, err)) == 0 && (rc = user_get(kr, name, &u, err)) == 0) {
        tg_free_secret(u.password, strlen(u.password));
        u.password = hash;
        u.must_change = 0;
        rc = tg_store_user_update(kr->st, &u, err);
        u.password = NULL;
        tg_store_user_clear(&u);
    }
    tg_wipe(hash, sizeof(hash));
    return kr_finish(kr, rc, err);
}

int tg_keyring_user_delete(tg_keyring *kr, const char *name, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_user u = {0};
    if ((rc = user_get(kr, name, &u, err)) == 0 && (rc = last_admin(kr, &u, "deleted", err)) == 0)
        rc = tg_store_user_delete(kr->st, u.id, err);
    tg_store_user_clear(&u);
    return kr_finish(kr, rc, err);
}

int tg_keyring_user_set_role(tg_keyring *kr, const char *name, tg_role role, json_t **out,
                             tg_err *err)
{
    if (out) *out = NULL;
    if (tg_role_name(role) == NULL) return tg_err_fset(err, TG_E_INVALID, "role", "unknown role");
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_user u = {0};
    if ((rc = user_get(kr, name, &u, err)) == 0 && strcmp(u.role, tg_role_name(role)) != 0) {
        if (role != TG_ROLE_ADMIN) rc = last_admin(kr, &u, "given another role", err);
        snprintf(u.role, sizeof(u.role), "%s", role_names[(unsigned)role % TG_ROLES]);
        if (rc == 0) rc = tg_store_user_update(kr->st, &u, err);
    }
    if (rc == 0) rc = doc_out(kr, u.id, out, err);
    tg_store_user_clear(&u);
    return kr_finish(kr, rc, err);
}

int tg_keyring_user_set_disabled(tg_keyring *kr, const char *name, int disabled, json_t **out,
                                 tg_err *err)
{
    if (out) *out = NULL;
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_user u = {0};
    if ((rc = user_get(kr, name, &u, err)) == 0 && u.disabled != (disabled != 0)) {
        if (disabled) rc = last_admin(kr, &u, "disabled", err);
        u.disabled = disabled != 0;
        if (rc == 0) rc = tg_store_user_update(kr->st, &u, err);
    }
    if (rc == 0) rc = doc_out(kr, u.id, out, err);
    tg_store_user_clear(&u);
    return kr_finish(kr, rc, err);
}

typedef struct listctx {
    json_t *rows;
    int failed;
} listctx;

static int user_row(const tg_store_user *u, void *arg)
{
    listctx *l = arg;
    l->failed = json_array_append_new(l->rows, user_doc(u)) != 0;
    return l->failed;
}

int tg_keyring_user_list(tg_keyring *kr, json_t **out, tg_err *err)
{
    listctx l = {json_array(), 0};
    if (l.rows == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = tg_store_user_each(kr->st, user_row, &l, err);
    if (rc == 0 && l.failed) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc != 0) {
        json_decref(l.rows);
        return rc;
    }
    *out = l.rows;
    return 0;
}

int tg_keyring_user_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err)
{
    tg_store_user u;
    int rc = user_get(kr, name, &u, err);
    if (rc != 0) return rc;
    *out = user_doc(&u);
    tg_store_user_clear(&u);
    return *out ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
}

int tg_keyring_first_admin(tg_keyring *kr, char **password, tg_err *err)
{
    *password = NULL;
    char *pw = tg_secure_alloc(32), hash[TG_PWHASH_MAX];
    if (pw == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) {
        tg_secure_free(pw, 32);
        return rc;
    }
    long long n = tg_store_user_count(kr->st, NULL);
    if (n < 0) rc = tg_err_set(err, TG_E_STORE, "cannot count the users");
    if (rc == 0 && n == 0) {
        tg_store_user u = {.name = TG_FIRST_ADMIN, .password = hash, .must_change = 1};
        snprintf(u.role, sizeof(u.role), "%s", role_names[TG_ROLE_ADMIN]);
        if ((rc = tg_password_new(pw, 32, err)) == 0 &&
            (rc = tg_pwhash((unsigned char *)pw, strlen(pw), hash, sizeof(hash), err)) == 0)
            rc = tg_store_user_add(kr->st, &u, err);
        tg_wipe(hash, sizeof(hash));
    }
    rc = kr_finish(kr, rc, err);
    if (rc == 0 && n == 0) {
        size_t len = strlen(pw);
        *password = malloc(len + 1);
        if (*password == NULL)
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        else
            memcpy(*password, pw, len + 1);
    }
    tg_secure_free(pw, 32);
    return rc;
}

static int login_refused(tg_err *err)
{
    return tg_err_fset(err, TG_E_PASSWORD, "password", "wrong user name or password");
}

int tg_keyring_login(tg_keyring *kr, const char *user, const unsigned char *pw, size_t pwlen,
                     tg_principal *who, tg_err *err)
{
    memset(who, 0, sizeof(*who));
    tg_store_user u = {0};
    int rc = user && *user && strlen(user) <= TG_USER_NAME_MAX
                 ? tg_store_user_by_name(kr->st, user, &u, err)
                 : TG_E_NOTFOUND;
    if (rc != 0 && rc != TG_E_NOTFOUND) return rc;
    if (pwlen > TG_PASS_MAX - 1) pwlen = TG_PASS_MAX - 1; /* bounded work, then refused */
    tg_err why = {0};
    int v = tg_pwhash_verify(rc == 0 ? u.password : NULL, pw, pwlen, &why);
    tg_role role = TG_ROLE_AUDITOR;
    if (v == 0 && !u.disabled && role_of(u.role, &role) == 0) {
        snprintf(who->name, sizeof(who->name), "%s", u.name);
        who->role = role;
        who->must_change = u.must_change;
        who->group_id = u.group_id;
        rc = 0;
    } else if (v == TG_E_STORE || v == TG_E_INTERNAL) {
        rc = tg_err_set(err, v, "%s", why.msg);
    } else {
        rc = login_refused(err);
    }
    tg_store_user_clear(&u);
    return rc;
}

/* ---- tokens ---- */

static int label_check(const char *label, tg_err *err)
{
    char why[160];
    if (kr_text_problem(label, why, sizeof(why)) != NULL)
        return tg_err_fset(err, TG_E_INVALID, "label", "the token's label %s", why);
    if (strlen(label) > TG_TOKEN_LABEL_MAX)
        return tg_err_fset(err, TG_E_INVALID, "label",
                           "the token's label is too long (the limit is %d bytes)",
                           TG_TOKEN_LABEL_MAX);
    return 0;
}

static json_t *token_doc(const tg_store_token *t, long long now)
{
    json_t *doc = json_pack("{s:I, s:o}", "id", (json_int_t)t->id, "label", kr_json_opt(t->label));
    if (doc != NULL &&
        (set_time(doc, "created", t->created, 0) || set_time(doc, "last_used", t->last_used, 1) ||
         set_time(doc, "expires", t->expires, 1) ||
         json_object_set_new(doc, "expired", json_boolean(t->expires > 0 && now >= t->expires)))) {
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}

int tg_keyring_token_create(tg_keyring *kr, const char *user, const char *label, int days,
                            char **token, json_t **out, tg_err *err)
{
    *token = NULL;
    if (out) *out = NULL;
    if (label == NULL) label = "";
    int rc = label_check(label, err);
    if (rc == 0 && (days < 0 || days > TG_DAYS_MAX))
        rc = tg_err_fset(err, TG_E_INVALID, "days",
                         "a token's days must be 0 (it never expires) to %d", TG_DAYS_MAX);
    if (rc != 0 || (rc = tg_store_begin(kr->st, err)) != 0) return rc;
    tg_store_user u = {0};
    char text[TG_TOKEN_LEN + 1];
    tg_store_token t = {.label = (char *)label};
    if ((rc = user_get(kr, user, &u, err)) == 0 && u.ntokens >= TG_TOKENS_MAX)
        rc = tg_err_fset(err, TG_E_CONFLICT, "name",
                         "'%s' has %d tokens, the most a user may have; revoke one first", u.name,
                         TG_TOKENS_MAX);
    if (rc == 0) rc = tg_token_new(text, t.sha256, err);
    if (rc == 0) {
        t.user_id = u.id;
        t.expires = days > 0 ? (long long)time(NULL) + (long long)days * 86400 : 0;
        rc = tg_store_token_add(kr->st, &t, err);
    }
    if (rc == 0 && out && (*out = token_doc(&t, t.created)) == NULL)
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    tg_store_user_clear(&u);
    if ((rc = kr_finish(kr, rc, err)) == 0) {
        *token = malloc(sizeof(text));
        if (*token != NULL)
            memcpy(*token, text, sizeof(text));
        else
            rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    tg_wipe(text, sizeof(text));
    if (rc != 0 && out && *out) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int tg_keyring_principal(tg_keyring *kr, const char *name, tg_principal *who, tg_err *err)
{
    memset(who, 0, sizeof(*who));
    tg_store_user u = {0};
    tg_role role;
    int rc = tg_store_user_by_name(kr->st, name ? name : "", &u, NULL);
    if (rc == TG_E_STORE || rc == TG_E_INTERNAL)
        rc = tg_err_set(err, rc, "the store cannot be read");
    else if (rc != 0 || u.disabled || role_of(u.role, &role) != 0)
        rc = tg_err_set(err, TG_E_PASSWORD, "the session has ended: log in again");
    else {
        snprintf(who->name, sizeof(who->name), "%s", u.name);
        who->role = role;
        who->must_change = u.must_change;
        who->group_id = u.group_id;
    }
    tg_store_user_clear(&u);
    return rc;
}

static int token_refused(tg_err *err)
{
    return tg_err_fset(err, TG_E_PASSWORD, "token", "the token is not valid");
}

int tg_keyring_token_check(tg_keyring *kr, const char *token, tg_principal *who, tg_err *err)
{
    memset(who, 0, sizeof(*who));
    size_t n = token ? strlen(token) : 0;
    size_t plen = strlen(TG_TOKEN_PREFIX);
    if (n != TG_TOKEN_LEN || strncmp(token, TG_TOKEN_PREFIX, plen) != 0) return token_refused(err);
    unsigned char h[32];
    tg_store_token t = {0};
    tg_store_user u = {0};
    int rc = tg_sha256(token, n, h, err);
    if (rc == 0) rc = tg_store_token_by_hash(kr->st, h, &t, err);
    if (rc == TG_E_NOTFOUND) return token_refused(err);
    if (rc != 0) return rc;
    long long now = (long long)time(NULL);
    tg_role role;
    if (!tg_ct_equal(t.sha256, h, 32) || (t.expires > 0 && now >= t.expires) ||
        tg_store_user_get(kr->st, t.user_id, &u, NULL) != 0 || u.disabled ||
        role_of(u.role, &role) != 0) {
        rc = token_refused(err);
    } else {
        snprintf(who->name, sizeof(who->name), "%s", u.name);
        who->role = role;
        who->must_change = u.must_change;
        who->token_id = t.id;
        who->group_id = u.group_id;
        /* at most one write a minute per token, not one per request; a failure to record
         * the use does not refuse the token */
        if (now - t.last_used >= TG_TOKEN_TOUCH && tg_store_begin(kr->st, NULL) == 0) {
            tg_err ignored = {0};
            kr_finish(kr, tg_store_token_touch(kr->st, t.id, now, &ignored), &ignored);
        }
    }
    tg_store_token_clear(&t);
    tg_store_user_clear(&u);
    return rc;
}

typedef struct tokctx {
    json_t *rows;
    long long now;
    int failed;
} tokctx;

static int token_row(const tg_store_token *t, void *arg)
{
    tokctx *l = arg;
    l->failed = json_array_append_new(l->rows, token_doc(t, l->now)) != 0;
    return l->failed;
}

int tg_keyring_token_list(tg_keyring *kr, const char *user, json_t **out, tg_err *err)
{
    tg_store_user u;
    int rc = user_get(kr, user, &u, err);
    if (rc != 0) return rc;
    tokctx l = {json_array(), (long long)time(NULL), 0};
    if (l.rows == NULL) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0) rc = tg_store_token_each(kr->st, u.id, token_row, &l, err);
    if (rc == 0 && l.failed) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    tg_store_user_clear(&u);
    if (rc != 0) {
        json_decref(l.rows);
        return rc;
    }
    *out = l.rows;
    return 0;
}

int tg_keyring_token_revoke(tg_keyring *kr, const char *user, int64_t id, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_user u = {0};
    if ((rc = user_get(kr, user, &u, err)) == 0 &&
        (rc = tg_store_token_delete(kr->st, u.id, id, err)) == TG_E_NOTFOUND)
        rc = tg_err_fset(err, TG_E_NOTFOUND, "id", "'%s' has no token with id %lld", u.name,
                         (long long)id);
    tg_store_user_clear(&u);
    return kr_finish(kr, rc, err);
}

/* ---- groups ---- */

static int group_get(tg_keyring *kr, const char *name, tg_store_group *out, tg_err *err)
{
    int rc = tg_store_group_by_name(kr->st, name ? name : "", out, err);
    if (rc == TG_E_NOTFOUND)
        return tg_err_fset(err, TG_E_NOTFOUND, "group", "no group is named '%s'", name ? name : "");
    return rc;
}

static int kind_check(const char *kind, tg_err *err)
{
    if (kind && (strcmp(kind, "proxy") == 0 || strcmp(kind, "policy") == 0)) return 0;
    return tg_err_fset(err, TG_E_INVALID, "kind", "a group denies a 'proxy' or a 'policy'");
}

typedef struct groupctx {
    json_t *proxies, *policies, *users;
    int failed;
} groupctx;

static int denied_row(const char *kind, const char *name, void *arg)
{
    groupctx *g = arg;
    json_t *list = strcmp(kind, "proxy") == 0 ? g->proxies : g->policies;
    g->failed = json_array_append_new(list, kr_json_text(name)) != 0;
    return g->failed;
}

static int member_row(const char *name, const char *unused, void *arg)
{
    (void)unused;
    groupctx *g = arg;
    g->failed = json_array_append_new(g->users, kr_json_text(name)) != 0;
    return g->failed;
}

static int group_doc(tg_keyring *kr, const tg_store_group *grp, json_t **out, tg_err *err)
{
    groupctx g = {json_array(), json_array(), json_array(), 0};
    json_t *doc = json_pack("{s:o, s:{s:O, s:O}, s:O}", "name", kr_json_text(grp->name), "denied",
                            "proxies", g.proxies, "policies", g.policies, "users", g.users);
    int rc = doc && g.proxies && g.policies && g.users && !set_time(doc, "created", grp->created, 0)
                 ? 0
                 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    if (rc == 0) rc = tg_store_group_denied_each(kr->st, grp->id, denied_row, &g, err);
    if (rc == 0) rc = tg_store_group_users_each(kr->st, grp->id, member_row, &g, err);
    if (rc == 0 && g.failed) rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
    json_decref(g.proxies);
    json_decref(g.policies);
    json_decref(g.users);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

int tg_keyring_group_create(tg_keyring *kr, const char *name, json_t **out, tg_err *err)
{
    if (out) *out = NULL;
    int rc = tg_keyring_name_check(name, err);
    if (rc != 0) return rc;
    if ((rc = tg_store_begin(kr->st, err)) != 0) return rc;
    tg_store_group have;
    if (tg_store_group_by_name(kr->st, name, &have, NULL) == 0) {
        rc = tg_err_fset(err, TG_E_CONFLICT, "name",
                         "a group named '%s' exists already (names are alike without regard to "
                         "case)",
                         have.name);
        tg_store_group_clear(&have);
    }
    tg_store_group g = {.name = (char *)name};
    if (rc == 0) rc = tg_store_group_add(kr->st, &g, err);
    if (rc == 0 && out) rc = group_doc(kr, &g, out, err);
    rc = kr_finish(kr, rc, err);
    if (rc != 0 && out && *out) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int tg_keyring_group_delete(tg_keyring *kr, const char *name, tg_err *err)
{
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_group g = {0};
    if ((rc = group_get(kr, name, &g, err)) == 0) rc = tg_store_group_delete(kr->st, g.id, err);
    tg_store_group_clear(&g);
    return kr_finish(kr, rc, err);
}

typedef struct glistctx {
    tg_keyring *kr;
    json_t *rows;
    tg_err *err;
    int rc;
} glistctx;

static int group_row(const tg_store_group *g, void *arg)
{
    glistctx *l = arg;
    json_t *doc = NULL;
    l->rc = group_doc(l->kr, g, &doc, l->err);
    if (l->rc == 0 && json_array_append_new(l->rows, doc) != 0)
        l->rc = tg_err_set(l->err, TG_E_INTERNAL, "out of memory");
    return l->rc != 0;
}

int tg_keyring_group_list(tg_keyring *kr, json_t **out, tg_err *err)
{
    glistctx l = {kr, json_array(), err, 0};
    if (l.rows == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int rc = tg_store_group_each(kr->st, group_row, &l, err);
    if (rc == 0) rc = l.rc;
    if (rc != 0) {
        json_decref(l.rows);
        return rc;
    }
    *out = l.rows;
    return 0;
}

int tg_keyring_group_show(tg_keyring *kr, const char *name, json_t **out, tg_err *err)
{
    tg_store_group g;
    int rc = group_get(kr, name, &g, err);
    if (rc != 0) return rc;
    rc = group_doc(kr, &g, out, err);
    tg_store_group_clear(&g);
    return rc;
}

int tg_keyring_group_deny(tg_keyring *kr, const char *group, const char *kind, const char *name,
                          int deny, json_t **out, tg_err *err)
{
    if (out) *out = NULL;
    int rc = kind_check(kind, err);
    if (rc == 0 && (rc = tg_keyring_name_check(name, err)) != 0 && err)
        snprintf(err->field, sizeof(err->field), "%s", kind);
    if (rc != 0) return rc;
    if ((rc = tg_store_begin(kr->st, err)) != 0) return rc;
    tg_store_group g = {0};
    if ((rc = group_get(kr, group, &g, err)) == 0)
        rc = tg_store_group_deny(kr->st, g.id, kind, name, deny != 0, err);
    if (rc == 0 && out) rc = group_doc(kr, &g, out, err);
    tg_store_group_clear(&g);
    rc = kr_finish(kr, rc, err);
    if (rc != 0 && out && *out) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int tg_keyring_user_set_group(tg_keyring *kr, const char *user, const char *group, json_t **out,
                              tg_err *err)
{
    if (out) *out = NULL;
    int rc = tg_store_begin(kr->st, err);
    if (rc != 0) return rc;
    tg_store_user u = {0};
    tg_store_group g = {0};
    rc = user_get(kr, user, &u, err);
    if (rc == 0 && group != NULL) rc = group_get(kr, group, &g, err);
    if (rc == 0 && u.group_id != g.id) rc = tg_store_user_set_group(kr->st, u.id, g.id, err);
    if (rc == 0) rc = doc_out(kr, u.id, out, err);
    tg_store_user_clear(&u);
    tg_store_group_clear(&g);
    rc = kr_finish(kr, rc, err);
    if (rc != 0 && out && *out) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int tg_keyring_may_change(tg_keyring *kr, const tg_principal *who, const char *kind,
                          const char *name, tg_err *err)
{
    if (who == NULL || who->group_id == 0 || name == NULL) return 0;
    int rc = kind_check(kind, err);
    if (rc != 0) return rc;
    int d = tg_store_group_denies(kr->st, who->group_id, kind, name, err);
    if (d < 0) return -d;
    if (d == 0) return 0;
    tg_store_group g = {0};
    rc = tg_store_group_get(kr->st, who->group_id, &g, NULL);
    rc = tg_err_fset(err, TG_E_CONFLICT, "name",
                     "the group %s of user %s may not change the %s '%s'", rc == 0 ? g.name : "?",
                     who->name, kind, name);
    tg_store_group_clear(&g);
    return rc;
}
