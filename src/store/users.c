/*
 * users.c — the appliance's users, their API tokens and the audit log (schema 7): rows of
 * text and bytes the keyring has already checked.
 *
 * Invariants: a user's name is unique without regard to ASCII case (COLLATE NOCASE), its
 * role one of the keyring's four canonical names (a CHECK); the password column holds the
 * keyring's hash string, never a password. A token is stored only as the SHA-256 of its
 * text and goes with its user (ON DELETE CASCADE). Audit rows are only appended, and
 * pruned from the oldest end to a count the keyring gives: ids only grow, so a reader
 * pages through them stably.
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void tg_store_user_clear(tg_store_user *u)
{
    free(u->name);
    free(u->group);
    if (u->password != NULL) tg_free_secret(u->password, strlen(u->password));
    memset(u, 0, sizeof(*u));
}

#define USER_COLS                                                                                  \
    "id, name, role, password, must_change, disabled, created, changed,"                           \
    " (SELECT count(*) FROM tokens WHERE user_id = users.id), group_id,"                           \
    " (SELECT name FROM groups WHERE id = users.group_id) FROM users"

static int user_from_row(sqlite3_stmt *s, tg_store_user *u)
{
    memset(u, 0, sizeof(*u));
    u->id = sqlite3_column_int64(s, 0);
    u->name = tg_strdup((const char *)sqlite3_column_text(s, 1));
    const char *role = (const char *)sqlite3_column_text(s, 2);
    size_t n = role ? strlen(role) : 0;
    if (n >= sizeof(u->role)) n = sizeof(u->role) - 1;
    if (n) memcpy(u->role, role, n);
    u->password = tg_strdup((const char *)sqlite3_column_text(s, 3));
    u->must_change = sqlite3_column_int(s, 4);
    u->disabled = sqlite3_column_int(s, 5);
    u->created = sqlite3_column_int64(s, 6);
    u->changed = sqlite3_column_int64(s, 7);
    u->ntokens = sqlite3_column_int64(s, 8);
    u->group_id = sqlite3_column_int64(s, 9); /* NULL reads as 0 */
    const char *group = (const char *)sqlite3_column_text(s, 10);
    if (group != NULL && (u->group = tg_strdup(group)) == NULL) u->name = NULL;
    if (u->name == NULL || u->password == NULL) {
        tg_store_user_clear(u);
        return TG_E_INTERNAL;
    }
    return 0;
}

static int user_one(tg_store *st, sqlite3_stmt *s, tg_store_user *out, tg_err *err)
{
    if (s == NULL) return TG_E_STORE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        rc = user_from_row(s, out) == 0 ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    else if (rc == SQLITE_DONE)
        rc = TG_E_NOTFOUND;
    else
        rc = tg_db_err(st, err, "reading a user");
    tg_db_release(st, s);
    return rc;
}

int tg_store_user_add(tg_store *st, tg_store_user *u, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "INSERT INTO users(name,role,password,must_change,disabled,"
                                 "created,changed) VALUES(?,?,?,?,?,?,?)",
                                 err);
    if (s == NULL) return TG_E_STORE;
    u->created = u->changed = (long long)time(NULL);
    sqlite3_bind_text(s, 1, u->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, u->role, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, u->password, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, u->must_change != 0);
    sqlite3_bind_int(s, 5, u->disabled != 0);
    sqlite3_bind_int64(s, 6, u->created);
    sqlite3_bind_int64(s, 7, u->changed);
    int rc = tg_db_done(st, s, err, "storing a user");
    if (rc == 0) u->id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int tg_store_user_update(tg_store *st, tg_store_user *u, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "UPDATE users SET role=?, password=?, must_change=?, disabled=?,"
                                 " changed=? WHERE id=?",
                                 err);
    if (s == NULL) return TG_E_STORE;
    u->changed = (long long)time(NULL);
    sqlite3_bind_text(s, 1, u->role, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, u->password, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, u->must_change != 0);
    sqlite3_bind_int(s, 4, u->disabled != 0);
    sqlite3_bind_int64(s, 5, u->changed);
    sqlite3_bind_int64(s, 6, u->id);
    return tg_db_done(st, s, err, "changing a user");
}

int tg_store_user_by_name(tg_store *st, const char *name, tg_store_user *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " USER_COLS " WHERE name=?", err);
    if (s) sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    return user_one(st, s, out, err);
}

int tg_store_user_get(tg_store *st, int64_t id, tg_store_user *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " USER_COLS " WHERE id=?", err);
    if (s) sqlite3_bind_int64(s, 1, id);
    return user_one(st, s, out, err);
}

int tg_store_user_delete(tg_store *st, int64_t id, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM users WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    return tg_db_done(st, s, err, "deleting a user");
}

typedef struct user_iter {
    tg_store_user_fn fn;
    void *arg;
} user_iter;

static int user_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    user_iter *it = arg;
    tg_store_user u;
    if (user_from_row(s, &u) != 0) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int stop = it->fn(&u, it->arg) != 0;
    tg_store_user_clear(&u);
    return stop;
}

int tg_store_user_each(tg_store *st, tg_store_user_fn fn, void *arg, tg_err *err)
{
    user_iter it = {fn, arg};
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " USER_COLS " ORDER BY name", err);
    return tg_db_each(st, s, user_row, &it, err, "listing users");
}

long long tg_store_user_count(tg_store *st, const char *role)
{
    sqlite3_stmt *s =
        role ? tg_db_prep(st, "SELECT count(*) FROM users WHERE role=? AND disabled=0", NULL)
             : tg_db_prep(st, "SELECT count(*) FROM users", NULL);
    if (s == NULL) return -1;
    if (role) sqlite3_bind_text(s, 1, role, -1, SQLITE_STATIC);
    long long n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    tg_db_release(st, s);
    return n;
}

int tg_store_user_set_group(tg_store *st, int64_t id, int64_t gid, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "UPDATE users SET group_id=?, changed=? WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    if (gid > 0)
        sqlite3_bind_int64(s, 1, gid);
    else
        sqlite3_bind_null(s, 1);
    sqlite3_bind_int64(s, 2, (long long)time(NULL));
    sqlite3_bind_int64(s, 3, id);
    return tg_db_done(st, s, err, "changing a user's group");
}

/* ---- groups ---- */

void tg_store_group_clear(tg_store_group *g)
{
    free(g->name);
    memset(g, 0, sizeof(*g));
}

static int group_one(tg_store *st, sqlite3_stmt *s, tg_store_group *out, tg_err *err)
{
    if (s == NULL) return TG_E_STORE;
    memset(out, 0, sizeof(*out));
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->id = sqlite3_column_int64(s, 0);
        out->name = tg_strdup((const char *)sqlite3_column_text(s, 1));
        out->created = sqlite3_column_int64(s, 2);
        rc = out->name ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    } else if (rc == SQLITE_DONE) {
        rc = TG_E_NOTFOUND;
    } else {
        rc = tg_db_err(st, err, "reading a group");
    }
    tg_db_release(st, s);
    return rc;
}

int tg_store_group_add(tg_store *st, tg_store_group *g, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "INSERT INTO groups(name,created) VALUES(?,?)", err);
    if (s == NULL) return TG_E_STORE;
    g->created = (long long)time(NULL);
    sqlite3_bind_text(s, 1, g->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, g->created);
    int rc = tg_db_done(st, s, err, "storing a group");
    if (rc == 0) g->id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int tg_store_group_by_name(tg_store *st, const char *name, tg_store_group *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT id, name, created FROM groups WHERE name=?", err);
    if (s) sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    return group_one(st, s, out, err);
}

int tg_store_group_get(tg_store *st, int64_t id, tg_store_group *out, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT id, name, created FROM groups WHERE id=?", err);
    if (s) sqlite3_bind_int64(s, 1, id);
    return group_one(st, s, out, err);
}

int tg_store_group_delete(tg_store *st, int64_t id, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM groups WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    return tg_db_done(st, s, err, "deleting a group");
}

typedef struct group_iter {
    tg_store_group_fn fn;
    void *arg;
} group_iter;

static int group_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    (void)err;
    group_iter *it = arg;
    tg_store_group g = {.id = sqlite3_column_int64(s, 0),
                        .name = (char *)sqlite3_column_text(s, 1),
                        .created = sqlite3_column_int64(s, 2)};
    return it->fn(&g, it->arg) != 0;
}

int tg_store_group_each(tg_store *st, tg_store_group_fn fn, void *arg, tg_err *err)
{
    group_iter it = {fn, arg};
    sqlite3_stmt *s = tg_db_prep(st, "SELECT id, name, created FROM groups ORDER BY name", err);
    return tg_db_each(st, s, group_row, &it, err, "listing groups");
}

int tg_store_group_deny(tg_store *st, int64_t gid, const char *kind, const char *name, int deny,
                        tg_err *err)
{
    sqlite3_stmt *s =
        tg_db_prep(st,
                   deny ? "INSERT OR IGNORE INTO group_denied(group_id,kind,name) VALUES(?,?,?)"
                        : "DELETE FROM group_denied WHERE group_id=? AND kind=? AND name=?",
                   err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, gid);
    sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
    return tg_db_done(st, s, err, "changing a group");
}

int tg_store_group_denies(tg_store *st, int64_t gid, const char *kind, const char *name,
                          tg_err *err)
{
    sqlite3_stmt *s =
        tg_db_prep(st, "SELECT 1 FROM group_denied WHERE group_id=? AND kind=? AND name=?", err);
    if (s == NULL) return -TG_E_STORE;
    sqlite3_bind_int64(s, 1, gid);
    sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int out = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -tg_db_err(st, err, "reading a group");
    tg_db_release(st, s);
    return out;
}

typedef struct pair_iter {
    tg_store_pair_fn fn;
    void *arg;
} pair_iter;

static int pair_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    (void)err;
    pair_iter *it = arg;
    return it->fn((const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
                  it->arg) != 0;
}

int tg_store_group_denied_each(tg_store *st, int64_t gid, tg_store_pair_fn fn, void *arg,
                               tg_err *err)
{
    pair_iter it = {fn, arg};
    sqlite3_stmt *s = tg_db_prep(
        st, "SELECT kind, name FROM group_denied WHERE group_id=? ORDER BY kind, name", err);
    if (s) sqlite3_bind_int64(s, 1, gid);
    return tg_db_each(st, s, pair_row, &it, err, "reading a group");
}

int tg_store_group_users_each(tg_store *st, int64_t gid, tg_store_pair_fn fn, void *arg,
                              tg_err *err)
{
    pair_iter it = {fn, arg};
    sqlite3_stmt *s =
        tg_db_prep(st, "SELECT name, NULL FROM users WHERE group_id=? ORDER BY name", err);
    if (s) sqlite3_bind_int64(s, 1, gid);
    return tg_db_each(st, s, pair_row, &it, err, "reading a group's users");
}

/* ---- tokens ---- */

void tg_store_token_clear(tg_store_token *t)
{
    free(t->label);
    memset(t, 0, sizeof(*t));
}

#define TOKEN_COLS "id, user_id, sha256, label, created, last_used, expires FROM tokens"

static int token_from_row(sqlite3_stmt *s, tg_store_token *t)
{
    memset(t, 0, sizeof(*t));
    t->id = sqlite3_column_int64(s, 0);
    t->user_id = sqlite3_column_int64(s, 1);
    if (sqlite3_column_bytes(s, 2) == 32) memcpy(t->sha256, sqlite3_column_blob(s, 2), 32);
    t->label = tg_strdup((const char *)sqlite3_column_text(s, 3));
    t->created = sqlite3_column_int64(s, 4);
    t->last_used = sqlite3_column_int64(s, 5); /* NULL reads as 0 */
    t->expires = sqlite3_column_int64(s, 6);
    return t->label ? 0 : TG_E_INTERNAL;
}

int tg_store_token_add(tg_store *st, tg_store_token *t, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "INSERT INTO tokens(user_id,sha256,label,created,last_used,"
                                 "expires) VALUES(?,?,?,?,NULL,?)",
                                 err);
    if (s == NULL) return TG_E_STORE;
    t->created = (long long)time(NULL);
    sqlite3_bind_int64(s, 1, t->user_id);
    sqlite3_bind_blob(s, 2, t->sha256, 32, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, t->label ? t->label : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, t->created);
    if (t->expires > 0)
        sqlite3_bind_int64(s, 5, t->expires);
    else
        sqlite3_bind_null(s, 5);
    int rc = tg_db_done(st, s, err, "storing a token");
    if (rc == 0) t->id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int tg_store_token_by_hash(tg_store *st, const unsigned char hash[32], tg_store_token *out,
                           tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " TOKEN_COLS " WHERE sha256=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        rc = token_from_row(s, out) == 0 ? 0 : tg_err_set(err, TG_E_INTERNAL, "out of memory");
    else if (rc == SQLITE_DONE)
        rc = TG_E_NOTFOUND;
    else
        rc = tg_db_err(st, err, "reading a token");
    tg_db_release(st, s);
    return rc;
}

int tg_store_token_touch(tg_store *st, int64_t id, long long when, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "UPDATE tokens SET last_used=? WHERE id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, when);
    sqlite3_bind_int64(s, 2, id);
    return tg_db_done(st, s, err, "recording a token's use");
}

int tg_store_token_delete(tg_store *st, int64_t user_id, int64_t id, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st, "DELETE FROM tokens WHERE id=? AND user_id=?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, user_id);
    int rc = tg_db_done(st, s, err, "revoking a token");
    return rc == 0 && sqlite3_changes(st->db) == 0 ? TG_E_NOTFOUND : rc;
}

typedef struct token_iter {
    tg_store_token_fn fn;
    void *arg;
} token_iter;

static int token_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    token_iter *it = arg;
    tg_store_token t;
    if (token_from_row(s, &t) != 0) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    int stop = it->fn(&t, it->arg) != 0;
    tg_store_token_clear(&t);
    return stop;
}

int tg_store_token_each(tg_store *st, int64_t user_id, tg_store_token_fn fn, void *arg, tg_err *err)
{
    token_iter it = {fn, arg};
    sqlite3_stmt *s = tg_db_prep(st, "SELECT " TOKEN_COLS " WHERE user_id=? ORDER BY id", err);
    if (s) sqlite3_bind_int64(s, 1, user_id);
    return tg_db_each(st, s, token_row, &it, err, "listing tokens");
}

long long tg_store_token_count(tg_store *st, int64_t user_id)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT count(*) FROM tokens WHERE user_id=?", NULL);
    if (s == NULL) return -1;
    sqlite3_bind_int64(s, 1, user_id);
    long long n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    tg_db_release(st, s);
    return n;
}

/* ---- the audit log ---- */

int tg_store_audit_add(tg_store *st, tg_store_audit *a, long long keep, tg_err *err)
{
    sqlite3_stmt *s = tg_db_prep(st,
                                 "INSERT INTO audit(time,actor,source,action,object,outcome,"
                                 "detail) VALUES(?,?,?,?,?,?,?)",
                                 err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, a->time);
    sqlite3_bind_text(s, 2, a->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, a->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, a->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, a->object, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, a->outcome, -1, SQLITE_STATIC);
    if (a->detail)
        sqlite3_bind_text(s, 7, a->detail, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 7);
    int rc = tg_db_done(st, s, err, "writing the audit log");
    if (rc != 0) return rc;
    a->id = sqlite3_last_insert_rowid(st->db);
    if (keep <= 0 || a->id <= keep) return 0;
    /* ids grow by one per row and only the oldest are ever deleted: one range delete */
    s = tg_db_prep(st, "DELETE FROM audit WHERE id <= ?", err);
    if (s == NULL) return TG_E_STORE;
    sqlite3_bind_int64(s, 1, a->id - keep);
    return tg_db_done(st, s, err, "pruning the audit log");
}

typedef struct audit_iter {
    tg_store_audit_fn fn;
    void *arg;
} audit_iter;

static int audit_row(sqlite3_stmt *s, void *arg, tg_err *err)
{
    (void)err;
    audit_iter *it = arg;
    tg_store_audit a = {
        .id = sqlite3_column_int64(s, 0),
        .time = sqlite3_column_int64(s, 1),
        .actor = (const char *)sqlite3_column_text(s, 2),
        .source = (const char *)sqlite3_column_text(s, 3),
        .action = (const char *)sqlite3_column_text(s, 4),
        .object = (const char *)sqlite3_column_text(s, 5),
        .outcome = (const char *)sqlite3_column_text(s, 6),
        .detail = (const char *)sqlite3_column_text(s, 7),
    };
    return it->fn(&a, it->arg) != 0;
}

int tg_store_audit_each(tg_store *st, long long since, long long limit, long long offset,
                        tg_store_audit_fn fn, void *arg, tg_err *err)
{
    audit_iter it = {fn, arg};
    sqlite3_stmt *s = tg_db_prep(st,
                                 "SELECT id, time, actor, source, action, object, outcome, detail"
                                 " FROM audit WHERE time >= ? ORDER BY id DESC LIMIT ? OFFSET ?",
                                 err);
    if (s) {
        sqlite3_bind_int64(s, 1, since);
        sqlite3_bind_int64(s, 2, limit);
        sqlite3_bind_int64(s, 3, offset);
    }
    return tg_db_each(st, s, audit_row, &it, err, "reading the audit log");
}

long long tg_store_audit_count(tg_store *st)
{
    sqlite3_stmt *s = tg_db_prep(st, "SELECT count(*) FROM audit", NULL);
    if (s == NULL) return -1;
    long long n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    tg_db_release(st, s);
    return n;
}
