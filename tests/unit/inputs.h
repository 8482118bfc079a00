/*
 * inputs.h — files read into tg_input for keyring calls, as the CLI does (tests only).
 * test_inputs asserts that every file could be read; test_inputs_free wipes and frees.
 */
#ifndef TG_TEST_INPUTS_H
#define TG_TEST_INPUTS_H

#include "base/base.h"

#include <stdlib.h>

static tg_input *test_inputs(const char *const *paths, size_t n)
{
    tg_input *v = calloc(n + 1, sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        unsigned char *data = NULL;
        size_t len = 0;
        assert_int_equal(tg_file_read(paths[i], TG_FILE_MAX, &data, &len, NULL), 0);
        v[i] = (tg_input){.data = data, .len = len, .label = paths[i]};
    }
    return v;
}

static void test_inputs_free(tg_input *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        tg_free_secret((void *)v[i].data, v[i].len + 1);
    free(v);
}

#endif
