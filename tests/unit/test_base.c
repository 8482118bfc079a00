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

    /* passphrases: the file's first line, then the environment, never anything else */
    assert_int_equal(tg_file_write(path, "s3cret pass\nsecond line\n", 24, 0600, NULL), 0);
    char buf[TG_PASS_MAX];
    size_t n;
    tg_passsrc fromfile = {.file = path, .envvar = "TG_UNIT_PW"};
    setenv("TG_UNIT_PW", "from-env", 1);
    assert_int_equal(tg_pass_get(&fromfile, buf, sizeof buf, &n, NULL), 0);
    assert_string_equal(buf, "s3cret pass");
    assert_int_equal(n, 11);
    tg_passsrc fromenv = {.envvar = "TG_UNIT_PW"};
    assert_int_equal(tg_pass_get(&fromenv, buf, sizeof buf, &n, NULL), 0);
    assert_string_equal(buf, "from-env");
    unsetenv("TG_UNIT_PW");
    e.code = 0;
    assert_int_equal(tg_pass_get(&fromenv, buf, sizeof buf, &n, &e), TG_E_PASSWORD);
    assert_non_null(strstr(e.msg, "TLSGATE_PASSWORD"));
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
    char buf[TG_PASS_MAX];
    size_t n;
    for (int i = 0; i < 2; i++) {
        tg_passsrc src = {.file = i ? dir : fifo};
        e = (tg_err){0};
        assert_int_equal(tg_pass_get(&src, buf, sizeof buf, &n, &e), TG_E_PASSWORD);
        assert_int_equal(e.code, TG_E_PASSWORD);
        assert_non_null(strstr(e.msg, "password file"));
    }
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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(first_error_wins), cmocka_unit_test(files),
                                       cmocka_unit_test(special_files),
                                       cmocka_unit_test(create_files),
                                       cmocka_unit_test(secure_memory)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
