/*
 * secret.c — wiping, randomness and asking the face for a passphrase (SPEC F4, X3).
 *
 * Where a passphrase comes from is the face's business (cli/pass.c reads a file, the
 * environment or the terminal; never argv). Buffers that held one are wiped by whoever
 * owns them; the ones that live longer than a copy come from tg_secure_alloc (locked,
 * not dumped).
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

int tg_pass_get(const tg_passsrc *src, char *buf, size_t bufsize, size_t *len, tg_err *err)
{
    *len = 0;
    buf[0] = '\0';
    if (src == NULL || src->get == NULL)
        return tg_err_set(err, TG_E_PASSWORD, "a password is needed and none was given");
    return src->get(src->arg, src->confirm, buf, bufsize, len, err);
}
