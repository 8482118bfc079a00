/*
 * check.h — the fuzz targets' invariant check: a broken invariant is a crash libFuzzer
 * reports, with the expression and where it stands (the file names the target).
 */
#ifndef TG_FUZZ_CHECK_H
#define TG_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
