/*
 * fuzz_names.c — libFuzzer target for the name rules of src/x509/names.c: tg_san_normalize,
 * tg_dns_name_valid, tg_subject_check (and tg_subject_text when it passes) and tg_sans_build.
 *
 * Input layout (seeds.sh writes seeds in it): byte 0 is a mask, the rest is split at '\n'
 * into NUL-terminated pieces (one trailing '\n' is ignored). Pieces 0-6 are the subject fields
 * country, state, locality, org, unit, cn, email; field i is present (possibly empty) when bit i of
 * the mask is set, else NULL. Every piece after the seventh is a SAN. Every piece, whatever its
 * role, also goes through tg_san_normalize and tg_dns_name_valid on its own.
 */
#include "x509/x509.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NFIELDS 7

static int canonical_prefix(const char *s)
{
    return strncmp(s, "DNS:", 4) == 0 || strncmp(s, "IP:", 3) == 0 || strncmp(s, "email:", 6) == 0;
}

static void one_name(const char *s, unsigned small)
{
    tg_dns_name_valid(s, 0);
    int wild = tg_dns_name_valid(s, 1);
    if (tg_dns_name_valid(s, 0)) CHECK(wild); /* allowing wildcards never refuses more */

    char out[320], again[320], tiny[16];
    tg_err err = {0};
    int rc = tg_san_normalize(s, out, sizeof(out), &err);
    if (rc != 0) {
        CHECK(rc == TG_E_INVALID && err.code == rc && err.msg[0] != '\0');
        return;
    }
    /* The canonical form is canonical: a known prefix, valid, and a fixed point. */
    CHECK(canonical_prefix(out));
    if (strncmp(out, "DNS:", 4) == 0) CHECK(tg_dns_name_valid(out + 4, 1));
    tg_err err2 = {0};
    rc = tg_san_normalize(out, again, sizeof(again), &err2);
    if (rc != 0) fprintf(stderr, "'%s' -> '%s' -> %s\n", s, out, err2.msg);
    CHECK(rc == 0);
    if (strcmp(out, again) != 0) fprintf(stderr, "'%s' -> '%s' -> '%s'\n", s, out, again);
    CHECK(strcmp(out, again) == 0);
    /* A short output buffer truncates, never overflows. */
    tg_san_normalize(s, tiny, 1 + small % sizeof(tiny), NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    unsigned mask = data[0];
    size_t n = size - 1;
    if (n > 0 && data[n] == '\n') n--; /* a text file's last newline ends a line, not a piece */
    char *buf = malloc(n + 1);
    if (buf == NULL) return 0;
    memcpy(buf, data + 1, n);
    buf[n] = '\0';
    size_t npieces = 1;
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n') npieces++;
    char **piece = calloc(npieces, sizeof(*piece));
    if (piece == NULL) {
        free(buf);
        return 0;
    }
    size_t k = 0;
    piece[k++] = buf;
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n') {
            buf[i] = '\0';
            piece[k++] = buf + i + 1;
        }

    for (size_t i = 0; i < npieces; i++)
        one_name(piece[i], (unsigned)i + mask);

    const char *f[NFIELDS] = {0};
    for (size_t i = 0; i < NFIELDS && i < npieces; i++)
        if (mask & (1u << i)) f[i] = piece[i];
    tg_subject subj = {.country = f[0],
                       .state = f[1],
                       .locality = f[2],
                       .org = f[3],
                       .unit = f[4],
                       .cn = f[5],
                       .email = f[6]};
    tg_err err = {0};
    int rc = tg_subject_check(&subj, &err);
    if (rc == 0) {
        free(tg_subject_text(&subj));
    } else {
        /* a missing common name is a usage error, anything else that fails invalid input */
        CHECK(rc == (subj.cn == NULL ? TG_E_USAGE : TG_E_INVALID) && err.code == rc &&
              err.msg[0] != '\0');
    }

    const char *const *sans = npieces > NFIELDS ? (const char *const *)piece + NFIELDS : NULL;
    size_t nsans = npieces > NFIELDS ? npieces - NFIELDS : 0;
    tg_strlist list = {0};
    tg_err err2 = {0};
    rc = tg_sans_build(&subj, sans, nsans, &list, &err2);
    if (rc == 0) {
        CHECK(list.n <= 1000);
        for (size_t i = 0; i < list.n; i++) {
            CHECK(canonical_prefix(list.v[i]));
            for (size_t j = 0; j < i; j++)
                CHECK(strcmp(list.v[i], list.v[j]) != 0); /* without duplicates */
        }
        free(tg_strlist_join(&list, ", "));
        tg_strlist_free(&list);
    } else {
        CHECK(list.n == 0 && list.v == NULL);
        CHECK(err2.code == rc && err2.msg[0] != '\0');
    }
    free(piece);
    free(buf);
    return 0;
}
