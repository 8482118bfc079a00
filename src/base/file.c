/*
 * file.c — bounded reads and atomic writes. Every length read from a file is checked
 * against a cap before anything is allocated for it.
 */
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

int tg_file_read(const char *path, size_t max, unsigned char **out, size_t *outlen, tg_err *err)
{
    *out = NULL;
    *outlen = 0;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; the type is checked on the
     * descriptor (no window between a stat and the open), before anything is read. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int code = errno == ENOENT ? TG_E_NOTFOUND : TG_E_INVALID;
        return tg_err_set(err, code, "cannot open %s: %s", path, strerror(errno));
    }
    struct stat st = {0};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int dir = S_ISDIR(st.st_mode);
        close(fd);
        return tg_err_set(err, TG_E_INVALID,
                          dir ? "%s is a directory; give the path of a file"
                              : "%s is not a regular file (a FIFO, socket or device is not "
                                "read); give the path of a file",
                          path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return tg_err_set(err, TG_E_INVALID, "%s is too large (%lld bytes; the limit is %zu)", path,
                          (long long)st.st_size, max);
    }
    /* A regular file never blocks; clear the flag all the same for the reads. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    size_t cap = (size_t)st.st_size;
    unsigned char *buf = malloc(cap + 1);
    if (buf == NULL) {
        close(fd);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory reading %s", path);
    }
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

int tg_fd_read_all(int fd, const char *label, size_t max, int deadline_ms, unsigned char **out,
                   size_t *outlen, tg_err *err)
{
    *out = NULL;
    *outlen = 0;
    /* One buffer of the cap, never grown: a key read here leaves no copy behind in memory
     * that realloc released (the pages are only touched as far as the input goes). */
    unsigned char *buf = malloc(max + 1);
    if (buf == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory reading %s", label);
    long long end = tg_now_ms() + deadline_ms;
    size_t n = 0;
    int rc = 0;
    for (;;) {
        long long left = end - tg_now_ms();
        if (left <= 0) {
            rc = tg_err_set(err, TG_E_INVALID,
                            "%s did not end within %d s; give a file, or end the input "
                            "(Ctrl-D on a terminal)",
                            label, deadline_ms / 1000);
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) {
            rc = tg_err_set(err, TG_E_INVALID, "cannot read %s: %s", label, strerror(errno));
            break;
        }
        if (pr == 0) continue;
        /* one byte past the cap tells "too large" from "exactly the cap" */
        unsigned char extra;
        ssize_t r = n < max ? read(fd, buf + n, max - n) : read(fd, &extra, 1);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r < 0) {
            rc = tg_err_set(err, TG_E_INVALID, "cannot read %s: %s", label, strerror(errno));
            break;
        }
        if (r == 0) break;
        if (n == max) {
            rc = tg_err_set(err, TG_E_INVALID, "%s is too large (the limit is %zu bytes)", label,
                            max);
            break;
        }
        n += (size_t)r;
    }
    if (rc == 0 && n == 0)
        rc = tg_err_set(err, TG_E_INVALID, "%s is empty; give the data there, or a file", label);
    if (rc != 0) {
        tg_free_secret(buf, n);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

/* Puts tmp at path: replacing what is there (rename), or only where nothing is
 * (renameat2 RENAME_NOREPLACE; link where the file system lacks it), so that a file that
 * appears between a caller's check and the write is not replaced either. */
static int put_in_place(const char *tmp, const char *path, int replace)
{
    if (replace) return rename(tmp, path);
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return -1;
    if (link(tmp, path) != 0) return -1;
    unlink(tmp);
    return 0;
}

static int write_file(const char *path, const void *data, size_t len, unsigned mode, int replace,
                      tg_err *err)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (tmp == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    /* mkstemp's template: ".tmp" and six X's it replaces */
    snprintf(tmp, plen + 16, "%s.tmp", path);
    memset(tmp + plen + 4, 'X', 6);
    tmp[plen + 10] = '\0';
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return tg_err_set(err, TG_E_IO, "cannot write %s: %s", path, strerror(e));
    }
    int rc = 0;
    if (fchmod(fd, mode) != 0) rc = -1;
    const unsigned char *p = data;
    size_t left = len;
    while (rc == 0 && left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            rc = -1;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0) rc = -1;
    int e = errno;
    if (close(fd) != 0 && rc == 0) rc = -1, e = errno;
    if (rc == 0 && put_in_place(tmp, path, replace) != 0) rc = -1, e = errno;
    if (rc != 0) {
        unlink(tmp);
        free(tmp);
        if (e == EEXIST)
            return tg_err_set(err, TG_E_CONFLICT,
                              "%s exists (it appeared while writing); not replaced", path);
        return tg_err_set(err, TG_E_IO, "cannot write %s: %s", path, strerror(e));
    }
    free(tmp);
    return 0;
}

int tg_file_write(const char *path, const void *data, size_t len, unsigned mode, tg_err *err)
{
    return write_file(path, data, len, mode, 1, err);
}

int tg_file_target_check(const char *path, int replace, tg_err *err)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (S_ISLNK(st.st_mode))
            return tg_err_set(err, TG_E_CONFLICT,
                              "%s is a symbolic link; tlsgate does not write through links: give "
                              "the path of the file itself",
                              path);
        if (S_ISDIR(st.st_mode))
            return tg_err_set(err, TG_E_CONFLICT, "%s is a directory; give a file name", path);
        if (!S_ISREG(st.st_mode))
            return tg_err_set(err, TG_E_CONFLICT, "%s exists and is not a regular file", path);
        if (!replace)
            return tg_err_set(err, TG_E_CONFLICT, "%s exists; add --force to replace it", path);
    }
    return 0;
}

int tg_file_create(const char *path, const void *data, size_t len, unsigned mode, int replace,
                   tg_err *err)
{
    int rc = tg_file_target_check(path, replace, err);
    return rc != 0 ? rc : write_file(path, data, len, mode, replace, err);
}

int tg_mkdir_p(const char *path, unsigned mode, tg_err *err)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf))
        return tg_err_set(err, TG_E_INVALID, "the directory name '%s' is empty or too long", path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return tg_err_set(err, TG_E_IO, "cannot create directory %s: %s", buf, strerror(errno));
        buf[i] = c;
    }
    return 0;
}
