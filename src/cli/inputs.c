/*
 * inputs.c — the files named on the command line, read here and handed to the keyring as
 * bytes (tg_input): the keyring reads no file and asks no one (issue 10: a library the
 * API uses as the CLI does). Each file is read whole with base's limits (TG_FILE_MAX,
 * no FIFOs or directories) and wiped when freed, as it may hold a private key.
 */
#include "cli_int.h"

#include <stdlib.h>

int cli_inputs_read(cli *c, char *const *paths, size_t n, tg_input **out)
{
    *out = NULL;
    tg_input *v = calloc(n + 1, sizeof(*v));
    if (v == NULL) return tg_err_set(&c->err, TG_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        unsigned char *data = NULL;
        size_t len = 0;
        int rc = tg_file_read(paths[i], TG_FILE_MAX, &data, &len, &c->err);
        if (rc != 0) {
            cli_inputs_free(v, i);
            return rc;
        }
        v[i] = (tg_input){.data = data, .len = len, .label = paths[i]};
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
