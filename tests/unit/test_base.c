/*
 * test_base.c — errors, bounded files, passphrase sources (SPEC F4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"

static void first_error_wins(void **state)
{
    (void)state;
    tg_err e = {0};
    assert_int_equal(tg_err_set(&e, TG_E_INVALID, "first %d", 1), TG_E_INVALID);
    assert_int_equal(tg_err_set(&e, TG_E_INTERNAL, "second"), TG_E_INTERNAL);
    assert_int_equal(e.code, TG_E_INVALID);
    assert_string_equal(e.msg, "first 1");
    assert_int_equal(tg_err_set(NULL, TG_E_IO, "ignored"), TG_E_IO);
}

/* A face that answers with a fixed secret, and only when asked for a new one (confirm). */
static int fixed_secret(void *arg, int confirm, char *buf, size_t size, size_t *len, tg_err *err)
{
    if (!confirm) return tg_err_set(err, TG_E_PASSWORD, "expected confirm");
    *len = (size_t)snprintf(buf, size, "%s", (const char *)arg);
    return 0;
}

static void files(void **state)
{
    (void)state;
    char dir[] = "/tmp/tg-unit-base-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/f", dir);
    assert_int_equal(tg_file_write(path, "hello", 5, 0640, NULL), 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0640);
    unsigned char *data;
    size_t len;
    assert_int_equal(tg_file_read(path, 5, &data, &len, NULL), 0);
    assert_int_equal(len, 5);
    assert_string_equal((char *)data, "hello");
    free(data);
    tg_err e = {0};
    assert_int_equal(tg_file_read(path, 4, &data, &len, &e), TG_E_INVALID);
    assert_non_null(strstr(e.msg, "too large"));
    e.code = 0;
    assert_int_equal(tg_file_read("/nonexistent/x", 10, &data, &len, &e), TG_E_NOTFOUND);
    assert_int_equal(tg_file_read(dir, 10, &data, &len, NULL), TG_E_INVALID);

    /* passphrases come from the face (the CLI's file, environment, terminal: interop
     * tests); base only asks, and says so when nobody can answer */
    char buf[TG_PASS_MAX];
    size_t n = 99;
    e.code = 0;
    assert_int_equal(tg_pass_get(NULL, buf, sizeof buf, &n, &e), TG_E_PASSWORD);
    assert_int_equal(n, 0);
    assert_non_null(strstr(e.msg, "none was given"));
    tg_passsrc fixed = {.get = fixed_secret, .arg = "s3cret pass", .confirm = 1};
    assert_int_equal(tg_pass_get(&fixed, buf, sizeof buf, &n, NULL), 0);
    assert_string_equal(buf, "s3cret pass");
    assert_int_equal(n, 11);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Hostile file types (issue 8): a FIFO is refused without waiting for a writer, a
 * password file that is not a regular file is a password problem. */
static void special_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/tg-unit-base-XXXXXX", fifo[64];
    assert_non_null(mkdtemp(dir));
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    unsigned char *data = NULL;
    size_t len = 0;
    tg_err e = {0};
    assert_int_equal(tg_file_read(fifo, 10, &data, &len, &e), TG_E_INVALID); /* no hang */
    assert_non_null(strstr(e.msg, "not a regular file"));
    assert_null(data);
    e = (tg_err){0};
    assert_int_equal(tg_file_read(dir, 10, &data, &len, &e), TG_E_INVALID);
    assert_non_null(strstr(e.msg, "directory"));
    /* (a password file that is a FIFO or a directory: the CLI's, interop/test_file_safety) */
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Exports: never through a symbolic link, over a file only when asked to. */
static void create_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/tg-unit-base-XXXXXX", path[64], link[64], other[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/out", dir);
    snprintf(link, sizeof link, "%s/link", dir);
    snprintf(other, sizeof other, "%s/other", dir);
    assert_int_equal(tg_file_create(path, "one", 3, 0600, 0, NULL), 0);
    tg_err e = {0};
    assert_int_equal(tg_file_create(path, "two", 3, 0600, 0, &e), TG_E_CONFLICT);
    assert_non_null(strstr(e.msg, "exists"));
    assert_int_equal(tg_file_create(path, "two", 3, 0600, 1, NULL), 0);
    unsigned char *data;
    size_t len;
    assert_int_equal(tg_file_read(path, 10, &data, &len, NULL), 0);
    assert_string_equal((char *)data, "two");
    free(data);
    assert_int_equal(tg_file_write(other, "precious", 8, 0600, NULL), 0);
    assert_int_equal(symlink(other, link), 0);
    for (int replace = 0; replace < 2; replace++) {
        e = (tg_err){0};
        assert_int_equal(tg_file_create(link, "x", 1, 0600, replace, &e), TG_E_CONFLICT);
        assert_non_null(strstr(e.msg, "symbolic link"));
    }
    assert_int_equal(tg_file_read(other, 10, &data, &len, NULL), 0);
    assert_string_equal((char *)data, "precious");
    free(data);
    assert_int_equal(tg_file_create(dir, "x", 1, 0600, 1, NULL), TG_E_CONFLICT);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void secure_memory(void **state)
{
    (void)state;
    unsigned char *p = tg_secure_alloc(100);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % (uintptr_t)sysconf(_SC_PAGESIZE), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(p[i], 0);
    memset(p, 0xA5, 100);
    tg_secure_free(p, 100);
    tg_secure_free(NULL, 100);
}

/* tg_time_parse: the expected values are GNU date's (date -u -d TEXT +%s). */
static void grow(void **state)
{
    (void)state;
    long *v = NULL;
    size_t cap = 0, n = 0;
    for (long i = 0; i < 1000; i++) {
        assert_int_equal(tg_grow(&v, &cap, n, sizeof(*v), 4), 0);
        assert_true(cap > n);
        v[n++] = i;
    }
    assert_int_equal(cap, 1024); /* 4, doubled eight times */
    for (long i = 0; i < 1000; i++)
        assert_int_equal(v[i], i);
    /* room already there: nothing moves */
    long *same = v;
    assert_int_equal(tg_grow(&v, &cap, 10, sizeof(*v), 4), 0);
    assert_ptr_equal(v, same);
    /* an element count whose bytes overflow is refused, the array untouched */
    size_t big = SIZE_MAX / 2;
    assert_int_equal(tg_grow(&v, &big, big, 16, 4), -1);
    assert_ptr_equal(v, same);
    free(v);
}

static void time_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long long t;
    } good[] = {
        {"1767225600", 1767225600LL},
        {"-1", -1},
        {"2026-01-01T00:00:00Z", 1767225600LL},
        {"2026-01-01t00:00:00z", 1767225600LL},
        {"2026-01-01 00:00:00.123456Z", 1767225600LL},
        {"2024-02-29T23:59:59+05:30", 1709231399LL},
        {"1969-12-31T23:59:59Z", -1},
        {"2000-03-01T12:00:00-08:00", 951940800LL},
        {"9999-12-31T23:59:59Z", 253402300799LL},
        {"2026-01-01", 1767225600LL},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        long long t = 0;
        assert_int_equal(tg_time_parse(good[i].text, &t), 0);
        assert_int_equal(t, good[i].t);
    }
    static const char *const bad[] = {
        "",
        "-",
        "12x",
        "2026-02-29T00:00:00Z", /* not a leap year */
        "2026-13-01T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00",      /* no offset */
        "2026-01-01T00:00:00+0100", /* offset without a colon */
        "2026-01-01T00:00:00.Z",    /* an empty fraction */
        "2026-01-01T00:00:00Z trailing",
        "99999999999999999999999", /* does not fit */
        "2026-1-01T00:00:00Z",
        "2026-01-01T",
        "2026-02-30",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long long t = 42;
        assert_int_equal(tg_time_parse(bad[i], &t), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(first_error_wins),
                                       cmocka_unit_test(files),
                                       cmocka_unit_test(grow),
                                       cmocka_unit_test(time_parse),
                                       cmocka_unit_test(special_files),
                                       cmocka_unit_test(create_files),
                                       cmocka_unit_test(secure_memory)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
