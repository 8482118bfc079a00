/*
 * content.c — the content log: each decrypted flow's cleartext in a file of its own, for
 * an inspection engine that reads files rather than packets (issue 9, item 8).
 *
 * `serve --content-log DIR` makes DIR (0700) if needed; each decrypted flow gets
 * DIR/<start, UTC>-<flow number>-<target>.log (0600, created exclusively, never through a
 * symlink). The file is a sequence of records, each a header line
 *   "<ms since the flow began> <client|server> <length>\n"
 * followed by exactly <length> bytes as relayed, so that a reader can split the two
 * directions without guessing. Bounds: TG_PROXY_CONTENT_FLOW_MAX bytes per flow (then a
 * last line "truncated\n") and the serve-wide total given (--content-max-mb); past the
 * total, new flows get no file and the log says so once. Writes are synchronous on the
 * flow's loop, as the PCAP's are.
 */
#include "proxy_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int content_open(tg_proxies *svc, const char *target, long long t0_ms, const struct timespec *start)
{
    if (svc->content_dir == NULL) return -1;
    if (atomic_load(&svc->content_bytes) >= svc->content_max) {
        if (!atomic_exchange(&svc->content_full, 1))
            tg_serve_say("content log: %lld MiB written, the limit: new flows are not logged",
                         svc->content_max >> 20);
        return -1;
    }
    char safe[64];
    size_t n = 0;
    for (const char *p = target; *p && n + 1 < sizeof(safe); p++)
        safe[n++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                            (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'
                        ? *p
                        : '_';
    safe[n] = '\0';
    struct tm tm;
    gmtime_r(&start->tv_sec, &tm);
    char stamp[32], path[4400];
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    unsigned long long id = atomic_fetch_add(&svc->content_seq, 1) + 1;
    snprintf(path, sizeof(path), "%s/%s-%llu-%s.log", svc->content_dir, stamp, id, safe);
    (void)t0_ms;
    return open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

void content_write(tg_proxies *svc, int fd, long long *written, long long ms, int from_client,
                   const void *data, size_t len)
{
    if (fd < 0 || *written < 0) return;
    if (*written + (long long)len > TG_PROXY_CONTENT_FLOW_MAX) {
        (void)!write(fd, "truncated\n", 10);
        *written = -1; /* nothing more for this flow */
        return;
    }
    char head[64];
    int n =
        snprintf(head, sizeof(head), "%lld %s %zu\n", ms, from_client ? "client" : "server", len);
    if (write(fd, head, (size_t)n) != n || write(fd, data, len) != (ssize_t)len) {
        *written = -1; /* disk full or the like: this flow stops; others try on their own */
        return;
    }
    *written += (long long)len + n;
    atomic_fetch_add(&svc->content_bytes, (long long)len + n);
}

int tg_proxies_content_log(tg_proxies *p, const char *dir, long long max_mb, tg_err *err)
{
    if (max_mb < 0 || max_mb > TG_PROXY_LOG_MAX_MB)
        return tg_err_fset(err, TG_E_USAGE, "content_max_mb",
                           "the content log cap must be from 1 to %d MiB (0: 1024), not %lld",
                           TG_PROXY_LOG_MAX_MB, max_mb);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return tg_err_set(err, TG_E_IO, "cannot make the content log directory %s: %s", dir,
                          strerror(errno));
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return tg_err_fset(err, TG_E_IO, "content_log", "%s is not a directory", dir);
    if ((st.st_mode & 077) != 0 && chmod(dir, 0700) != 0)
        return tg_err_set(err, TG_E_IO, "cannot restrict %s to its owner: %s", dir,
                          strerror(errno));
    free(p->content_dir);
    if ((p->content_dir = strdup(dir)) == NULL)
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    p->content_max = max_mb > 0 ? max_mb * 1024 * 1024 : TG_PROXY_CONTENT_MAX_DEFAULT;
    return 0;
}
