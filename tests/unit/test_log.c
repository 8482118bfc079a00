/*
 * test_log.c — the daemon's log (base/log.c): syslog datagrams read from a socket the test
 * binds, standard error lines, levels, quiet, the cap on a line and the flood limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/base.h"

typedef struct sock {
    char dir[64], path[108];
    int fd;
} sock;

static void sock_open(sock *s)
{
    snprintf(s->dir, sizeof(s->dir), "/tmp/tg-unit-log-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->path, sizeof(s->path), "%s/log", s->dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->path);
    s->fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    int big = 1 << 20;
    setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
}

static void sock_close(sock *s)
{
    if (s->fd >= 0) close(s->fd);
    unlink(s->path);
    rmdir(s->dir);
}

/* The next datagram, or "" when none is waiting. */
static const char *next(sock *s)
{
    static char buf[2048];
    ssize_t n = recv(s->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void syslog_lines(void **state)
{
    (void)state;
    sock s;
    sock_open(&s);
    tg_log_opts o = {.sinks = TG_LOG_TO_SYSLOG, .prefix = "tlsgate serve", .socket = s.path};
    tg_log_open(&o);
    tg_log(TG_LOG_WARNING, "certificate '%s' expires within %d days", "www", 7);
    tg_log(TG_LOG_ERROR, "expired");
    tg_log(TG_LOG_INFO, "a line\nwith a forged second line\x1b[1m");
    char tag[64];
    snprintf(tag, sizeof(tag), " tlsgate[%d]: ", (int)getpid());
    const char *l = next(&s);
    assert_true(strncmp(l, "<28>", 4) == 0); /* daemon (3) * 8 + warning (4) */
    assert_non_null(strstr(l, tag));
    assert_non_null(strstr(l, "certificate 'www' expires within 7 days"));
    assert_true(strncmp(next(&s), "<27>", 4) == 0); /* error */
    l = next(&s);
    assert_true(strncmp(l, "<30>", 4) == 0); /* info */
    assert_non_null(strstr(l, ": a line?with a forged second line?[1m"));
    assert_string_equal(next(&s), "");
    /* a line is capped */
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tg_log(TG_LOG_INFO, "%s", big);
    l = strstr(next(&s), tag);
    assert_non_null(l);
    assert_int_equal(strlen(l + strlen(tag)), TG_LOG_LINE_MAX);
    tg_log_close();
    sock_close(&s);
}

static void quiet_and_flood(void **state)
{
    (void)state;
    sock s;
    sock_open(&s);
    tg_log_opts o = {.sinks = TG_LOG_TO_SYSLOG, .quiet = 1, .socket = s.path};
    tg_log_open(&o);
    tg_log(TG_LOG_INFO, "not shown when quiet");
    assert_string_equal(next(&s), "");
    int got = 0; /* read as it comes: a socket queues only ~10 datagrams (max_dgram_qlen) */
    for (int i = 0; i < TG_LOG_BURST + 50; i++) {
        tg_log(TG_LOG_WARNING, "flood %d", i);
        while (next(&s)[0] != '\0')
            got++;
    }
    assert_int_equal(got, TG_LOG_BURST);
    tg_log_close(); /* reports the rest at once */
    assert_non_null(strstr(next(&s), "50 messages suppressed"));
    sock_close(&s);
}

static void reader_gone(void **state)
{
    (void)state;
    sock s;
    sock_open(&s);
    tg_log_opts o = {.sinks = TG_LOG_TO_SYSLOG, .socket = s.path};
    tg_log_open(&o);
    close(s.fd);
    s.fd = -1;
    unlink(s.path);
    tg_log(TG_LOG_WARNING, "nobody reads this"); /* neither blocks nor fails */
    /* a new reader at the same path gets the next line (reconnected) */
    sock s2 = s;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s.path);
    s2.fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_int_equal(bind(s2.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    tg_log(TG_LOG_WARNING, "back");
    assert_non_null(strstr(next(&s2), "back"));
    tg_log_close();
    sock_close(&s2);
}

static void stderr_lines(void **state)
{
    (void)state;
    char path[] = "/tmp/tg-unit-log-err-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(2);
    dup2(fd, 2);
    tg_log_opts o = {.sinks = TG_LOG_TO_STDERR, .prefix = "tlsgate serve"};
    tg_log_open(&o);
    tg_log(TG_LOG_INFO, "listening on %s", "127.0.0.1:8443");
    tg_log(TG_LOG_WARNING, "soon");
    tg_log(TG_LOG_ERROR, "expired");
    tg_log_close();
    dup2(saved, 2);
    close(saved);
    char buf[512] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    assert_true(n > 0);
    assert_string_equal(buf, "tlsgate serve: listening on 127.0.0.1:8443\n"
                             "tlsgate serve: warning: soon\n"
                             "tlsgate serve: error: expired\n");
    close(fd);
    unlink(path);
}

static void sinks(void **state)
{
    (void)state;
    unsigned v = 0;
    tg_err e = {0};
    assert_int_equal(tg_log_sinks_parse("both", &v, &e), 0);
    assert_int_equal(v, TG_LOG_TO_STDERR | TG_LOG_TO_SYSLOG);
    assert_int_equal(tg_log_sinks_parse("syslog", &v, &e), 0);
    assert_int_equal(v, TG_LOG_TO_SYSLOG);
    assert_int_equal(tg_log_sinks_parse("journal", &v, &e), TG_E_USAGE);
    assert_string_equal(e.field, "log");
    /* standard error is the journal's stream: syslog only, else both */
    unsetenv("JOURNAL_STREAM");
    assert_int_equal(tg_log_default_sinks(), TG_LOG_TO_STDERR | TG_LOG_TO_SYSLOG);
    struct stat st;
    assert_int_equal(fstat(2, &st), 0);
    char js[64];
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    assert_int_equal(tg_log_default_sinks(), TG_LOG_TO_SYSLOG);
    unsetenv("JOURNAL_STREAM");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(syslog_lines), cmocka_unit_test(quiet_and_flood),
        cmocka_unit_test(reader_gone),  cmocka_unit_test(stderr_lines),
        cmocka_unit_test(sinks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
