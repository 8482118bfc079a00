/*
 * scratch.h — a scratch directory for a cmocka group: `dir` made by scratch_setup,
 * `home` (a store directory inside it, not yet created) for the keyring, all removed by
 * scratch_teardown. Included by one test file each; the state is per file.
 */
#ifndef TG_TEST_SCRATCH_H
#define TG_TEST_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[256], home[300];

/* tag names the directory (/tmp/tg-unit-TAG-XXXXXX) so that a leftover says whose. */
static int scratch_setup(const char *tag)
{
    snprintf(dir, sizeof dir, "/tmp/tg-unit-%s-XXXXXX", tag);
    if (!mkdtemp(dir)) return -1;
    snprintf(home, sizeof home, "%s/home", dir);
    return 0;
}

static int scratch_teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

#endif
