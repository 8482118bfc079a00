/*
 * pass.c — where the CLI gets a passphrase (SPEC F4: never from the command line): in
 * order, the file named by --password-file/--passphrase-file (its first line, without the
 * newline), the environment variable TLSGATE_PASSWORD, a prompt on the controlling
 * terminal (twice for a new passphrase). Libraries below ask through tg_passsrc, and only
 * when an input needs it; this is the only place that prompts.
 */
#include "cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static size_t first_line(char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] != '\n' && s[i] != '\r')
        i++;
    s[i] = '\0';
    return i;
}

/* 0 read, -1 no terminal, else a TG_E… code. */
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

/* --password-file: read once per command (standard input can be read only once, and a
 * bulk import's files would each read the file again), the password kept in locked
 * memory, wiped at exit, for every later file that needs one: the same answer each time. */
static char *file_pass;
static size_t file_pass_len;

static void file_pass_wipe(void)
{
    tg_secure_free(file_pass, TG_PASS_MAX);
    file_pass = NULL;
}

static int get(void *arg, int confirm, char *buf, size_t bufsize, size_t *len, tg_err *err)
{
    const cli_pass *p = arg;
    *len = 0;
    buf[0] = '\0';
    if (p->file != NULL && file_pass != NULL) {
        if (file_pass_len + 1 > bufsize)
            return tg_err_set(err, TG_E_PASSWORD, "the password is too long (limit %zu bytes)",
                              bufsize - 1);
        memcpy(buf, file_pass, file_pass_len + 1);
        *len = file_pass_len;
        return 0;
    }
    if (p->file != NULL) {
        unsigned char *data;
        size_t n;
        tg_err why = {0};
        int rc = cli_read(p->file, "the password file", TG_PASS_MAX * 4, &data, &n, &why);
        /* A missing file is "not found" like any other; anything else about it (a FIFO,
         * a directory, too large) is a password problem (exit 6). */
        if (rc == TG_E_NOTFOUND) return tg_err_set(err, rc, "%s", why.msg);
        if (rc != 0)
            return tg_err_set(err, TG_E_PASSWORD, "cannot use the password file: %s", why.msg);
        size_t l = first_line((char *)data, n);
        if (l + 1 > bufsize) {
            tg_free_secret(data, n + 1);
            return tg_err_set(err, TG_E_PASSWORD,
                              "the password in %s is too long (limit %zu bytes)", p->file,
                              bufsize - 1);
        }
        memcpy(buf, data, l + 1);
        tg_free_secret(data, n + 1);
        *len = l;
        if (l < TG_PASS_MAX && (file_pass = tg_secure_alloc(TG_PASS_MAX)) != NULL) {
            memcpy(file_pass, buf, l + 1);
            file_pass_len = l;
            atexit(file_pass_wipe);
        }
        return 0;
    }
    const char *env = getenv("TLSGATE_PASSWORD");
    if (env != NULL) {
        size_t l = strlen(env);
        if (l + 1 > bufsize)
            return tg_err_set(err, TG_E_PASSWORD, "TLSGATE_PASSWORD is too long (limit %zu bytes)",
                              bufsize - 1);
        memcpy(buf, env, l + 1);
        *len = l;
        return 0;
    }
    if (p->prompt != NULL) {
        int rc = read_tty(p->prompt, buf, bufsize, len, err);
        if (rc < 0 && rc != -1) return rc;
        if (rc == 0 && confirm) {
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

const tg_passsrc *cli_pass_init(cli_pass *p, const char *file, const char *prompt, int confirm)
{
    *p = (cli_pass){.file = file, .prompt = prompt};
    const char *env = getenv("TLSGATE_PASSWORD");
    p->src = (tg_passsrc){
        .get = get, .arg = p, .confirm = confirm, .stable = file != NULL || env != NULL};
    return &p->src;
}
