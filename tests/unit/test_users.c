/*
 * test_users.c — users, roles, password hashes, login, tokens and the audit log (issue 10,
 * M3): the rules the keyring keeps for every face.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyring/keyring.h"
#include "store/store.h"

#include "scratch.h"

static int setup(void **state)
{
    (void)state;
    return scratch_setup("users");
}

static int teardown(void **state)
{
    (void)state;
    return scratch_teardown();
}

/* A keyring in a store of its own (tests in this group do not share one). */
static tg_keyring *open_kr(const char *tag, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, tag);
    tg_keyring *kr = NULL;
    assert_int_equal(tg_keyring_open(path, &kr, NULL), 0);
    return kr;
}

static void sql(const char *home_dir, const char *stmt)
{
    char db[400];
    snprintf(db, sizeof db, "%s/store.db", home_dir);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    assert_int_equal(sqlite3_exec(h, stmt, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
}

#define PW(s) (const unsigned char *)(s), strlen(s)

static void roles(void **state)
{
    (void)state;
    tg_role r;
    assert_int_equal(tg_role_parse("administrator", &r, NULL), 0);
    assert_int_equal(r, TG_ROLE_ADMIN);
    assert_int_equal(tg_role_parse("CERTIFICATE MANAGER", &r, NULL), 0);
    assert_int_equal(r, TG_ROLE_CERTS);
    assert_int_equal(tg_role_parse("inspection-manager", &r, NULL), 0);
    assert_int_equal(r, TG_ROLE_INSPECTION);
    assert_int_equal(tg_role_parse("Auditor", &r, NULL), 0);
    assert_int_equal(r, TG_ROLE_AUDITOR);
    tg_err e = {0};
    assert_int_equal(tg_role_parse("Admin", &r, &e), TG_E_INVALID);
    assert_string_equal(e.field, "role");
    assert_int_equal(tg_role_parse("Certificate  manager", &r, NULL), TG_E_INVALID);
    assert_int_equal(tg_role_parse("", &r, NULL), TG_E_INVALID);
    assert_int_equal(tg_role_parse(NULL, &r, NULL), TG_E_INVALID);
    assert_string_equal(tg_role_name(TG_ROLE_CERTS), "Certificate manager");
    assert_null(tg_role_name(TG_ROLES));
    /* the capability table of the README */
    static const int want[TG_ROLES][5] = {
        /* READ CERTS INSPECTION USERS AUDIT */
        {1, 1, 1, 1, 1}, /* Administrator */
        {1, 1, 0, 0, 0}, /* Certificate manager */
        {1, 0, 1, 0, 0}, /* Inspection manager */
        {1, 0, 0, 0, 1}, /* Auditor */
    };
    for (int role = 0; role < TG_ROLES; role++)
        for (int cap = TG_CAP_READ; cap <= TG_CAP_AUDIT; cap++)
            assert_int_equal(tg_role_allows((tg_role)role, (tg_cap)cap), want[role][cap]);
    assert_false(tg_role_allows(TG_ROLES, TG_CAP_READ));
}

static void hashing(void **state)
{
    (void)state;
    char h1[TG_PWHASH_MAX], h2[TG_PWHASH_MAX];
    assert_int_equal(tg_pwhash(PW("correct horse battery"), h1, sizeof h1, NULL), 0);
    assert_int_equal(tg_pwhash(PW("correct horse battery"), h2, sizeof h2, NULL), 0);
    assert_int_equal(strncmp(h1, "scrypt$32768$8$1$", 17), 0);
    assert_string_not_equal(h1, h2); /* a new salt each time */
    unsigned long long n;
    unsigned r, p;
    assert_int_equal(tg_pwhash_params(h1, &n, &r, &p), 0);
    assert_true(n == 32768 && r == 8 && p == 1);
    assert_int_equal(tg_pwhash_verify(h1, PW("correct horse battery"), NULL), 0);
    assert_int_equal(tg_pwhash_verify(h1, PW("correct horse batterY"), NULL), TG_E_PASSWORD);
    assert_int_equal(tg_pwhash_verify(h1, PW(""), NULL), TG_E_PASSWORD);
    assert_int_equal(tg_pwhash_verify(NULL, PW("correct horse battery"), NULL), TG_E_PASSWORD);
    /* damaged or hostile rows are not obeyed */
    const char *bad[] = {
        "",
        "bcrypt$x",
        "scrypt$32768$8$1$AAAA$AAAA",
        "scrypt$1073741824$8$1$DliH0gT/MUYBCTwiAmnSJQ==$SG3lDl15XI8QgP/wgrEk85pojWuwLZk/"
        "R4yMnBO1TDc=",
        "scrypt$32769$8$1$DliH0gT/MUYBCTwiAmnSJQ==$SG3lDl15XI8QgP/wgrEk85pojWuwLZk/R4yMnBO1TDc=",
        "scrypt$32768$64$1$DliH0gT/MUYBCTwiAmnSJQ==$SG3lDl15XI8QgP/wgrEk85pojWuwLZk/R4yMnBO1TDc=",
        "scrypt$32768$8$1$DliH0gT/MUYBCTwiAmnSJQ==$SG3lDl15XI8QgP/wgrEk85pojWuwLZk/R4yMnBO1TD=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tg_pwhash_verify(bad[i], PW("x"), NULL), TG_E_STORE);

    char tok[TG_TOKEN_LEN + 1], tok2[TG_TOKEN_LEN + 1];
    unsigned char th[32], th2[32], again[32];
    assert_int_equal(tg_token_new(tok, th, NULL), 0);
    assert_int_equal(tg_token_new(tok2, th2, NULL), 0);
    assert_int_equal(strlen(tok), TG_TOKEN_LEN);
    assert_int_equal(strncmp(tok, "tg_", 3), 0);
    assert_null(strpbrk(tok + 3, "+/="));
    assert_string_not_equal(tok, tok2);
    assert_int_equal(tg_sha256(tok, strlen(tok), again, NULL), 0);
    assert_memory_equal(th, again, 32);
    assert_true(tg_ct_equal(th, again, 32));
    assert_false(tg_ct_equal(th, th2, 32));
    char pw[32];
    assert_int_equal(tg_password_new(pw, sizeof pw, NULL), 0);
    assert_int_equal(strlen(pw), 24);
}

static void users_and_login(void **state)
{
    (void)state;
    char h[400];
    tg_keyring *kr = open_kr("login", h, sizeof h);
    char *once = NULL;
    assert_int_equal(tg_keyring_first_admin(kr, &once, NULL), 0);
    assert_non_null(once);
    assert_int_equal(strlen(once), 24);
    tg_principal who;
    assert_int_equal(tg_keyring_login(kr, "admin", PW(once), &who, NULL), 0);
    assert_string_equal(who.name, "admin");
    assert_int_equal(who.role, TG_ROLE_ADMIN);
    assert_true(who.must_change);
    assert_int_equal(who.token_id, 0);
    char *again = NULL;
    assert_int_equal(tg_keyring_first_admin(kr, &again, NULL), 0); /* once only */
    assert_null(again);

    tg_err e = {0};
    json_t *doc = NULL;
    assert_int_equal(
        tg_keyring_user_add(kr, "alice", TG_ROLE_CERTS, PW("twelve chars"), &doc, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "role")), "Certificate manager");
    assert_false(json_is_true(json_object_get(doc, "must_change")));
    json_decref(doc);
    /* names: unique without regard to case; rules as elsewhere, and no ':' */
    assert_int_equal(
        tg_keyring_user_add(kr, "ALICE", TG_ROLE_AUDITOR, PW("twelve chars"), NULL, &e),
        TG_E_CONFLICT);
    assert_string_equal(e.field, "name");
    const char *badnames[] = {"",
                              " bob",
                              "bob ",
                              "cli:bob",
                              "bo\x01"
                              "b",
                              "b\xe2\x80\xaeob",
                              "\xff\xfe"};
    for (size_t i = 0; i < sizeof badnames / sizeof badnames[0]; i++)
        assert_int_equal(
            tg_keyring_user_add(kr, badnames[i], TG_ROLE_AUDITOR, PW("twelve chars"), NULL, NULL),
            TG_E_INVALID);
    char longname[TG_USER_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(
        tg_keyring_user_add(kr, longname, TG_ROLE_AUDITOR, PW("twelve chars"), NULL, NULL),
        TG_E_INVALID);
    longname[TG_USER_NAME_MAX] = '\0';
    assert_int_equal(
        tg_keyring_user_add(kr, longname, TG_ROLE_AUDITOR, PW("twelve chars"), NULL, NULL), 0);
    /* passwords: 12 characters (not bytes) */
    tg_err_clear(&e);
    assert_int_equal(tg_keyring_user_add(kr, "bob", TG_ROLE_AUDITOR, PW("eleven char"), NULL, &e),
                     TG_E_PASSWORD);
    assert_string_equal(e.field, "password");
    assert_int_equal(tg_keyring_user_add(kr, "bob", TG_ROLE_AUDITOR,
                                         PW("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                            "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"),
                                         NULL, NULL),
                     TG_E_PASSWORD);
    assert_int_equal(tg_keyring_user_add(kr, "bob", TG_ROLE_AUDITOR,
                                         PW("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                            "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"),
                                         NULL, NULL),
                     0);

    /* login: one sentence for every refusal */
    tg_err unknown = {0}, wrong = {0};
    assert_int_equal(tg_keyring_login(kr, "nobody", PW("twelve chars"), &who, &unknown),
                     TG_E_PASSWORD);
    assert_int_equal(tg_keyring_login(kr, "alice", PW("twelve charz"), &who, &wrong),
                     TG_E_PASSWORD);
    assert_string_equal(unknown.msg, wrong.msg);
    assert_int_equal(tg_keyring_login(kr, "Alice", PW("twelve chars"), &who, NULL), 0);
    assert_string_equal(who.name, "alice");
    assert_int_equal(who.role, TG_ROLE_CERTS);
    assert_false(who.must_change);
    /* an unknown user costs as much as a wrong password (same scrypt work: within 3x), in
     * this thread's CPU time, the least of three tries each: other processes on a loaded
     * machine stretch wall time, not the work */
    double a = 1e9, b = 1e9;
    for (int i = 0; i < 3; i++) {
        struct timespec t0, t1, t2;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
        tg_keyring_login(kr, "nobody", PW("twelve chars"), &who, NULL);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
        tg_keyring_login(kr, "alice", PW("twelve charz"), &who, NULL);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t2);
        double ai = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        double bi = (double)(t2.tv_sec - t1.tv_sec) + (double)(t2.tv_nsec - t1.tv_nsec) / 1e9;
        if (ai < a) a = ai;
        if (bi < b) b = bi;
    }
    assert_true(a > b / 3 && b > a / 3);

    /* passwd clears must_change; disabled users cannot log in */
    assert_int_equal(tg_keyring_user_passwd(kr, "admin", PW("a new admin password"), NULL), 0);
    assert_int_equal(tg_keyring_login(kr, "admin", PW(once), &who, NULL), TG_E_PASSWORD);
    assert_int_equal(tg_keyring_login(kr, "admin", PW("a new admin password"), &who, NULL), 0);
    assert_false(who.must_change);
    assert_int_equal(tg_keyring_user_passwd(kr, "nobody", PW("a new admin password"), NULL),
                     TG_E_NOTFOUND);
    assert_int_equal(tg_keyring_user_set_disabled(kr, "alice", 1, NULL, NULL), 0);
    tg_err_clear(&e);
    assert_int_equal(tg_keyring_login(kr, "alice", PW("twelve chars"), &who, &e), TG_E_PASSWORD);
    assert_string_equal(e.msg, wrong.msg);
    assert_int_equal(tg_keyring_user_set_disabled(kr, "alice", 0, NULL, NULL), 0);
    assert_int_equal(tg_keyring_login(kr, "alice", PW("twelve chars"), &who, NULL), 0);

    assert_int_equal(tg_keyring_user_list(kr, &doc, NULL), 0);
    assert_int_equal(json_array_size(doc), 4);
    char *text = json_dumps(doc, 0);
    assert_null(strstr(text, "scrypt")); /* never the hash */
    free(text);
    json_decref(doc);
    tg_free_secret(once, strlen(once));
    tg_keyring_close(kr);
}

static void last_admin(void **state)
{
    (void)state;
    char h[400];
    tg_keyring *kr = open_kr("admins", h, sizeof h);
    assert_int_equal(tg_keyring_user_add(kr, "root", TG_ROLE_ADMIN, PW("twelve chars"), NULL, NULL),
                     0);
    assert_int_equal(
        tg_keyring_user_add(kr, "carol", TG_ROLE_AUDITOR, PW("twelve chars"), NULL, NULL), 0);
    tg_err e = {0};
    assert_int_equal(tg_keyring_user_delete(kr, "root", &e), TG_E_CONFLICT);
    assert_non_null(strstr(e.msg, "last Administrator"));
    assert_int_equal(tg_keyring_user_set_role(kr, "root", TG_ROLE_AUDITOR, NULL, NULL),
                     TG_E_CONFLICT);
    assert_int_equal(tg_keyring_user_set_disabled(kr, "root", 1, NULL, NULL), TG_E_CONFLICT);
    /* the same role again is no change, and allowed */
    assert_int_equal(tg_keyring_user_set_role(kr, "root", TG_ROLE_ADMIN, NULL, NULL), 0);
    /* with a second Administrator, the first may go; then the second is the last */
    json_t *doc = NULL;
    assert_int_equal(tg_keyring_user_set_role(kr, "carol", TG_ROLE_ADMIN, &doc, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "role")), "Administrator");
    json_decref(doc);
    assert_int_equal(tg_keyring_user_set_role(kr, "root", TG_ROLE_INSPECTION, NULL, NULL), 0);
    assert_int_equal(tg_keyring_user_delete(kr, "carol", NULL), TG_E_CONFLICT);
    assert_int_equal(tg_keyring_user_delete(kr, "root", NULL), 0);
    assert_int_equal(tg_keyring_user_delete(kr, "root", NULL), TG_E_NOTFOUND);
    /* a disabled Administrator does not count */
    assert_int_equal(tg_keyring_user_add(kr, "dave", TG_ROLE_ADMIN, PW("twelve chars"), NULL, NULL),
                     0);
    assert_int_equal(tg_keyring_user_set_disabled(kr, "dave", 1, NULL, NULL), 0);
    assert_int_equal(tg_keyring_user_delete(kr, "carol", NULL), TG_E_CONFLICT);
    /* a factory reset removes every user */
    assert_int_equal(tg_keyring_factory_reset(kr, NULL), 0);
    assert_int_equal(tg_keyring_user_list(kr, &doc, NULL), 0);
    assert_int_equal(json_array_size(doc), 0);
    json_decref(doc);
    tg_keyring_close(kr);
}

static void tokens(void **state)
{
    (void)state;
    char h[400];
    tg_keyring *kr = open_kr("tokens", h, sizeof h);
    assert_int_equal(
        tg_keyring_user_add(kr, "erin", TG_ROLE_INSPECTION, PW("twelve chars"), NULL, NULL), 0);
    char *tok = NULL, *tok2 = NULL, *none = NULL;
    json_t *doc = NULL;
    tg_err e = {0};
    assert_int_equal(tg_keyring_token_create(kr, "erin", "ci", 0, &tok, &doc, NULL), 0);
    int64_t id = json_integer_value(json_object_get(doc, "id"));
    assert_true(json_is_null(json_object_get(doc, "expires")));
    assert_null(json_object_get(doc, "token"));
    json_decref(doc);
    assert_int_equal(tg_keyring_token_create(kr, "erin", NULL, 30, &tok2, NULL, NULL), 0);
    assert_int_equal(tg_keyring_token_create(kr, "erin", "x", -1, &none, NULL, &e), TG_E_INVALID);
    assert_string_equal(e.field, "days");
    assert_int_equal(tg_keyring_token_create(kr, "erin", "a\nb", 1, &none, NULL, NULL),
                     TG_E_INVALID);
    assert_int_equal(tg_keyring_token_create(kr, "nobody", "x", 1, &none, NULL, NULL),
                     TG_E_NOTFOUND);

    assert_null(none); /* nothing handed out on a refusal */
    tg_principal who;
    assert_int_equal(tg_keyring_token_check(kr, tok, &who, NULL), 0);
    assert_string_equal(who.name, "erin");
    assert_int_equal(who.role, TG_ROLE_INSPECTION);
    assert_int_equal(who.token_id, id);
    /* one sentence for every refusal */
    char forged[TG_TOKEN_LEN + 1];
    memcpy(forged, tok, sizeof forged);
    forged[10] = forged[10] == 'A' ? 'B' : 'A';
    tg_err a = {0}, b = {0}, c = {0};
    assert_int_equal(tg_keyring_token_check(kr, forged, &who, &a), TG_E_PASSWORD);
    assert_int_equal(tg_keyring_token_check(kr, "tg_short", &who, &b), TG_E_PASSWORD);
    assert_int_equal(tg_keyring_token_check(kr, NULL, &who, &c), TG_E_PASSWORD);
    assert_string_equal(a.msg, b.msg);
    assert_string_equal(a.msg, c.msg);
    assert_string_equal(who.name, "");

    /* last_used: written on first use, then not again within a minute */
    sql(h, "UPDATE tokens SET last_used = 1000");
    assert_int_equal(tg_keyring_token_check(kr, tok, &who, NULL), 0);
    assert_int_equal(tg_keyring_token_list(kr, "erin", &doc, NULL), 0);
    json_int_t used = json_integer_value(json_object_get(json_array_get(doc, 0), "last_used_unix"));
    assert_true(used > time(NULL) - 5);
    char *text = json_dumps(doc, 0);
    assert_null(strstr(text, tok + 3));
    free(text);
    json_decref(doc);
    sql(h, "UPDATE tokens SET last_used = strftime('%s','now') - 10");
    assert_int_equal(tg_keyring_token_check(kr, tok, &who, NULL), 0);
    assert_int_equal(tg_keyring_token_list(kr, "erin", &doc, NULL), 0);
    assert_true(json_integer_value(json_object_get(json_array_get(doc, 0), "last_used_unix")) <
                time(NULL) - 5);
    json_decref(doc);

    /* expired, disabled user, revoked */
    sql(h, "UPDATE tokens SET expires = 1000");
    assert_int_equal(tg_keyring_token_check(kr, tok, &who, NULL), TG_E_PASSWORD);
    assert_int_equal(tg_keyring_token_list(kr, "erin", &doc, NULL), 0);
    assert_true(json_is_true(json_object_get(json_array_get(doc, 0), "expired")));
    json_decref(doc);
    sql(h, "UPDATE tokens SET expires = NULL");
    assert_int_equal(tg_keyring_user_set_disabled(kr, "erin", 1, NULL, NULL), 0);
    assert_int_equal(tg_keyring_token_check(kr, tok, &who, NULL), TG_E_PASSWORD);
    assert_int_equal(tg_keyring_user_set_disabled(kr, "erin", 0, NULL, NULL), 0);
    assert_int_equal(tg_keyring_token_check(kr, tok, &who, NULL), 0);
    assert_int_equal(tg_keyring_token_revoke(kr, "erin", id + 100, NULL), TG_E_NOTFOUND);
    assert_int_equal(tg_keyring_token_revoke(kr, "erin", id, NULL), 0);
    assert_int_equal(tg_keyring_token_check(kr, tok, &who, NULL), TG_E_PASSWORD);
    assert_int_equal(tg_keyring_token_check(kr, tok2, &who, NULL), 0);
    /* tokens go with their user */
    assert_int_equal(tg_keyring_user_add(kr, "root", TG_ROLE_ADMIN, PW("twelve chars"), NULL, NULL),
                     0);
    assert_int_equal(tg_keyring_user_delete(kr, "erin", NULL), 0);
    assert_int_equal(tg_keyring_token_check(kr, tok2, &who, NULL), TG_E_PASSWORD);
    tg_free_secret(tok, strlen(tok));
    tg_free_secret(tok2, strlen(tok2));
    tg_keyring_close(kr);
}

static void audit(void **state)
{
    (void)state;
    char h[400];
    tg_keyring *kr = open_kr("audit", h, sizeof h);
    json_t *detail = json_pack("{s:s, s:s, s:{s:s, s:i}}", "password", "hunter2hunter2", "name",
                               "web", "inner", "token", "tg_x", "n", 3);
    tg_audit_entry e = {.time = 1700000000,
                        .actor = "alice",
                        .source = "api 127.0.0.1",
                        .action = "cert.create",
                        .object = "we\x1b[31mb",
                        .outcome = 0,
                        .detail = detail};
    assert_int_equal(tg_keyring_audit_add(kr, &e, NULL), 0);
    json_decref(detail);
    e.time = 0;
    e.outcome = TG_E_CONFLICT;
    e.detail = NULL;
    e.object = NULL;
    assert_int_equal(tg_keyring_audit_add(kr, &e, NULL), 0);
    char big[TG_AUDIT_DETAIL_MAX + 100];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    detail = json_pack("{s:s}", "blob", big);
    e.detail = detail;
    e.action = "cert.import";
    assert_int_equal(tg_keyring_audit_add(kr, &e, NULL), 0);
    json_decref(detail);
    e.actor = NULL;
    assert_int_equal(tg_keyring_audit_add(kr, &e, NULL), TG_E_INTERNAL);

    json_t *rows = NULL;
    assert_int_equal(tg_keyring_audit_list(kr, NULL, &rows, NULL), 0);
    assert_int_equal(json_array_size(rows), 3);
    json_t *newest = json_array_get(rows, 0), *oldest = json_array_get(rows, 2);
    assert_string_equal(json_string_value(json_object_get(newest, "action")), "cert.import");
    assert_true(json_is_integer(json_object_get(json_object_get(newest, "detail"), "truncated")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "outcome")),
                        "conflict");
    assert_string_equal(json_string_value(json_object_get(oldest, "time")), "2023-11-14T22:13:20Z");
    assert_int_equal(json_integer_value(json_object_get(oldest, "time_unix")), 1700000000);
    assert_string_equal(json_string_value(json_object_get(oldest, "outcome")), "ok");
    assert_null(strchr(json_string_value(json_object_get(oldest, "object")), '\x1b'));
    char *text = json_dumps(oldest, 0);
    assert_null(strstr(text, "hunter2"));
    assert_null(strstr(text, "tg_x"));
    assert_non_null(strstr(text, "\"n\": 3"));
    free(text);
    json_decref(rows);
    tg_audit_filter f = {.since = 1700000001};
    assert_int_equal(tg_keyring_audit_list(kr, &f, &rows, NULL), 0);
    assert_int_equal(json_array_size(rows), 2);
    json_decref(rows);
    f = (tg_audit_filter){.limit = 1, .offset = 2};
    assert_int_equal(tg_keyring_audit_list(kr, &f, &rows, NULL), 0);
    assert_int_equal(json_array_size(rows), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "time_unix")),
                     1700000000);
    json_decref(rows);
    tg_err err = {0};
    f = (tg_audit_filter){.limit = TG_AUDIT_KEEP + 1};
    assert_int_equal(tg_keyring_audit_list(kr, &f, &rows, &err), TG_E_INVALID);
    assert_string_equal(err.field, "limit");
    f = (tg_audit_filter){.limit = -1};
    assert_int_equal(tg_keyring_audit_list(kr, &f, &rows, NULL), TG_E_INVALID);

    /* the audit log survives a factory reset */
    assert_int_equal(tg_keyring_factory_reset(kr, NULL), 0);
    assert_int_equal(tg_keyring_audit_list(kr, NULL, &rows, NULL), 0);
    assert_int_equal(json_array_size(rows), 3);
    json_decref(rows);
    tg_keyring_close(kr);

    /* retention: the store keeps the newest `keep` rows */
    tg_store *st = NULL;
    assert_int_equal(tg_store_open(h, &st, NULL), 0);
    for (int i = 0; i < 12; i++) {
        tg_store_audit a = {
            .time = 1, .actor = "a", .source = "s", .action = "x", .object = "", .outcome = "ok"};
        assert_int_equal(tg_store_begin(st, NULL), 0);
        assert_int_equal(tg_store_audit_add(st, &a, 5, NULL), 0);
        assert_int_equal(tg_store_commit(st, NULL), 0);
    }
    assert_int_equal(tg_store_audit_count(st), 5);
    tg_store_close(st);
}

static void groups(void **state)
{
    (void)state;
    char h[400];
    tg_keyring *kr = open_kr("groups", h, sizeof h);
    tg_err e = {0};
    json_t *doc = NULL;
    assert_int_equal(
        tg_keyring_user_add(kr, "gus", TG_ROLE_INSPECTION, PW("twelve chars"), NULL, NULL), 0);
    assert_int_equal(tg_keyring_group_create(kr, "Branch", &doc, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "name")), "Branch");
    json_decref(doc);
    assert_int_equal(tg_keyring_group_create(kr, "branch", NULL, &e), TG_E_CONFLICT);
    assert_int_equal(tg_keyring_group_create(kr, "", NULL, NULL), TG_E_INVALID);
    assert_int_equal(tg_keyring_group_deny(kr, "branch", "proxy", "p1", 1, NULL, NULL), 0);
    assert_int_equal(tg_keyring_group_deny(kr, "branch", "policy", "pol", 1, NULL, NULL), 0);
    assert_int_equal(tg_keyring_group_deny(kr, "branch", "cert", "x", 1, NULL, &e), TG_E_INVALID);
    assert_int_equal(tg_keyring_group_deny(kr, "none", "proxy", "p1", 1, NULL, &e), TG_E_NOTFOUND);
    assert_int_equal(tg_keyring_group_deny(kr, "branch", "proxy", "a\nb", 1, NULL, &e),
                     TG_E_INVALID);
    assert_string_equal(e.field, "proxy");

    /* no group: unlimited */
    tg_principal who;
    assert_int_equal(tg_keyring_login(kr, "gus", PW("twelve chars"), &who, NULL), 0);
    assert_int_equal(who.group_id, 0);
    assert_int_equal(tg_keyring_may_change(kr, &who, "proxy", "p1", NULL), 0);
    assert_int_equal(tg_keyring_user_set_group(kr, "gus", "BRANCH", &doc, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(doc, "group")), "Branch");
    json_decref(doc);
    assert_int_equal(tg_keyring_principal(kr, "gus", &who, NULL), 0);
    assert_true(who.group_id > 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(tg_keyring_may_change(kr, &who, "proxy", "p1", &e), TG_E_CONFLICT);
    assert_string_equal(e.msg, "the group Branch of user gus may not change the proxy 'p1'");
    assert_string_equal(e.field, "name");
    assert_int_equal(tg_keyring_may_change(kr, &who, "proxy", "p2", NULL), 0);
    assert_int_equal(tg_keyring_may_change(kr, &who, "policy", "p1", NULL), 0);
    assert_int_equal(tg_keyring_may_change(kr, &who, "policy", "pol", NULL), TG_E_CONFLICT);
    char *tok = NULL;
    assert_int_equal(tg_keyring_token_create(kr, "gus", "t", 0, &tok, NULL, NULL), 0);
    assert_int_equal(tg_keyring_token_check(kr, tok, &who, NULL), 0);
    assert_true(who.group_id > 0);
    tg_free_secret(tok, strlen(tok));
    assert_int_equal(tg_keyring_group_deny(kr, "branch", "proxy", "p1", 0, &doc, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(json_object_get(doc, "denied"), "proxies")),
                     0);
    json_decref(doc);
    assert_int_equal(tg_keyring_may_change(kr, &who, "proxy", "p1", NULL), 0);
    /* deleting the group leaves the user in none */
    assert_int_equal(tg_keyring_group_delete(kr, "branch", NULL), 0);
    assert_int_equal(tg_keyring_user_show(kr, "gus", &doc, NULL), 0);
    assert_true(json_is_null(json_object_get(doc, "group")));
    json_decref(doc);
    assert_int_equal(tg_keyring_principal(kr, "gus", &who, NULL), 0);
    assert_int_equal(who.group_id, 0);
    assert_int_equal(tg_keyring_group_list(kr, &doc, NULL), 0);
    assert_int_equal(json_array_size(doc), 0);
    json_decref(doc);
    assert_int_equal(tg_keyring_group_delete(kr, "branch", NULL), TG_E_NOTFOUND);
    tg_keyring_close(kr);
}

static void times(void **state)
{
    (void)state;
    long long t;
    assert_int_equal(tg_keyring_time_parse("1700000000", "since", &t, NULL), 0);
    assert_int_equal(t, 1700000000);
    assert_int_equal(tg_keyring_time_parse("2023-11-14T22:13:20Z", "since", &t, NULL), 0);
    assert_int_equal(t, 1700000000);
    assert_int_equal(tg_keyring_time_parse("2023-11-14T23:13:20.5+01:00", "since", &t, NULL), 0);
    assert_int_equal(t, 1700000000);
    assert_int_equal(tg_keyring_time_parse("2023-11-14", "since", &t, NULL), 0);
    assert_int_equal(t, 1699920000);
    const char *bad[] = {"",
                         "yesterday",
                         "2023-02-30",
                         "2023-11-14T25:00:00Z",
                         "2023-11-14T22:13:20",
                         "2023-11-14T22:13:20Zjunk",
                         "1969-12-31",
                         "-5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tg_err e = {0};
        assert_int_equal(tg_keyring_time_parse(bad[i], "since", &t, &e), TG_E_INVALID);
        assert_string_equal(e.field, "since");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roles),      cmocka_unit_test(hashing), cmocka_unit_test(users_and_login),
        cmocka_unit_test(last_admin), cmocka_unit_test(tokens),  cmocka_unit_test(audit),
        cmocka_unit_test(times),      cmocka_unit_test(groups),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
