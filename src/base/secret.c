/*
 * secret.c — wiping, randomness and passphrases (SPEC F4, X3).
 *
 * A passphrase is read from a file, an environment variable or the terminal, never
 * from argv. Buffers that held one are wiped by whoever owns them; the ones that live
 * longer than a copy come from tg_secure_alloc (locked, not dumped).
 */
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <termios.h>
#include <unistd.h>

void tg_wipe(void *p, size_t len)
{
    if (p != NULL && len > 0) OPENSSL_cleanse(p, len);
}

void tg_free_secret(void *p, size_t len)
{
    if (p == NULL) return;
    OPENSSL_cleanse(p, len);
    free(p);
}

static size_t page_round(size_t len)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    return (len + page - 1) / page * page;
}

void *tg_secure_alloc(size_t len)
{
    if (len == 0) len = 1;
    size_t n = page_round(len);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    (void)mlock(p, n);                    /* best effort: RLIMIT_MEMLOCK may forbid it */
    (void)madvise(p, n, MADV_DONTDUMP);   /* and out of any core dump */
    (void)madvise(p, n, MADV_WIPEONFORK); /* a child never inherits the secret */
    return p;                             /* anonymous pages are zeroed */
}

void tg_secure_free(void *p, size_t len)
{
    if (p == NULL) return;
    if (len == 0) len = 1;
    size_t n = page_round(len);
    OPENSSL_cleanse(p, n);
    munlock(p, n);
    munmap(p, n);
}

void tg_process_harden(void)
{
    struct rlimit none = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &none);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int tg_random(void *buf, size_t len, tg_err *err)
{
    if (RAND_bytes(buf, (int)len) != 1)
        return tg_err_set(err, TG_E_INTERNAL, "the random number generator failed");
    return 0;
}

static size_t first_line(char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] != '\n' && s[i] != '\r')
        i++;
    s[i] = '\0';
    return i;
}

static int read_tty(const char *prompt, char *buf, size_t bufsize, size_t *len, tg_err *err)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return -1;
    struct termios old, quiet;
    int have_term = tcgetattr(fd, &old) == 0;
    if (have_term) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    if (write(fd, prompt, strlen(prompt)) < 0) { /* the prompt is best effort */
    }
    size_t n = 0;
    int rc = 0;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || c == '\n' || c == '\r') break;
        if (n + 1 >= bufsize) {
            rc = tg_err_set(err, TG_E_PASSWORD, "the password is too long (limit %d bytes)",
                            TG_PASS_MAX - 1);
            break;
        }
        buf[n++] = c;
    }
    buf[n] = '\0';
    if (have_term) tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0) {
    }
    close(fd);
    *len = n;
    return rc == 0 ? 0 : rc;
}

int tg_pass_get(const tg_passsrc *src, char *buf, size_t bufsize, size_t *len, tg_err *err)
{
    *len = 0;
    buf[0] = '\0';
    if (src->file != NULL) {
        unsigned char *data;
        size_t n;
        tg_err why = {0};
        int rc = tg_file_read(src->file, TG_PASS_MAX * 4, &data, &n, &why);
        /* A missing file is "not found" like any other; anything else about it (a FIFO,
         * a directory, too large) is a password problem (exit 6). */
        if (rc == TG_E_NOTFOUND) return tg_err_set(err, rc, "%s", why.msg);
        if (rc != 0)
            return tg_err_set(err, TG_E_PASSWORD, "cannot use the password file: %s", why.msg);
        size_t l = first_line((char *)data, n);
        if (l + 1 > bufsize) {
            tg_free_secret(data, n + 1);
            return tg_err_set(err, TG_E_PASSWORD,
                              "the password in %s is too long (limit %zu bytes)", src->file,
                              bufsize - 1);
        }
        memcpy(buf, data, l + 1);
        tg_free_secret(data, n + 1);
        *len = l;
        return 0;
    }
    const char *env = src->envvar ? getenv(src->envvar) : NULL;
    if (env != NULL) {
        size_t l = strlen(env);
        if (l + 1 > bufsize)
            return tg_err_set(err, TG_E_PASSWORD, "%s is too long (limit %zu bytes)", src->envvar,
                              bufsize - 1);
        memcpy(buf, env, l + 1);
        *len = l;
        return 0;
    }
    if (src->prompt != NULL) {
        int rc = read_tty(src->prompt, buf, bufsize, len, err);
        if (rc < 0 && rc != -1) return rc;
        if (rc == 0 && src->confirm) {
            char *again = tg_secure_alloc(TG_PASS_MAX);
            if (again == NULL) return tg_err_set(err, TG_E_INTERNAL, "out of memory");
            size_t l2 = 0;
            rc = read_tty("Repeat to confirm: ", again, TG_PASS_MAX, &l2, err);
            int same = rc == 0 && l2 == *len && memcmp(again, buf, l2) == 0;
            tg_secure_free(again, TG_PASS_MAX);
            if (!same) {
                tg_wipe(buf, bufsize);
                *len = 0;
                return tg_err_set(err, TG_E_PASSWORD, "the two passwords differ; try again");
            }
        }
        if (rc == 0) return 0;
    }
    return tg_err_set(err, TG_E_PASSWORD,
                      "a password is needed: give it in a file with --password-file, in the "
                      "environment variable TLSGATE_PASSWORD, or run on a terminal");
}
