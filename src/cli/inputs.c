/*
 * inputs.c — the files named on the command line, read here and handed to the keyring as
 * bytes (tg_input): the keyring reads no file and asks no one (issue 10: a library the
 * API uses as the CLI does). Each file is read whole with base's limits (TG_FILE_MAX,
 * no FIFOs or directories) and wiped when freed, as it may hold a private key.
 *
 * "-" is standard input for every file argument (read once: a second "-" in the same
 * command is refused, naming the first), bounded by the same size and by a deadline.
 */
#include "cli_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What read standard input first in this process (NULL: nothing yet). */
static const char *stdin_reader;

int cli_read(const char *path, const char *what, size_t max, unsigned char **out, size_t *len,
             tg_err *err)
{
    if (strcmp(path, "-") != 0) return tg_file_read(path, max, out, len, err);
    *out = NULL;
    *len = 0;
    if (stdin_reader != NULL)
        return tg_err_set(err, TG_E_USAGE,
                          "standard input ('-') is given twice (first for %s, then for %s); it "
                          "can be read only once: save one of them to a file and give its path",
                          stdin_reader, what);
    stdin_reader = what;
    return tg_fd_read_all(STDIN_FILENO, "standard input", max, TG_STDIN_DEADLINE_MS, out, len, err);
}

int cli_inputs_read(cli *c, char *const *paths, size_t n, const char *what, tg_input **out)
{
    *out = NULL;
    tg_input *v = calloc(n + 1, sizeof(*v));
    if (v == NULL) return tg_err_set(&c->err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        unsigned char *data = NULL;
        size_t len = 0;
        int rc = cli_read(paths[i], what, TG_FILE_MAX, &data, &len, &c->err);
        if (rc != 0) {
            cli_inputs_free(v, i);
            return rc;
        }
        const char *label = strcmp(paths[i], "-") == 0 ? "standard input" : paths[i];
        v[i] = (tg_input){.data = data, .len = len, .label = label};
    }
    *out = v;
    return 0;
}

void cli_inputs_free(tg_input *v, size_t n)
{
    if (v == NULL) return;
    for (size_t i = 0; i < n; i++)
        tg_free_secret((void *)v[i].data, v[i].len + 1); /* tg_file_read adds a NUL */
    free(v);
}

/* ---- progress of a bulk import: on a terminal only (never in pipes or with --json) ---- */

static long long progress_last_ms;

static void progress_show(void *arg, const char *phase, size_t done, size_t total)
{
    (void)arg;
    long long now = tg_now_ms();
    if (done < total && now - progress_last_ms < 100) return; /* ten lines a second at most */
    progress_last_ms = now;
    /* \r and erase-line: one line that changes; the last "storing" line is erased */
    if (strcmp(phase, "storing") == 0 && done == total)
        fputs("\r\033[K", stderr);
    else
        fprintf(stderr, "\r\033[K%s %zu of %zu (%zu%%)", phase, done, total,
                total ? done * 100 / total : 100);
    fflush(stderr);
}

void cli_progress_attach(cli *c, tg_import *imp)
{
    if (c->json || !isatty(STDERR_FILENO) || imp->ninputs < 2) return;
    imp->progress = progress_show;
    imp->progress_arg = c;
}

void cli_progress_end(const tg_import *imp)
{
    if (imp->progress == NULL) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
}
