/*
 * log.c — the daemon's log (SPEC M4): levelled lines to syslog and/or standard error.
 *
 * Syslog is written here rather than through glibc's syslog(3): glibc blocks in send()
 * when the reader's queue is full (a stalled journald would stall serve's workers) and
 * always uses /dev/log, which a test cannot redirect. This writes RFC 3164 datagrams
 * ("<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG", what glibc sends and journald and rsyslog read)
 * with MSG_DONTWAIT to a socket path given at open (TG_LOG_SOCKET by default), and
 * reconnects when the reader went away. A line that cannot be sent at once is counted
 * with those the rate limit dropped.
 *
 * Invariants: every sink is written under `lock`, one write()/send() per line (so lines
 * from several threads never interleave); a line never holds a control character (a name
 * with a newline cannot forge a second line); at most TG_LOG_BURST lines per window.
 */
#include "base.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define FACILITY_DAEMON (3 << 3)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int open;
    unsigned sinks;
    int quiet;
    char prefix[64], ident[32], socket[108];
    int fd; /* the syslog socket, -1 when not connected */
    long long window;
    unsigned lines;
    unsigned long long dropped;
} L = {.sinks = TG_LOG_TO_STDERR, .prefix = "tlsgate", .ident = "tlsgate", .fd = -1};

static long long now_secs(void)
{
    return tg_now_ms() / 1000;
}

unsigned tg_log_default_sinks(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
        (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
        return TG_LOG_TO_SYSLOG;
    return TG_LOG_TO_STDERR | TG_LOG_TO_SYSLOG;
}

int tg_log_sinks_parse(const char *s, unsigned *out, tg_err *err)
{
    if (strcmp(s, "stderr") == 0)
        *out = TG_LOG_TO_STDERR;
    else if (strcmp(s, "syslog") == 0)
        *out = TG_LOG_TO_SYSLOG;
    else if (strcmp(s, "both") == 0)
        *out = TG_LOG_TO_STDERR | TG_LOG_TO_SYSLOG;
    else
        return tg_err_fset(err, TG_E_USAGE, "log",
                           "the log goes to stderr, syslog or both, not '%s'", s);
    return 0;
}

static void syslog_disconnect(void)
{
    if (L.fd >= 0) close(L.fd);
    L.fd = -1;
}

static int syslog_connect(void)
{
    if (L.fd >= 0) return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", L.socket);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    L.fd = fd;
    return 0;
}

/* One datagram; 0 when sent, -1 when dropped (no reader, or its queue is full). */
static int syslog_send(tg_log_level level, const char *msg)
{
    char buf[TG_LOG_LINE_MAX + 160];
    time_t t = time(NULL);
    struct tm tm;
    char stamp[32];
    localtime_r(&t, &tm);
    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
    int n = snprintf(buf, sizeof(buf), "<%d>%s %s[%d]: %s", FACILITY_DAEMON | (int)level, stamp,
                     L.ident, (int)getpid(), msg);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (syslog_connect() != 0) return -1;
        if (send(L.fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len) return 0;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return -1;
        syslog_disconnect(); /* the reader restarted (ECONNREFUSED, ENOTCONN): once more */
    }
    return -1;
}

static void stderr_write(tg_log_level level, const char *msg)
{
    char buf[TG_LOG_LINE_MAX + 128];
    const char *tag = level == TG_LOG_ERROR     ? "error: "
                      : level == TG_LOG_WARNING ? "warning: "
                                                : "";
    int n = snprintf(buf, sizeof(buf), "%s: %s%s\n", L.prefix, tag, msg);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
    if (len > 0 && buf[len - 1] != '\n') buf[len - 1] = '\n';
    ssize_t w = write(2, buf, len); /* one write per line: threads do not interleave */
    (void)w;
}

/* Under lock: to every sink, the drops counted. */
static void emit(tg_log_level level, const char *msg)
{
    /* a datagram no reader took is lost unless standard error has the line too */
    if ((L.sinks & TG_LOG_TO_SYSLOG) && syslog_send(level, msg) != 0 &&
        !(L.sinks & TG_LOG_TO_STDERR))
        L.dropped++;
    if (L.sinks & TG_LOG_TO_STDERR) stderr_write(level, msg);
}

/* Under lock: a window that is over reports its drops and a new one starts. */
static void roll(long long t)
{
    if (t - L.window < TG_LOG_WINDOW_SECS) return;
    L.window = t;
    L.lines = 0;
    if (L.dropped > 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%llu messages suppressed (more than %d in %d s)", L.dropped,
                 TG_LOG_BURST, TG_LOG_WINDOW_SECS);
        L.dropped = 0;
        L.lines = 1;
        emit(TG_LOG_WARNING, msg);
    }
}

void tg_logv(tg_log_level level, const char *fmt, va_list ap)
{
    pthread_mutex_lock(&lock);
    if (L.quiet && level == TG_LOG_INFO) {
        pthread_mutex_unlock(&lock);
        return;
    }
    char raw[TG_LOG_LINE_MAX + 1], msg[TG_LOG_LINE_MAX + 1];
    vsnprintf(raw, sizeof(raw), fmt, ap);
    raw[tg_utf8_cut(raw, strlen(raw), TG_LOG_LINE_MAX)] = '\0';
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)raw; *p; p++)
        msg[j++] = *p < 0x20 || *p == 0x7f ? '?' : (char)*p;
    msg[j] = '\0';
    roll(now_secs());
    if (L.lines >= TG_LOG_BURST) {
        L.dropped++;
    } else {
        L.lines++;
        emit(level, msg);
    }
    pthread_mutex_unlock(&lock);
}

void tg_log(tg_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tg_logv(level, fmt, ap);
    va_end(ap);
}

void tg_log_tick(void)
{
    pthread_mutex_lock(&lock);
    if (L.dropped > 0) roll(now_secs());
    pthread_mutex_unlock(&lock);
}

void tg_log_open(const tg_log_opts *o)
{
    pthread_mutex_lock(&lock);
    syslog_disconnect();
    L.open = 1;
    L.sinks = o->sinks ? o->sinks : tg_log_default_sinks();
    L.quiet = o->quiet;
    snprintf(L.prefix, sizeof(L.prefix), "%s", o->prefix ? o->prefix : "tlsgate");
    snprintf(L.ident, sizeof(L.ident), "%s", o->ident ? o->ident : "tlsgate");
    snprintf(L.socket, sizeof(L.socket), "%s", o->socket ? o->socket : TG_LOG_SOCKET);
    L.window = now_secs();
    L.lines = 0;
    if (L.sinks & TG_LOG_TO_SYSLOG) syslog_connect(); /* LOG_NDELAY: before a chroot or a limit */
    pthread_mutex_unlock(&lock);
}

void tg_log_close(void)
{
    pthread_mutex_lock(&lock);
    if (L.dropped > 0) {
        L.window -= TG_LOG_WINDOW_SECS; /* report now */
        roll(now_secs());
    }
    syslog_disconnect();
    L.open = 0;
    L.sinks = TG_LOG_TO_STDERR;
    L.quiet = 0;
    snprintf(L.prefix, sizeof(L.prefix), "tlsgate");
    pthread_mutex_unlock(&lock);
}
